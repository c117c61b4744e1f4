"""Evaluate stage: kinds -> units, input loading and errors, downstream protocol, metrics.json."""

from __future__ import annotations

import csv
import json
from dataclasses import replace

import numpy as np
import pytest

from helpers import membrane_tissue, sketched_membranes, toy_pair
from workflow_lib.errors import ConfigError, InputError
from workflow_lib.evaluate import figures, views
from workflow_lib.evaluate.downstream import train_and_test
from workflow_lib.dataset import RealImage
from workflow_lib.evaluate.protocol import Sample, evaluate_reference, evaluate_simulation
from workflow_lib.evaluate.segmenter import class_targets
from workflow_lib.evaluate.settings import C2STSettings, EvaluationSettings, SegmenterSettings
from workflow_lib.io import axes_for, read_tiff, write_h5, write_tiff
from workflow_lib.simulate import get_kind
from workflow_lib.workflow.inputs import read_real_mask, real_images, real_masks

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def test_class_targets_by_hand():
    lab = np.zeros((6, 8), np.int32)
    lab[1:5, 1:4], lab[1:5, 4:7] = 1, 2
    t = class_targets(lab)
    assert t[0].max() == 0 and t[2, 2] == 1 and t[2, 5] == 1
    assert t[2, 3] == 2 and t[2, 4] == 2 and t[1, 2] == 2  # touching edge and outer rims


def test_flatten_layers_last_wins():
    layers = np.zeros((2, 4, 4), np.uint16)
    layers[0, :2, :2], layers[1, 1:3, 1:3] = 1, 2
    flat = views.flatten_layers(layers)
    assert flat[0, 0] == 1 and flat[1, 1] == 2 and flat[2, 2] == 2 and flat[3, 3] == 0


@pytest.mark.parametrize(
    "kind, lab_shape, img_shape, n_units, n_down, methods",
    [
        ("nuclei", (1, 8, 8), (1, 8, 8), 1, 1, {"blobs"}),
        ("membranes", (1, 4, 8, 8), (1, 4, 8, 8), 1, 1, {"cells"}),
        ("multichannel", (2, 8, 8), (2, 8, 8), 2, 1, {"cells", "blobs"}),
        ("overlapping", (3, 8, 8), (1, 8, 8), 1, 1, {"blobs"}),
        ("timeseries", (5, 1, 8, 8), (5, 1, 8, 8), 5, 5, {"blobs"}),
    ],
)
def test_units_per_kind(kind, lab_shape, img_shape, n_units, n_down, methods):
    labels, image = np.zeros(lab_shape, np.uint16), np.zeros(img_shape, np.float32)
    units = views.units(get_kind(kind), labels, image)
    assert len(units) == n_units and {u.method for u in units} == methods
    assert all(u.image.shape == u.labels.shape == lab_shape[-u.image.ndim:] for u in units)
    down = views.downstream_units(get_kind(kind), labels, image)
    assert len(down) == n_down
    if kind == "multichannel":
        assert down[0].channel == 1


def test_real_masks_match_images_by_stem(tmp_path):
    for name in ("a", "b"):
        (tmp_path / f"{name}.tif").write_bytes(b"x")
    pattern = str(tmp_path / "*.tif")
    assert real_masks(pattern, ["a", "c"], "k") == {"a": str(tmp_path / "a.tif")}
    assert real_masks(None, ["a"], "k") == {}
    with pytest.raises(ConfigError, match="no mask matches an image"):
        real_masks(pattern, ["c", "d"], "datasets.x.evaluation.real_masks")
    with pytest.raises(ConfigError, match="matches no file"):
        real_masks(str(tmp_path / "*.png"), ["a"], "k")
    assert real_masks("nothere/*.tif", ["q"], "k", known_files=["nothere/q.tif"]) == {
        "q": "nothere/q.tif"
    }


def test_read_real_mask_checks_shape_and_type(tmp_path):
    write_tiff(tmp_path / "m.tif", np.ones((1, 8, 8), np.uint16), "CYX")
    assert read_real_mask(tmp_path / "m.tif", (8, 8)).shape == (8, 8)
    with pytest.raises(InputError, match="does not fit"):
        read_real_mask(tmp_path / "m.tif", (8, 9))
    write_tiff(tmp_path / "f.tif", np.ones((8, 8), np.float32), "YX")
    with pytest.raises(InputError, match="integer"):
        read_real_mask(tmp_path / "f.tif", (8, 8))


def test_workflow_axes_are_restored(tmp_path):
    def load(path, ndim, time=False):
        return read_tiff(path, axes=axes_for(ndim, time=time))[0]

    array = np.arange(2 * 3 * 4 * 5, dtype=np.uint16).reshape(2, 3, 4, 5)
    write_tiff(tmp_path / "l.tif", array, "CZYX")
    np.testing.assert_array_equal(load(tmp_path / "l.tif", 3), array)
    write_tiff(tmp_path / "one.tif", array[:1, 0], "CYX")  # ImageJ drops the singleton C
    assert load(tmp_path / "one.tif", 2).shape == (1, 4, 5)
    write_tiff(tmp_path / "t.tif", array[:, :1], "TCYX")
    assert load(tmp_path / "t.tif", 2, time=True).shape == (2, 1, 4, 5)


