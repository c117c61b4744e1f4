"""Stages of envs/evaluate.yaml: the real-data reference and the evaluation of a simulation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from workflow_lib.calibrate.figures import structure_distances, structure_figure
from workflow_lib.calibrate import MEASUREMENTS, stain_calibrations
from workflow_lib.dataset import SPLITS
from workflow_lib.device import pick_device
from workflow_lib.diffusion.tiling import tile_layout
from workflow_lib.evaluate import figures, protocol
from workflow_lib.evaluate.seams import seam_summary
from workflow_lib.evaluate.settings import EvaluationSettings
from workflow_lib.io import axes_for, read_json, read_tiff, write_json
from workflow_lib.plotting import pyplot, save_figure
from workflow_lib.simulate import get_kind
from workflow_lib.workflow import config
from workflow_lib.workflow.inputs import real_images
from workflow_lib.workflow.runner import Job
from workflow_lib.workflow.stages.chunk import require


def _real_split(job: Job, split: str):
    """Real images of one split, channel ``evaluation.real_channel``, with their masks."""
    return real_images(
        dict(zip(SPLITS, job.input.index))[split],
        {Path(p).stem: p for p in job.input.masks},
        job.params.evaluation["real_channel"],
        config.key(job.wildcards.dataset, "evaluation", "real_channel"),
    )


def _real_tested_on(job: Job):
    """(real images of the splits ``evaluation.test_splits``, their name for metrics.json)."""
    splits = job.params.evaluation["test_splits"]
    images = [r for split in splits for r in _real_split(job, split)]
    return images, "the " + " and ".join(splits) + (" splits" if len(splits) > 1 else " split")


def _real_stain(job: Job) -> str:
    """The stain of the real images the evaluation compares with (channel
    ``evaluation.real_channel``): the calibrated stain measured there, else the first."""
    measured = config.calibration_channels(job.params.calibration)
    there = [s for s, c in measured.items() if c == job.params.evaluation["real_channel"]]
    return there[0] if there else next(iter(measured))


def _structure(job: Job, kind, units, figure_path) -> dict:
    """Real (calibration) vs synthetic structure of the stain of the real images compared with
    (else the first calibrated stain the kind shows), measured the same way; writes the
    figure."""
    plt = pyplot()
    measured = stain_calibrations(read_json(job.input.calibration))
    stain = next((s for s in [_real_stain(job), *measured] if s in kind.stains), _real_stain(job))
    real = measured.get(stain, {})
    shown = [u for u in units if kind.stains[min(u.channel, len(kind.stains) - 1)] == stain]
    if not shown:
        fig = plt.figure(figsize=(6, 1.5))
        fig.text(0.5, 0.5, f"no label channel shows {stain}: structure not compared", ha="center")
        save_figure(fig, figure_path)
        return {"reason": f"no label channel of this kind shows {stain}, the calibrated stain"}
    settings = config.measure_settings(job.params.calibration)
    measure, _ = MEASUREMENTS[stain]
    synthetic = measure([u.image for u in shown], [None] * len(shown), settings)
    distances = structure_distances(real, synthetic)
    save_figure(structure_figure(real, synthetic, distances), figure_path, dpi=90)
    return {"compared_with": "real train split (calibration), same unsupervised measurement",
            **distances}


def _seams(tiling, kind, samples) -> dict:
    """Does the background step where synthesis tiles met (:mod:`workflow_lib.evaluate.seams`)?
    Pooled over every channel and frame of the evaluated images."""
    spatial = samples[0].image.shape[-len(tiling["tile"]):]
    starts = tile_layout(spatial, tiling["tile"], tiling["overlap"])
    if all(len(axis) == 1 for axis in starts):
        return {"reason": f"one tile of {list(tiling['tile'])} covers each {list(spatial)} "
                          "image: no tiles met"}
    frames = [(smp.image, smp.labels) if kind.time else (smp.image[None], smp.labels[None])
              for smp in samples]
    pairs = ((channel, labels) for images, labels_t in frames
             for image, labels in zip(images, labels_t) for channel in image)
    return {"method": "background step across tile overlaps / between bands as far apart inside "
                      "tiles (1: no seam; workflow_lib/evaluate/seams.py)",
            "tiles_per_image": int(np.prod([len(axis) for axis in starts])),
            **seam_summary(pairs, starts, tiling["tile"])}


def _sample_checks(paths) -> dict:
    """What the annotation check did to the evaluated samples: how many are delivered
    (unflagged), which were redrawn and why, which stay flagged (left out of exports)."""
    checks = [(Path(p).stem, read_json(p)) for p in paths]
    return {
        "evaluated": len(checks),
        "delivered": sum(not c.get("flagged") for _, c in checks),
        "redrawn": [{"sample": i, "flagged_draws": len(c["redrawn"]),
                     "problems": [p for d in c["redrawn"] for p in d["problems"]]}
                    for i, c in checks if c.get("redrawn")],
        "flagged": [{"sample": i, "problems": c.get("problems", [])}
                    for i, c in checks if c.get("flagged")],
    }


def evaluate_reference(job: Job) -> None:
    """Real-data downstream baseline (train -> tested-on splits) and their realism floor."""
    torch.set_num_threads(job.threads)
    evaluation = job.params.evaluation
    test, tested_on = _real_tested_on(job)
    result, losses = protocol.evaluate_reference(
        _real_split(job, "train"), test,
        evaluation["real_masks"] is not None, _settings(job), tested_on,
    )
    result["downstream_real_losses"] = losses
    write_json(job.output[0], result, indent=2)


def _settings(job: Job) -> EvaluationSettings:
    """The job's evaluation settings, on the device the job has (a GPU where there is one:
    the realism classifier and the segmenters train there)."""
    device = pick_device(getattr(job.params, "device", "auto"),
                         getattr(job.params, "require_gpu", False))
    return dataclasses.replace(config.evaluation_settings(job.params.evaluation),
                               device=str(device))


def evaluate_simulation(job: Job) -> None:
    """One simulation -> metrics.json (fidelity, realism, downstream) and report figures."""
    torch.set_num_threads(job.threads)
    evaluation = job.params.evaluation
    kind = get_kind(job.params.kind)
    axes = axes_for(job.params.ndim, time=kind.time)
    files = job.params.samples   # the evaluated samples' files, made by the chunks (input)
    require(files["labels"], "simulate_chunk")
    require(files["sketch"], "sketch_chunk")
    require(files["image"] + files["check"], "synthesize_chunk")
    samples = [
        protocol.Sample(*(read_tiff(path, axes=axes)[0] for path in paths))
        for paths in zip(files["labels"], files["sketch"], files["image"], strict=True)
    ]
    reference = read_json(job.input.reference)
    test, tested_on = _real_tested_on(job)
    metrics, data = protocol.evaluate_simulation(
        kind, samples, _real_split(job, "train"), test, reference,
        evaluation["real_masks"] is not None, _settings(job), tested_on,
        real_stain=_real_stain(job),
    )
    metrics = {"dataset": job.wildcards.dataset, "simulation": job.wildcards.sim,
               "samples": _sample_checks(files["check"]), **metrics}
    out = job.output
    figures.save(figures.summary(metrics), out.summary)
    figures.save(
        figures.sample_grid(data["real"], data["sketch_units"], data["units"], data["preds"]),
        out.grid,
    )
    figures.save(figures.distributions(data["histograms"], data["spectra"]), out.distributions)
    figures.save(figures.realism_patches(data["classified"], metrics["realism"]), out.realism)
    metrics["structure"] = _structure(job, kind, data["units"], out.structure)
    metrics["seams"] = _seams(job.params.tiling, kind, samples)
    losses = {**data["losses"], "real": reference.get("downstream_real_losses")}
    figures.save(figures.loss_curves(losses), out.segmenter_loss)
    write_json(out.metrics, metrics, indent=2)
