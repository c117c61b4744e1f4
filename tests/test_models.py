"""Models that outlive a data set: more steps resume, fine-tuning (model.init_from), a trained
model used as it is (model.from), what model.pt and model.md record, figures during training."""

from __future__ import annotations

import copy
import importlib.metadata
import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from snakemake.utils import validate

from helpers import (
    SCHEMA, job_keys, load_config, planned_jobs, run_snakemake, toy_sketch, write_h5_images,
    write_raw_images, write_split_index,
)
from workflow_lib.diffusion.data import PatchSampler
from workflow_lib.diffusion.model_io import read_model, save_model
from workflow_lib.diffusion.train import CHECKPOINT, Trainer, config_hash, resume_hash
from workflow_lib.diffusion.unet import UNet
from workflow_lib.errors import ConfigError
from workflow_lib.io import file_digest, read_h5, read_tiff, write_h5, write_tiff
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow import layout, models
from workflow_lib.workflow.config import model_settings
from workflow_lib.workflow.runner import Files, Job


def check(config) -> None:
    """What rules/common.smk runs at start-up."""
    cfg.check(config)
    models.check_models(config)
from workflow_lib.workflow.stages import diffusion as stages

pytestmark = pytest.mark.usefixtures("one_torch_thread")

CPU = torch.device("cpu")
MODEL = {
    "patch_size": [16, 16], "features": 4, "levels": 4, "timesteps": 1000, "schedule": "cosine",
    "train": {"steps": 4, "batch_size": 2, "lr": 1e-3, "seed": 0, "ema": 0.9, "augment": True,
              "checkpoint_every": 2, "val_every": 2, "val_batches": 1},
}
NORMALIZE = {"lower": 1.0, "upper": 99.8}


def _cfg(model: dict | None = None, **train) -> dict:
    out = copy.deepcopy(model or MODEL)
    out["train"].update(train)
    return out


def _run(files: list[Path], cfg_: dict, ckpt: Path, **kw) -> Trainer:
    trainer = Trainer(model_settings(cfg_), 2, 1, {"model": cfg_}, CPU, **kw)
    with PatchSampler(files, cfg_["patch_size"], 1, True) as train, \
            PatchSampler(files, cfg_["patch_size"], 1, False) as val:
        trainer.run(train, val, ckpt / CHECKPOINT)
    return trainer


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- resume: the step count is not part of the checkpoint's hash -------------------------------


def test_resume_hash_ignores_step_count_and_intervals_only():
    base = {"model": MODEL, "ndim": 2}
    for change in ({"steps": 100}, {"checkpoint_every": 7}, {"val_every": 9}, {"val_batches": 3}):
        assert resume_hash({"model": _cfg(**change), "ndim": 2}) == resume_hash(base), change
    assert resume_hash({"model": _cfg(lr=5e-4), "ndim": 2}) != resume_hash(base)
    assert resume_hash({"model": _cfg(seed=1), "ndim": 2}) != resume_hash(base)
    assert resume_hash({**base, "normalize": {"lower": 2.0, "upper": 99.8}}) != resume_hash(base)


def test_more_steps_continue_from_the_checkpoint(tmp_path, caplog):
    files = write_h5_images(tmp_path)
    first = _run(files, MODEL, tmp_path / "split")
    with caplog.at_level(logging.INFO, logger="cellsynth"):
        more = _run(files, _cfg(steps=8, checkpoint_every=4), tmp_path / "split")
    assert "resumed at step 4" in caplog.text
    assert len(more.history.loss) == 8 and more.history.loss[:4] == first.history.loss
    assert more.history.val_steps == [2, 4, 6, 8]
    # ... exactly as a run of 8 steps from the start
    full = _run(files, _cfg(steps=8), tmp_path / "full")
    assert _same(full.ema.state_dict(), more.ema.state_dict())
    assert full.history.loss == more.history.loss


def test_fewer_steps_finish_at_once_with_the_checkpoint(tmp_path, caplog):
    files = write_h5_images(tmp_path)
    trained = _run(files, _cfg(steps=6), tmp_path / "c")
    with caplog.at_level(logging.INFO, logger="cellsynth"):
        fewer = _run(files, _cfg(steps=2), tmp_path / "c")
    assert "resumed at step 6" in caplog.text
    assert "finishing at once with the checkpoint's weights" in caplog.text
    assert fewer.step == 6 and len(fewer.history.loss) == 6
    assert _same(trained.ema.state_dict(), fewer.ema.state_dict())