def test_real_images_read_split_and_masks(tmp_path):
    image, labels = toy_pair(0, size=16)
    write_h5(tmp_path / "h5" / "img1.h5", {"data/image": image[None]})
    (tmp_path / "index").mkdir()
    with open(tmp_path / "index" / "test.csv", "w", newline="") as f:
        csv.writer(f).writerows([["path", "shape"], ["../h5/img1.h5", "1x16x16"]])
    write_tiff(tmp_path / "img1.tif", labels, "YX")
    real = real_images(tmp_path / "index" / "test.csv", {"img1": tmp_path / "img1.tif"}, 0, "k")
    assert real[0].name == "img1" and real[0].image.shape == (16, 16)
    np.testing.assert_array_equal(real[0].mask, labels)
    with pytest.raises(ConfigError, match="channel 1"):
        real_images(tmp_path / "index" / "test.csv", {}, 1, "k")


def test_downstream_beats_chance():
    train = [toy_pair(s) for s in range(3)]
    test = [toy_pair(s) for s in (10, 11)]
    settings = SegmenterSettings(steps=40, patch=48, batch_size=4, features=8)
    scores, losses = train_and_test(
        [i for i, _ in train], [lab for _, lab in train],
        [i for i, _ in test], [lab for _, lab in test], settings,
    )
    assert len(losses) == 40 and losses[-1] < losses[0]
    # Chance (random or empty prediction) scores 0 at IoU 0.5.
    assert scores["f1"] > 0.7 and scores["n_test"] == 2
    # three segmenters (seeds 0, 1, 2); the scores are their mean, the spread their std
    runs = scores["per_seed"]
    assert scores["repeats"] == 3 and [r["seed"] for r in runs] == [0, 1, 2]
    assert scores["f1"] == pytest.approx(np.mean([r["f1"] for r in runs]))
    assert scores["f1_std"] == pytest.approx(np.std([r["f1"] for r in runs]))
    assert scores["ap_50_95_std"] == pytest.approx(np.std([r["ap_50_95"] for r in runs]))
    again, _ = train_and_test(
        [i for i, _ in train], [lab for _, lab in train],
        [i for i, _ in test], [lab for _, lab in test], settings,
    )
    assert again == scores  # seeded
    one, _ = train_and_test(
        [i for i, _ in train], [lab for _, lab in train],
        [i for i, _ in test], [lab for _, lab in test], replace(settings, repeats=1, seed=1),
    )
    assert one["per_seed"] == [runs[1]]  # segmenter k is the one seeded seed + k


FAST = EvaluationSettings(patch=16, subsets=5, c2st=C2STSettings(patch=16, folds=2, steps=3, width=4),
                          segmenter=SegmenterSettings(steps=3, patch=32, batch_size=2, features=4))


def real_set(seeds, with_masks=True):
    return [RealImage(f"r{s}", *(lambda i, m: (i, m if with_masks else None))(*toy_pair(s))) for s in seeds]


def nuclei_samples(n=2):
    out = []
    for s in range(n):
        image, labels = toy_pair(100 + s)
        sketch = np.where(labels > 0, 0.5, -1).astype(np.float32)
        out.append(Sample(labels[None], sketch[None], image[None]))
    return out


def test_protocol_with_real_masks(tmp_path):
    train, test = real_set([1, 2]), real_set([3])
    reference, losses = evaluate_reference(train, test, True, FAST)
    assert len(losses) == 3 and reference["downstream_real"]["n_train"] == 2
    assert reference["realism_train_vs_test"]["kid"] is not None
    assert 0 <= reference["realism_train_vs_test"]["c2st"]["accuracy"] <= 1
    metrics, data = evaluate_simulation(get_kind("nuclei"), nuclei_samples(), train, test, reference,
                                        True, FAST)
    json.dumps(metrics)  # JSON-ready
    assert metrics["fidelity"]["0"]["f1"] > 0.5
    for source in ("synthetic", "sketch", "real"):
        assert 0 <= metrics["downstream"][source]["f1"] <= 1
    for source in ("synthetic", "sketch"):
        assert metrics["realism"][source]["histogram_w1"] >= 0
        c2st = metrics["realism"][source]["c2st"]
        assert c2st["n_real"] == c2st["n_fake"] == 16 and c2st["ci95"][0] <= c2st["accuracy"] <= c2st["ci95"][1]
        assert 0 <= c2st["layout"]["beyond_pct"] <= 100     # the real masks are known
    assert metrics["realism"]["synthetic"]["memorisation"]["ratio"] > 0
    assert list(metrics["realism"]["synthetic"])[:2] == ["c2st", "memorisation"]  # first, KID after
    metrics["downstream"]["real"] = reference["downstream_real"]
    figures.save(figures.summary(metrics), tmp_path / "summary.png")
    figures.save(figures.sample_grid(data["real"], data["sketch_units"], data["units"],
                                     data["preds"]), tmp_path / "grid.png")
    figures.save(figures.distributions(data["histograms"], data["spectra"]), tmp_path / "d.png")
    figures.save(figures.loss_curves({**data["losses"], "real": losses}), tmp_path / "l.png")
    figures.save(figures.realism_patches(data["classified"], metrics["realism"]), tmp_path / "r.png")
    assert all((tmp_path / f).stat().st_size > 1000
               for f in ("summary.png", "grid.png", "d.png", "l.png", "r.png"))


