"""One function per rule: the job's files in, its files out (see :class:`.runner.Job`).

This is where files meet the domain packages: stages read inputs, build typed settings from the
rule's params (:mod:`.config`), call array-level functions and write outputs atomically.
Rule params hold only what a job uses, so changing one setting reruns only the jobs it affects.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib.dataset import SPLITS, index_files, write_index
from workflow_lib.errors import InputError
from workflow_lib.io import atomic_write_text, axes_for, read_tiff, write_h5, write_tiff
from workflow_lib.simulate import Kind, get_kind, sample_rng, simulate, track_text
from workflow_lib.workflow import config
from workflow_lib.workflow.inputs import read_mask, real_images
from workflow_lib.workflow.runner import Job

log = logging.getLogger("cellsynth")

_PREVIEW_TILES = 8
# The training preview grid uses fixed SDEdit settings (the method's t_start = 400 of 1000)
# rather than the data set's synthesis config, so tuning synthesis never reruns (and resets)
# training.
_PREVIEW_T_FRACTION = 0.4
_PREVIEW = {"sampler": "dpmpp", "steps": 20, "blur": 1.0, "clip": True}


def _progress(desc: str, every: float):
    from tqdm import tqdm

    return lambda it: tqdm(it, desc=desc, file=sys.stderr, mininterval=every)


def _device(job: Job):
    import torch

    from workflow_lib.device import pick_device

    torch.set_num_threads(job.threads)
    return pick_device(job.params.device, job.params.require_gpu)


# --- prepare ---------------------------------------------------------------------------------

def demo_data(job: Job) -> None:
    from workflow_lib.prepare.demo import write_demo

    write_demo(job.output.images, job.output.masks)


def convert_image(job: Job) -> None:
    from workflow_lib.prepare.convert import convert_image as convert

    p = job.params
    convert(
        job.input[0],
        job.output[0],
        ndim=p.ndim,
        channels=p.channels,
        axes=p.axes,
        h5_dataset=p.h5_dataset,
        normalize_percentiles=(p.normalize["lower"], p.normalize["upper"]),
        rescale=p.rescale,
    )


def index_dataset(job: Job) -> None:
    split = job.params.split
    result = write_index(
        list(job.input), dict(zip(SPLITS, job.output)),
        val=split["val"], test=split["test"], seed=split["seed"],
    )
    for name, images in result.items():
        log.info("%s: %d images %s", name, len(images), images)


# --- train -----------------------------------------------------------------------------------

def train_model(job: Job) -> None:
    """Train on the train split, validate on the val split, write model.pt and the figures.

    An empty val split is allowed (no validation loss; the sample grid then uses train patches).
    """
    from workflow_lib.diffusion.data import PatchSampler
    from workflow_lib.diffusion.model_io import save_model
    from workflow_lib.diffusion.plots import plot_loss, plot_samples
    from workflow_lib.diffusion.synthesis import synthesize
    from workflow_lib.diffusion.train import CHECKPOINT, Trainer

    device = _device(job)
    model_cfg, ndim, channels = job.params.model, job.params.ndim, len(job.params.channels)
    train_files = list(index_files(job.input.train).values())
    val_files = list(index_files(job.input.val).values())
    meta = {
        "model": dict(model_cfg),
        "ndim": ndim,
        "channels": channels,
        "train_files": sorted(p.name for p in train_files),
    }
    patch, augment = model_cfg["patch_size"], model_cfg["train"]["augment"]
    trainer = Trainer(model_cfg, ndim, channels, meta, device)
    log.info(
        "training a %dD U-Net (%d parameters) on %d train / %d val images, config hash %s",
        ndim, sum(p.numel() for p in trainer.net.parameters()), len(train_files),
        len(val_files), trainer.hash,
    )
    seed = model_cfg["train"]["seed"]
    with PatchSampler(train_files, patch, channels, augment) as train:
        val = PatchSampler(val_files, patch, channels, augment=False) if val_files else None
        try:
            trainer.run(train, val, Path(job.params.checkpoint_dir) / CHECKPOINT,
                        _progress("train", 10))
            guides = (val or train).batch(np.random.default_rng(seed), _PREVIEW_TILES)
        finally:
            if val is not None:
                val.close()
    save_model(job.output.model, trainer.ema, {**meta, "steps": trainer.step, "hash": trainer.hash})
    plot_loss(trainer.history, job.output.loss)
    params = {
        **_PREVIEW,
        "t_start": round(_PREVIEW_T_FRACTION * model_cfg["timesteps"]),
        "tile": list(patch),
        "overlap": 0,
        "batch": _PREVIEW_TILES,
    }
    outputs = synthesize(guides, trainer.ema.eval(), trainer.schedule, params, device, (seed,))
    plot_samples(
        (guides + 1) / 2, outputs, job.output.samples,
        f"SDEdit from t={params['t_start']}, {params['sampler']} ({params['steps']} steps), "
        f"step {trainer.step}",
    )


# --- simulate and sketch ---------------------------------------------------------------------

def _write_sample_meta(path: str, meta: dict[str, Any]) -> None:
    atomic_write_text(path, json.dumps(meta, indent=1) + "\n")


def _read_sample_meta(path: str) -> dict[str, Any]:
    """The metadata :func:`simulate_sample` wrote beside a label image."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable sample metadata file ({exc})") from exc