def test_a_checkpoint_of_an_older_version_resumes_when_the_steps_are_the_same(tmp_path, caplog):
    """Older versions hashed the whole meta, step count included: ``also_resume`` accepts it."""
    files = write_h5_images(tmp_path)
    _run(files, _cfg(steps=2), tmp_path / "c")
    state = torch.load(tmp_path / "c" / CHECKPOINT, weights_only=True)
    state["hash"] = config_hash({"model": _cfg(steps=2)})
    torch.save(state, tmp_path / "c" / CHECKPOINT)
    with caplog.at_level(logging.INFO, logger="cellsynth"):
        trainer = Trainer(model_settings(_cfg(steps=4)), 2, 1, {"model": _cfg(steps=4), "normalize": NORMALIZE},
                          CPU, also_resume=(config_hash({"model": _cfg(steps=2)}),))
        with PatchSampler(files, [16, 16], 1, True) as train:
            trainer.run(train, None, tmp_path / "c" / CHECKPOINT)
    assert "resumed at step 2" in caplog.text and len(trainer.history.loss) == 4


def test_refresh_is_called_at_every_validation_before_the_end(tmp_path):
    files = write_h5_images(tmp_path)
    steps = []
    trainer = Trainer(model_settings(_cfg(steps=6)), 2, 1, {"model": MODEL}, CPU)
    with PatchSampler(files, [16, 16], 1, True) as train:
        trainer.run(train, None, tmp_path / CHECKPOINT, refresh=lambda t: steps.append(t.step))
    assert steps == [2, 4]


def test_init_weights_are_the_starting_point(tmp_path):
    source = UNet(2, 1, features=4)
    trainer = Trainer(model_settings(MODEL), 2, 1, {"model": MODEL}, CPU, init=source.state_dict())
    assert _same(trainer.net.state_dict(), source.state_dict())
    assert _same(trainer.ema.state_dict(), source.state_dict())
    fresh = Trainer(model_settings(MODEL), 2, 1, {"model": MODEL}, CPU)
    assert not _same(fresh.net.state_dict(), source.state_dict())


# -- the train_model stage: model.pt, model.md, figures, init_from ------------------------------


def _index(folder: Path, n: int = 3) -> dict[str, Path]:
    """h5 files and a train (all but one) / val (one) index, as the prepare stage writes them."""
    (folder / "h5").mkdir(parents=True, exist_ok=True)
    h5 = write_h5_images(folder / "h5", n=n)
    return write_split_index(folder / "index", {"train": h5[:-1], "val": h5[-1:]})


def train_job(folder: Path, model: dict, dataset: str = "d", init: Path | None = None) -> Job:
    """Rule train_model's job for data set ``dataset`` with its files under ``folder``."""
    index = _index(folder)
    out = folder / "model"
    inputs = Files(train=index["train"], val=index["val"], **({"init": init} if init else {}))
    return Job(
        inputs,
        Files(model=out / "model.pt", card=out / "model.md", loss=out / "loss.png",
              samples=out / "samples.png"),
        SimpleNamespace(model=model, ndim=2, channels=[0], normalize=NORMALIZE,
                        device="cpu", require_gpu=False,
                        checkpoint_dir=out / "checkpoints"),
        SimpleNamespace(dataset=dataset),
    )


def test_model_pt_and_card_record_data_normalisation_versions_and_steps(tmp_path):
    job = train_job(tmp_path / "a", MODEL, "a")
    for i in range(3):  # as the conversion writes it; the first image's counts
        image, _ = read_h5(tmp_path / f"a/h5/img{i}.h5")
        write_h5(tmp_path / f"a/h5/img{i}.h5", {"data/image": image},
                 {"element_size_um": np.array([0.5, 0.25 + i])})
    stages.train_model(job)
    meta = read_model(job.output.model)["meta"]
    assert meta["normalize"] == NORMALIZE and meta["pixel_size"] == [0.5, 0.25]
    assert meta["versions"] == {"cellsynth": importlib.metadata.version("cellsynth"),
                                "torch": torch.__version__}
    assert meta["train_files"] == ["img0.h5", "img1.h5"] and meta["steps"] == 4
    assert meta["dataset"] == "a" and meta["init_from"] is None
    assert meta["loss"]["train"] > 0 and meta["loss"]["val"] > 0
    card = Path(job.output.card).read_text()
    for text in ("img0.h5, img1.h5", "steps: 4", "percentiles 1.0 -> 0, 99.8 -> 1",
                 "pixel size: [0.5, 0.25] um", f"cellsynth {meta['versions']['cellsynth']}",
                 f"from: {job.output.model}", '"features": 4',
                 "trained 4 steps; the method's budget on a GPU is 50000", "short budget",
                 "realism.synthetic.c2st"):
        assert text in card, text
    assert not list(Path(job.output.model).parent.glob(".tmp-*"))  # written atomically