def test_protocol_without_real_masks_says_why(tmp_path):
    test = real_set([3], with_masks=False)
    reference, losses = evaluate_reference(real_set([1], with_masks=False), test, False, FAST)
    assert losses == [] and reference["downstream_real"]["f1"] is None
    samples = [
        Sample(np.stack([lab, lab]), np.zeros((1, 64, 64), np.float32), img[None])
        for img, lab in (toy_pair(5),)
    ]
    metrics, data = evaluate_simulation(get_kind("overlapping"), samples, [], test, reference, False,
                                        FAST)
    for source in ("synthetic", "sketch", "real"):
        assert metrics["downstream"][source]["f1"] is None
        assert "real_masks is null" in metrics["downstream"][source]["reason"]
    assert any("flattened" in note for note in metrics["notes"])
    figures.save(figures.summary(metrics), tmp_path / "summary.png")
    figures.save(figures.loss_curves(data["losses"]), tmp_path / "loss.png")


def test_a_simulation_of_another_stain_is_not_compared_with_the_real_images():
    """Membranes drawn for a nuclei data set: no realism or downstream score, a reason instead
    (and no time spent on them)."""
    train, test = real_set([1]), real_set([3])
    reference, _ = evaluate_reference(train, test, True, FAST)
    image, labels = toy_pair(9)
    samples = [Sample(labels[None], np.zeros((1, 64, 64), np.float32), image[None])]
    metrics, data = evaluate_simulation(get_kind("membranes"), samples, train, test, reference,
                                        True, FAST, real_stain="nuclei")
    for source in ("synthetic", "sketch"):
        assert "show membranes, the real images nuclei" in metrics["realism"][source]["reason"]
        assert metrics["downstream"][source]["f1"] is None
        assert "show membranes" in metrics["downstream"][source]["reason"]
    assert data["classified"] == {} and data["losses"] == {}


def test_the_classifier_and_the_segmenters_train_on_the_settings_device(monkeypatch):
    """EvaluationSettings.device (the job's device: a GPU where there is one) reaches the
    realism classifier and every segmenter; the CPU default changes no number."""
    from workflow_lib.evaluate import downstream, protocol

    seen = []
    real_c2st, real_train = protocol.c2st, downstream.train_segmenter

    def c2st(*args, device="cpu", **kw):
        seen.append(("c2st", device))
        return real_c2st(*args, device="cpu", **kw)

    def train_segmenter(images, labels, settings, device="cpu"):
        seen.append(("segmenter", device))
        return real_train(images, labels, settings, "cpu")

    monkeypatch.setattr(protocol, "c2st", c2st)
    monkeypatch.setattr(downstream, "train_segmenter", train_segmenter)
    on_card = replace(FAST, device="cuda:3", segmenter=replace(FAST.segmenter, repeats=2))
    evaluate_reference(real_set([1, 2]), real_set([3]), True, on_card)
    assert seen == [("c2st", "cuda:3"), ("segmenter", "cuda:3"), ("segmenter", "cuda:3")]
    seen.clear()
    evaluate_reference(real_set([1, 2]), real_set([3]), True, FAST)
    assert {device for _, device in seen} == {"cpu"}


def test_membrane_simulations_get_wall_completeness_and_nuclei_do_not():
    """A membranes sample whose image is its own sketch shows every wall and none inside a
    cell; a nuclei simulation has no walls to score (a reason)."""
    train, test = real_set([1]), real_set([3])
    reference, _ = evaluate_reference(train, test, False, FAST)
    labels = membrane_tissue(0)
    image = np.float32(sketched_membranes(labels, 0))
    samples = [Sample(labels[None], 2 * image[None] - 1, image[None])]
    metrics, _ = evaluate_simulation(get_kind("membranes"), samples, train, test, reference,
                                     False, FAST, real_stain="nuclei")
    walls = metrics["completeness"]["walls"]
    for source in ("synthetic", "sketch"):
        assert walls[source]["annotated_walls"] > 50
        assert walls[source]["missed_walls_pct"] <= 2 and walls[source]["unannotated_walls_pct"] == 0
    assert "walls missed" in figures._completeness_line(metrics["completeness"])
    nuclei, _ = evaluate_simulation(get_kind("nuclei"), nuclei_samples(), train, test, reference,
                                    False, FAST)
    assert "reason" in nuclei["completeness"]["walls"]
