"""The evaluation protocol: one simulation's outputs + the real data set -> metrics.

Two entry points: :func:`evaluate_reference` (per data set: the real-data baseline and the
real-vs-real realism floor, shared by all simulations) and :func:`evaluate_simulation`.
Results are JSON-ready dicts; a protocol that does not apply gives nulls and a reason.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow_lib.dataset import RealImage
from workflow_lib.evaluate import views
from workflow_lib.evaluate.c2st import c2st, c2st_text, memorisation
from workflow_lib.evaluate.completeness import completeness
from workflow_lib.evaluate.downstream import not_applicable, train_and_test
from workflow_lib.evaluate.matching import instance_scores
from workflow_lib.evaluate.realism import (
    intensity_histogram,
    radial_power_spectrum,
    realism_scores,
    slices_2d,
)
from workflow_lib.evaluate.segment import segment_blobs, segment_cells
from workflow_lib.evaluate.walls import wall_completeness
from workflow_lib.evaluate.settings import EvaluationSettings
from workflow_lib.simulate import BLOBS, CELLS, Kind

log = logging.getLogger("cellsynth")

FEATURE_NETWORK = (
    "RandomTextureFeatures: fixed seeded random 3-scale CNN, channel means and stds of "
    "filter responses (texture statistics; no download, comparable across runs)"
)


@dataclass
class Sample:
    """One simulated sample as stored: labels, sketch in [-1, 1], synthetic image in [0, 1]."""

    labels: np.ndarray
    sketch: np.ndarray
    image: np.ndarray


def _realism(
    real: Sequence[np.ndarray], fake: Sequence[np.ndarray], s: EvaluationSettings,
    masks: tuple[list[np.ndarray], list[np.ndarray]] | None = None,
) -> tuple[dict, dict]:
    """The classifier two-sample test first, then the secondary distances; and the
    classifier's patches with their held-out probabilities (figure data). ``masks``: both
    sets' label planes, for the C2ST's layout split."""
    test, patches = c2st(real, fake, s.c2st, device=s.device, masks=masks)
    scores = realism_scores(
        real, fake, patch=s.patch, subsets=s.subsets, seed=s.realism_seed, width=s.width
    )
    return {"c2st": test, **scores}, patches


def _memorisation(train, held_out, fake, s: EvaluationSettings) -> dict:
    m = s.memorisation
    return memorisation(train, held_out, fake, patch=m.patch, stride=m.stride,
                        max_patches=s.c2st.max_patches, seed=s.realism_seed)


def _completeness(images, labels, s: EvaluationSettings) -> dict[str, Any]:
    return completeness(images, labels, sigma=s.completeness_sigma, k=s.completeness_k,
                        min_size=s.completeness_min_size)


def _walls(units: Sequence[views.Unit], sketch_units: Sequence[views.Unit]) -> dict[str, Any]:
    """Wall completeness of the label channels that show cells by their membranes, in the
    synthetic images and in their sketches (right by construction: the floor)."""
    if not any(u.method == CELLS for u in units):
        return {"reason": "no label channel of this kind shows cells by their membranes"}
    return {
        **{name: wall_completeness([u.image for u in group if u.method == CELLS],
                                   [u.labels for u in group if u.method == CELLS])
           for name, group in (("synthetic", units), ("sketch", sketch_units))},
        "method": "bright walls on label boundaries, none inside a cell "
                  "(see workflow_lib/evaluate/walls.py)",
    }


def _walls_text(block: Mapping[str, Any]) -> str:
    def pct(value):
        return "n/a" if value is None else f"{value:.1f} %"

    return (f"{block['annotated_walls']} walls, missed {pct(block['missed_walls_pct'])}, "
            f"unannotated {pct(block['unannotated_walls_pct'])} of {block['cells']} cells, "
            f"offset {block['wall_offset_px']} px")


def _count(labels: np.ndarray) -> int:
    """Number of instances (non-zero ids) in a label image."""
    ids = np.unique(labels)
    return int(np.count_nonzero(ids))


def _annotated(images: Sequence[RealImage]) -> list[RealImage]:
    return [r for r in images if r.mask is not None]


def evaluate_reference(
    train: Sequence[RealImage],
    test: Sequence[RealImage],
    masks_given: bool,
    s: EvaluationSettings,
    tested_on: str = "the test split",
) -> tuple[dict[str, Any], list[float]]:
    """Real-data baseline (train split -> ``test``) and realism of real train vs ``test``.

    ``test``: the real images tested on, named ``tested_on`` in the reasons (e.g. "the val and
    test splits"). Returns (JSON-ready dict, segmenter loss per step; [] when no baseline was
    trained).
    """
    out: dict[str, Any] = {}
    if train and test:
        out["realism_train_vs_test"], _ = _realism(
            [p for r in test for p in slices_2d(r.image)],
            [p for r in train for p in slices_2d(r.image)],
            s,
        )
        log.info("realism floor (C2ST, real train vs %s): %s", tested_on,
                 c2st_text(out["realism_train_vs_test"]))
    else:
        out["realism_train_vs_test"] = {"reason": f"the train split or {tested_on} is empty"}
    annotated_test = _annotated(test)
    out["completeness_real"] = (
        _completeness([r.image for r in annotated_test], [r.mask for r in annotated_test], s)
        if annotated_test else {"reason": f"no image of {tested_on} has a real mask"}
    )
    losses: list[float] = []
    reason = _downstream_reason(test, masks_given, tested_on)
    if reason is None and not _annotated(train):
        reason = "no image of the train split has a real mask"
    if reason is None:
        fit, tst = _annotated(train), _annotated(test)
        out["downstream_real"], losses = train_and_test(
            [r.image for r in fit], [r.mask for r in fit],
            [r.image for r in tst], [r.mask for r in tst], s.segmenter, device=s.device,
        )
    else:
        out["downstream_real"] = not_applicable(reason)
    return out, losses


def _downstream_reason(test: Sequence[RealImage], masks_given: bool, tested_on: str) -> str | None:
    if not masks_given:
        return "evaluation.real_masks is null: no real annotations to test on"
    if not _annotated(test):
        return f"no image of {tested_on} has a real mask"
    return None


def evaluate_simulation(
    kind: Kind,
    samples: Sequence[Sample],
    train: Sequence[RealImage],
    test: Sequence[RealImage],
    reference: Mapping[str, Any],
    masks_given: bool,
    s: EvaluationSettings,
    tested_on: str = "the test split",
    real_stain: str | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Annotation fidelity, realism and downstream scores of one simulation.

    ``real_stain``: what the real images show (the calibration's stain); a simulation whose
    downstream channel shows another stain gets no realism or downstream scores (a reason
    instead: cells seen by their membranes are not comparable with nuclei).

    ``train``: the real training images (memorisation measures distances to them);
    ``test``: the real images tested on, named ``tested_on``; ``reference``:
    :func:`evaluate_reference`'s dict.
    Returns (metrics, figure data: units, predictions, histograms, spectra, the realism
    classifier's patches, losses).
    """
    units = [u for smp in samples for u in views.units(kind, smp.labels, smp.image)]
    preds = [
        # Membranes are thin: cells get twice the blur so boundaries close despite noise.
        segment_cells(u.image, sigma=2 * s.sigma)
        if u.method == CELLS
        else segment_blobs(u.image, _count(u.labels), sigma=s.sigma, min_distance=s.min_distance)
        for u in units
    ]
    fidelity = {}
    for channel in sorted({u.channel for u in units}):
        idx = [k for k, u in enumerate(units) if u.channel == channel]
        scores = instance_scores([units[k].labels for k in idx], [preds[k] for k in idx])
        fidelity[str(channel)] = {"method": units[idx[0]].method, **scores}

    log.info("fidelity: %s", {c: round(v["f1"], 3) for c, v in fidelity.items()})
    blobs = [u for u in units if u.method == BLOBS]
    sketch_units = [views.Unit((u.image + 1) / 2, u.labels, u.method, u.channel)
                    for smp in samples for u in views.units(kind, smp.labels, smp.sketch)]
    complete = {
        "synthetic": _completeness([u.image for u in blobs], [u.labels for u in blobs], s)
        if blobs else {"reason": "no label channel of this kind shows blob-like objects"},
        "real_floor": reference.get("completeness_real"),
        "method": "objects detected without the count (see workflow_lib/evaluate/completeness.py)",
        "walls": _walls(units, sketch_units),
    }
    log.info("completeness: %s", complete["synthetic"])
    walls = complete["walls"]
    if "synthetic" in walls:
        log.info("wall completeness (membranes): synthetic %s; sketch %s",
                 _walls_text(walls["synthetic"]), _walls_text(walls["sketch"]))

    synth = [u for smp in samples for u in views.downstream_units(kind, smp.labels, smp.image)]
    sketch = [
        views.Unit((u.image + 1) / 2, u.labels, u.method, u.channel)
        for smp in samples
        for u in views.downstream_units(kind, smp.labels, smp.sketch)
    ]
    real_planes = [p for r in test for p in slices_2d(r.image)]
    synth_planes = [p for u in synth for p in slices_2d(u.image)]
    sketch_planes = [p for u in sketch for p in slices_2d(u.image)]
    classified: dict[str, Any] = {}
    shown = kind.stains[min(kind.downstream_channel, len(kind.stains) - 1)]
    unlike = (None if real_stain is None or shown == real_stain else
              f"this simulation's images show {shown}, the real images {real_stain} "
              "(calibration.stain): nothing to compare with")
    if unlike:
        realism = {"synthetic": {"reason": unlike}, "sketch": {"reason": unlike}}
    elif real_planes:
        realism = {}
        # The labels of both sides, where every real image tested on has a mask: the C2ST
        # then tells a layout the real images lack from a texture they lack.
        real_labels = ([p for r in test for p in slices_2d(r.mask)]
                       if all(r.mask is not None for r in test) else None)
        synth_labels = [p for u in synth for p in slices_2d(u.labels)]
        for name, planes in (("synthetic", synth_planes), ("sketch", sketch_planes)):
            masks = None if real_labels is None else (real_labels, synth_labels)
            realism[name], classified[name] = _realism(real_planes, planes, s, masks)
        train_planes = [p for r in train for p in slices_2d(r.image)]
        realism["synthetic"] = {
            "c2st": realism["synthetic"]["c2st"],
            "memorisation": _memorisation(train_planes, real_planes, synth_planes, s),
            **{k: v for k, v in realism["synthetic"].items() if k != "c2st"},
        }
    else:
        realism = {"synthetic": {"reason": f"{tested_on} is empty"},
                   "sketch": {"reason": f"{tested_on} is empty"}}
    log.info("realism (C2ST accuracy, 0.5 = real-like): synthetic %s, sketch %s; memorisation %s;"
             " KID synthetic %s, sketch %s",
             c2st_text(realism["synthetic"]), c2st_text(realism["sketch"]),
             (realism["synthetic"].get("memorisation") or {}).get("ratio"),
             realism["synthetic"].get("kid"), realism["sketch"].get("kid"))
    realism["real_train_vs_test"] = reference.get("realism_train_vs_test")
    realism["feature_network"] = FEATURE_NETWORK
    realism["compared_with"] = f"real images of {tested_on}"

    losses: dict[str, list[float]] = {}
    reason = unlike or _downstream_reason(test, masks_given, tested_on)
    downstream: dict[str, Any] = {"tested_on": f"real images of {tested_on} with a real mask"}
    for name, pairs in (("synthetic", synth), ("sketch", sketch)):
        if reason is not None:
            downstream[name] = not_applicable(reason)
            continue
        tst = _annotated(test)
        downstream[name], losses[name] = train_and_test(
            [u.image for u in pairs], [u.labels for u in pairs],
            [r.image for r in tst], [r.mask for r in tst], s.segmenter, device=s.device,
        )
    downstream["real"] = reference.get("downstream_real")

    metrics = {
        "kind": kind.name,
        "n_samples": len(samples),
        "notes": list(kind.notes),
        "completeness": complete,
        "fidelity": fidelity,
        "realism": realism,
        "downstream": downstream,
    }
    figure_data = {
        "units": units,
        "preds": preds,
        # Sketches unit by unit beside `units`, mapped to [0, 1] like the images.
        "sketch_units": sketch_units,
        "real": real_planes,
        "classified": classified,
        "histograms": {
            "real": intensity_histogram(real_planes) if real_planes else None,
            "sketch": intensity_histogram(sketch_planes),
            "synthetic": intensity_histogram(synth_planes),
        },
        "spectra": {
            "real": radial_power_spectrum(real_planes) if real_planes else None,
            "sketch": radial_power_spectrum(sketch_planes),
            "synthetic": radial_power_spectrum(synth_planes),
        },
        "losses": losses,
    }
    return metrics, figure_data