def test_pixel_size_is_null_when_the_images_have_none(tmp_path):
    job = train_job(tmp_path / "a", _cfg(steps=1), "a")
    stages.train_model(job)
    assert read_model(job.output.model)["meta"]["pixel_size"] is None
    assert "pixel size: unknown" in Path(job.output.card).read_text()


def test_figures_are_redrawn_at_every_validation(tmp_path, monkeypatch):
    drawn = []
    original = stages.plot_samples

    def record(guides, outputs, path, title):
        original(guides, outputs, path, title)
        drawn.append((title.rsplit("step ", 1)[1], Path(path).stat().st_size > 0))

    monkeypatch.setattr(stages, "plot_samples", record)
    losses = []
    original_loss = stages.plot_loss
    monkeypatch.setattr(stages, "plot_loss",
                        lambda h, p: (losses.append(len(h.loss)), original_loss(h, p)))
    job = train_job(tmp_path / "a", _cfg(steps=6), "a")
    stages.train_model(job)
    assert drawn == [("2", True), ("4", True), ("6", True)]
    assert losses == [2, 4, 6]


def test_init_from_starts_from_those_weights_and_trains_own_steps(tmp_path, caplog):
    source = train_job(tmp_path / "a", MODEL, "a")
    stages.train_model(source)
    job = train_job(tmp_path / "b", _cfg(steps=3, model=_cfg(lr=1e-9)), "b",
                    init=Path(source.output.model))
    job.params.model["init_from"] = "results/a/model/model.pt"
    with caplog.at_level(logging.INFO, logger="cellsynth"):
        stages.train_model(job)
    assert "fine-tuning: training starts from the weights of" in caplog.text
    meta = read_model(job.output.model)["meta"]
    assert meta["steps"] == 3 and meta["init_from"] == {
        "path": "results/a/model/model.pt", "sha256": file_digest(source.output.model)}
    # lr 1e-9: three steps barely move the weights away from a's
    a, b = read_model(source.output.model)["state_dict"], read_model(job.output.model)["state_dict"]
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert "fine-tuned from `results/a/model/model.pt`" in Path(job.output.card).read_text()


def test_init_from_with_another_network_is_refused_naming_the_keys(tmp_path):
    source = train_job(tmp_path / "a", _cfg(steps=1), "a")
    stages.train_model(source)
    other = _cfg(steps=1)
    other.update(features=8, levels=3, init_from="results/a/model/model.pt")
    job = train_job(tmp_path / "b", other, "b", init=Path(source.output.model))
    with pytest.raises(ConfigError, match=r"config key 'datasets\.b\.model\.init_from': "
                       r"results/a/model/model\.pt does not fit this data set's network: "
                       r"model\.features 4 there, 8 here; model\.levels 4 there, 3 here$"):
        stages.train_model(job)


def test_checkpoint_of_another_init_model_is_not_resumed(tmp_path, caplog):
    a = train_job(tmp_path / "a", _cfg(steps=1), "a")
    stages.train_model(a)
    stages.train_model(train_job(tmp_path / "b", _cfg(steps=2), "b"))
    # the same data set, now fine-tuned from a: b's checkpoint must not pass for that
    fine = train_job(tmp_path / "b", {**_cfg(steps=2), "init_from": "a.pt"}, "b",
                     init=Path(a.output.model))
    with caplog.at_level(logging.INFO, logger="cellsynth"):
        stages.train_model(fine)
    assert "made with another config" in caplog.text and "resumed at step" not in caplog.text


# -- model.from: the fit of a model and a data set ---------------------------------------------