def simulate_sample(job: Job) -> None:
    """One simulated label image (+ metadata JSON: kind, seed, instances, tracks, ...)."""
    p, wc = job.params, job.wildcards
    i = int(wc.i)
    shape = list(p.shape)
    kind, settings = config.simulation_params(wc.dataset, wc.sim, p.kind, p.params, len(shape))
    mask_path = job.input.mask if kind.needs_mask else None
    mask = read_mask(mask_path, len(shape)) if mask_path else None
    with config.keyed(config.sim_key(wc.dataset, wc.sim, "params")):
        sim = simulate(kind.name, shape, settings, sample_rng(p.seed, i), mask=mask)
    if sim.count == 0:
        log.warning("%s sample %d has no instance (an empty label image)",
                    config.sim_key(wc.dataset, wc.sim), i)
    layout = axes_for(len(shape), time=kind.time)
    write_tiff(job.output.labels, sim.labels, layout)
    _write_sample_meta(job.output.meta, {
        "kind": kind.name,
        "sample": i,
        "seed": p.seed,
        "shape": shape,
        "layout": layout,
        "array_shape": list(sim.labels.shape),
        "instances": sim.count,
        "params": p.params,
        "source_mask": str(mask_path) if mask_path else None,
        "tracks": sim.tracks.tolist() if sim.tracks is not None else None,
    })
    log.info("%s sample %d: %d instances, labels %s", kind.name, i, sim.count, sim.labels.shape)


def export_tracks(job: Job) -> None:
    """Cell Tracking Challenge ``res_track.txt`` of a time series sample, from its metadata."""
    meta = _read_sample_meta(job.input[0])
    tracks = np.asarray(meta["tracks"] or [], dtype=np.int64).reshape(-1, 4)
    atomic_write_text(job.output[0], track_text(tracks))


def _read_labels(path: str, kind: Kind, spatial: int) -> np.ndarray:
    labels, _ = read_tiff(path, axes=axes_for(spatial, time=kind.time))
    return labels


def sketch_sample(job: Job) -> None:
    """Labels -> sketch TIFF in [-1, 1], annotation HDF5 and PNG preview."""
    from workflow_lib.sketch import annotations, make_sketch
    from workflow_lib.sketch.preview import write_preview

    wc = job.wildcards
    i = int(wc.i)
    meta = _read_sample_meta(job.input.meta)
    kind = get_kind(meta["kind"])
    spatial = len(meta["shape"])
    labels = _read_labels(job.input.labels, kind, spatial)
    prefix = config.sim_key(wc.dataset, wc.sim, "sketch")
    params = config.sketch_settings(job.params.sketch, spatial, prefix)
    with config.keyed(prefix):
        sketch = make_sketch(labels, kind, params, sample_rng(job.params.seed, i, stream=1))
    layout = axes_for(spatial, time=kind.time)
    write_tiff(job.output.sketch, sketch, layout)
    write_h5(
        job.output.h5,
        annotations(labels, sketch, time=kind.time),
        {"kind": kind.name, "layout": layout, "sample": i},
    )
    title = f"{wc.sim} #{i}: {kind.name}, {meta['instances']} ids"
    write_preview(job.output.preview, labels, sketch, title, time=kind.time)
    log.info("sketch %s sample %d: %s in [%.3f, %.3f]",
             config.sim_key(wc.dataset, wc.sim), i, sketch.shape, sketch.min(), sketch.max())