def _save(path: Path, ndim=2, channels=1, normalize=NORMALIZE, levels=4, timesteps=1000):
    save_model(path, UNet(ndim, channels, features=4, levels=levels), {
        "model": {"schedule": "cosine", "timesteps": timesteps}, "ndim": ndim,
        "channels": channels, **({"normalize": normalize} if normalize else {})})


def _dataset(**changes) -> dict:
    config = {"datasets": {"b": {"images": "x/*.tif", "model": {"from": "m.pt"},
                                 "synthesis": {"tile": [32, 32], "t_start": 40}, **changes}}}
    validate(config, SCHEMA)
    return config


def _files() -> dict[str, list[str]]:
    """The files param of a synthesis chunk of sample 0: s.tif, l.tif -> o.tif, o.json."""
    return {"sketch": ["s.tif"], "labels": ["l.tif"], "image": ["o.tif"], "check": ["o.json"]}


@pytest.mark.parametrize("saved, changes, key, problem", [
    ({"ndim": 3}, {}, "ndim", "2, but the model m.pt was trained on 3D data"),
    ({"channels": 2}, {}, "channels", "1 channel(s), but the model m.pt was trained on 2"),
    ({}, {"normalize": {"lower": 0.5}}, "normalize",
     "percentiles 0.5-99.8, but the model m.pt was trained on images normalised with 1.0-99.8"),
    ({"levels": 6}, {"synthesis": {"tile": [48, 48], "t_start": 40}}, "synthesis.tile",
     "[48, 48]: every size must be a multiple of 32 (2**(levels-1) of the model m.pt)"),
    ({"timesteps": 20}, {}, "synthesis.t_start", "40 exceeds the 20 timesteps of the model m.pt"),
])
def test_a_model_that_does_not_fit_is_refused_at_start_up_and_at_load_time(
        tmp_path, monkeypatch, saved, changes, key, problem):
    monkeypatch.chdir(tmp_path)
    _save(tmp_path / "m.pt", **saved)
    config = _dataset(**changes)
    message = f"config key 'datasets.b.{key}': {problem}"
    with pytest.raises(ConfigError) as start_up:
        check(config)
    assert str(start_up.value).startswith(message), start_up.value
    # the synthesize job checks again (the file may not have existed at start-up)
    ds = config["datasets"]["b"]
    job = Job(Files(model="m.pt", sketches="sketched.json", labels="simulated.json"),
              Files("synthesized.json"),
              SimpleNamespace(synthesis=ds["synthesis"], model_fit=models.model_fit("b", ds),
                              kind="nuclei", device="cpu", require_gpu=False, files=_files()),
              SimpleNamespace(chunk="0-0", dataset="b"))
    with pytest.raises(ConfigError) as load:
        stages.synthesize_chunk(job)
    assert str(load.value) == str(start_up.value)


def test_a_fitting_model_synthesises_and_an_old_one_only_warns(tmp_path, monkeypatch, caplog):
    monkeypatch.chdir(tmp_path)
    _save(tmp_path / "m.pt", normalize=None)  # an older cellsynth recorded no normalisation
    config = _dataset()
    check(config)
    ds = config["datasets"]["b"]
    write_tiff(tmp_path / "s.tif", toy_sketch((32, 32)), "CYX")
    write_tiff(tmp_path / "l.tif", np.zeros((1, 32, 32), np.uint16), "CYX")
    guard = {**ds["synthesis"]["guard"], "enabled": False}
    synthesis = {**cfg.synthesis_params(ds, {"calibrate": False}), "steps": 2, "guard": guard, "texture": False}
    job = Job(Files(model="m.pt", sketches="sketched.json", labels="simulated.json"),
              Files("synthesized.json"),
              SimpleNamespace(synthesis=synthesis, model_fit=models.model_fit("b", ds),
                              kind="nuclei", device="cpu", require_gpu=False, files=_files()),
              SimpleNamespace(chunk="0-0", dataset="b"))
    with caplog.at_level(logging.WARNING, logger="cellsynth"):
        stages.synthesize_chunk(job)
    assert "records no normalisation" in caplog.text and "datasets.b.normalize" in caplog.text
    assert read_tiff(tmp_path / "o.tif")[0].shape == (32, 32)


def _two(a_model: dict | None = None, b_model: dict | None = None) -> dict:
    config = {"datasets": {
        "a": {"images": "x/*.tif", "model": a_model or {}},
        "b": {"images": "y/*.tif", "model": b_model or {}},
    }}
    validate(config, SCHEMA)
    return config