# --- synthesize ------------------------------------------------------------------------------

def synthesize_image(job: Job) -> None:
    """One sketch TIFF in [-1, 1] -> one synthetic image TIFF in [0, 1], same layout and axes.

    Time series (T, C, ...) are T independent frames. Seeded by (synthesis seed, sample index).
    """
    from workflow_lib.diffusion.model_io import load_model, schedule_of
    from workflow_lib.diffusion.synthesis import channel_batch, synthesize, to_layout

    device = _device(job)
    params = job.params.synthesis
    sketch_path = job.input.sketch
    net, meta = load_model(job.input.model, device)
    ndim = meta["ndim"]
    array, axes = read_tiff(sketch_path)
    sketch, has_time = to_layout(array.astype(np.float32), axes, ndim, str(sketch_path))
    if sketch.min() < -1 or sketch.max() > 1:
        log.warning("%s: values outside [-1, 1] are clipped", sketch_path)
        sketch = sketch.clip(-1, 1)
    batch = channel_batch(sketch, net.config["channels"], str(sketch_path))
    out = synthesize(
        batch, net, schedule_of(meta), params, device, (params["seed"], int(job.wildcards.i)),
        _progress("denoise", 5),
    ).reshape(sketch.shape)
    write_tiff(job.output[0], out if has_time else out[0], axes_for(ndim, time=has_time))


# --- evaluate --------------------------------------------------------------------------------

def _real_split(job: Job, split: str):
    """Real images of one split, channel ``evaluation.real_channel``, with their masks."""
    return real_images(
        dict(zip(SPLITS, job.input.index))[split],
        {Path(p).stem: p for p in job.input.masks},
        job.params.evaluation["real_channel"],
        config.key(job.wildcards.dataset, "evaluation", "real_channel"),
    )


def evaluate_reference(job: Job) -> None:
    """Real-data downstream baseline (train -> test) and real train-vs-test realism."""
    import torch

    from workflow_lib.evaluate.protocol import evaluate_reference as reference

    torch.set_num_threads(job.threads)
    evaluation = job.params.evaluation
    result, losses = reference(
        _real_split(job, "train"), _real_split(job, "test"),
        evaluation["real_masks"] is not None, config.evaluation_settings(evaluation),
    )
    result["downstream_real_losses"] = losses
    atomic_write_text(job.output[0], json.dumps(result, indent=2) + "\n")


def evaluate_simulation(job: Job) -> None:
    """One simulation -> metrics.json (fidelity, realism, downstream) and report figures."""
    import torch

    from workflow_lib.evaluate import figures
    from workflow_lib.evaluate.protocol import Sample
    from workflow_lib.evaluate.protocol import evaluate_simulation as evaluate

    torch.set_num_threads(job.threads)
    evaluation = job.params.evaluation
    kind = get_kind(job.params.kind)
    axes = axes_for(job.params.ndim, time=kind.time)
    samples = [
        Sample(*(read_tiff(path, axes=axes)[0] for path in paths))
        for paths in zip(job.input.labels, job.input.sketches, job.input.images)
    ]
    reference = json.loads(Path(job.input.reference).read_text(encoding="utf-8"))
    metrics, data = evaluate(
        kind, samples, _real_split(job, "test"), reference,
        evaluation["real_masks"] is not None, config.evaluation_settings(evaluation),
    )
    metrics = {"dataset": job.wildcards.dataset, "simulation": job.wildcards.sim, **metrics}
    out = job.output
    figures.save(figures.summary(metrics), out.summary)
    figures.save(
        figures.sample_grid(data["real"], data["sketch_units"], data["units"], data["preds"]),
        out.grid,
    )
    figures.save(figures.distributions(data["histograms"], data["spectra"]), out.distributions)
    losses = {**data["losses"], "real": reference.get("downstream_real_losses")}
    figures.save(figures.loss_curves(losses), out.segmenter_loss)
    atomic_write_text(out.metrics, json.dumps(metrics, indent=2) + "\n")