@pytest.mark.parametrize("a_model, b_model, key, problem", [
    ({}, {"from": "m.pt", "init_from": "m.pt"}, "b.model.init_from", "cannot go with model.from"),
    ({}, {"from": "results/b/model/model.pt"}, "b.model.from", "is this data set's own model"),
    ({}, {"init_from": "./results/b/model/model.pt"}, "b.model.init_from",
     "is this data set's own model"),
    ({}, {"from": "missing.pt"}, "b.model.from",
     "'missing.pt' does not exist (and no data set of this config trains it)"),
    ({"from": "m.pt"}, {"from": "results/a/model/model.pt"}, "b.model.from",
     "'results/a/model/model.pt' is never trained: data set 'a' uses model.from 'm.pt'"),
    ({"init_from": "results/b/model/model.pt"}, {"init_from": "results/a/model/model.pt"},
     "a.model.init_from", "fine-tunes in a circle: a -> b -> a"),
])
def test_model_sources_are_checked_at_start_up(tmp_path, monkeypatch, a_model, b_model, key,
                                               problem):
    monkeypatch.chdir(tmp_path)
    _save(tmp_path / "m.pt")
    with pytest.raises(ConfigError, match=r"config key 'datasets\." + key.replace(".", r"\.")) as e:
        check(_two(a_model, b_model))
    assert problem in str(e.value)


def test_another_data_sets_model_may_be_named_before_it_exists(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = _two({}, {"from": "results/a/model/model.pt"})
    check(config)
    assert layout.model_path(config, "b") == "results/a/model/model.pt"
    assert layout.trained_datasets(config) == ["a"]
    assert layout.train_targets(config) == ["results/a/model/model.pt"]
    config = _two({}, {"init_from": "results/a/model/model.pt"})
    check(config)
    assert layout.init_model_inputs(config, "b") == {"init": "results/a/model/model.pt"}
    assert layout.init_model_inputs(config, "a") == {}


def test_a_3d_data_set_using_a_model_needs_no_patch_size(tmp_path, monkeypatch):
    """With model.from the file's network applies: the schema's 2D patch_size default is moot."""
    monkeypatch.chdir(tmp_path)
    _save(tmp_path / "m.pt", ndim=3)
    check(_dataset(ndim=3, synthesis={"tile": [16, 32, 32], "t_start": 40}))


# -- end to end: a second data set synthesises with the first one's model -----------------------


@pytest.mark.e2e
def test_a_data_set_synthesises_with_another_data_sets_model(tmp_path):
    (tiny,) = load_config("tiny")["datasets"].values()
    write_raw_images(tmp_path / "raw/a", seed=0)
    write_raw_images(tmp_path / "raw/b", seed=1)
    b = copy.deepcopy(tiny)
    b["model"] = {"from": "results/a/model/model.pt"}
    config = {"datasets": {"a": {**tiny, "images": "raw/a/*.tif", "simulations": {}},
                           "b": {**b, "images": "raw/b/*.tif"}}}
    plan = planned_jobs(run_snakemake(tmp_path, config, "-n", "synthesize").stdout)
    keys = job_keys(plan)
    assert ("train_model", "a") in keys and ("train_model", "b") not in keys, keys
    assert ("synthesize_chunk", "b") in keys, keys
    run_snakemake(tmp_path, config, "synthesize", "--set-threads", "train_model=1",
                  "synthesize_chunk=1")
    image, _ = read_tiff(tmp_path / "results/b/sim/images/0.tif")
    assert image.shape == (48, 48) and np.isfinite(image).all()
    assert not (tmp_path / "results/b/model").exists()
    card = (tmp_path / "results/a/model/model.md").read_text()
    assert "from: results/a/model/model.pt" in card and "steps: 4" in card
    # the model now exists: a data set it does not fit stops at start-up, naming the key
    config["datasets"]["b"]["normalize"] = {"lower": 2.0, "upper": 99.8}
    proc = run_snakemake(tmp_path, config, "-n", "synthesize", check=False)
    assert proc.returncode != 0
    assert ("config key 'datasets.b.normalize': percentiles 2.0-99.8, but the model results/a/"
            "model/model.pt was trained on images normalised with 1.0-99.8") in proc.stdout
