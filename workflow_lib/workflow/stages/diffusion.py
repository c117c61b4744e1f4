"""Stages of envs/diffusion.yaml: training the model, synthesising an image (GPU rules)."""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import numpy as np
import torch
from skimage.segmentation import find_boundaries
from tqdm import tqdm

from workflow_lib import calibrate
from workflow_lib.calibrate import edges
from workflow_lib.dataset import index_files
from workflow_lib.device import pick_device
from workflow_lib.diffusion.data import PatchSampler
from workflow_lib.diffusion.model_io import (
    load_model, model_card, read_model, save_model, schedule_of, versions,
)
from workflow_lib.diffusion.plots import plot_loss, plot_samples
from workflow_lib.diffusion.pipeline import SynthesisPipeline
from workflow_lib.diffusion.settings import SamplingSettings
from workflow_lib.diffusion.synthesis import synthesize, to_layout
from workflow_lib.diffusion.train import CHECKPOINT, Trainer, config_hash
from workflow_lib.evaluate.completeness import completeness
from workflow_lib.io import (
    atomic_write_text, axes_for, file_digest, read_h5_header, read_json, read_tiff,
    read_tiff_spacing, write_json, write_tiff,
)
from workflow_lib.plotting import orthogonal_views, pyplot, save_figure
from workflow_lib.simulate import (
    KINDS, NUCLEUS_STAIN, Kind, get_kind, read_params, sample_rng, simulate,
)
from workflow_lib.sketch import make_sketch
from workflow_lib.workflow import chunks, config, models
from workflow_lib.workflow.runner import Job
from workflow_lib.workflow.stages.chunk import clear_stale, require, write_manifest

log = logging.getLogger("cellsynth")

_PREVIEW_TILES = 8
# The training preview grid uses fixed SDEdit settings (the method's t_start = 400 of 1000)
# rather than the data set's synthesis config, so tuning synthesis never reruns (and resets)
# training.
_PREVIEW_T_FRACTION = 0.4
_PREVIEW = {"sampler": "dpmpp", "steps": 20, "blur": 1.0, "clip": True}


def _progress(desc: str, every: float):
    return lambda it: tqdm(it, desc=desc, file=sys.stderr, mininterval=every)


def _device(job: Job) -> torch.device:
    torch.set_num_threads(job.threads)
    return pick_device(job.params.device, job.params.require_gpu)


def _init_weights(job: Job, dataset: str, model_cfg: dict, ndim: int, channels: int):
    """(state dict, {"path", "sha256"}) of the model ``model.init_from`` names, else (None, None).

    Refused (naming the config key and every differing key) when its network differs."""
    source = model_cfg.get("init_from")
    if not source:
        return None, None
    path = job.input.init
    payload = read_model(path)
    models.check_init_fit(dataset, model_cfg, ndim, channels, source, payload["unet"],
                          payload["meta"])
    log.info("fine-tuning: training starts from the weights of %s", path)
    return payload["state_dict"], {"path": str(source), "sha256": file_digest(path)}


def _pixel_size(train_files: list[Path]) -> list[float] | None:
    """Microns per spatial axis of the training images, as the conversion wrote them (the
    config's ``pixel_size`` or the metadata, divided by ``rescale``): that of the first image by
    name, as every output of the data set gets; None when unknown."""
    first = min(train_files, key=lambda p: p.name)
    size = read_h5_header(first)[1].get("element_size_um")
    return None if size is None else [float(v) for v in np.atleast_1d(size)]


def _final_losses(trainer: Trainer, every: int) -> dict[str, float | None]:
    loss = trainer.history.loss[-every:]
    return {"train": float(np.mean(loss)) if loss else None, "train_steps": len(loss),
            "val": trainer.history.val_loss[-1] if trainer.history.val_loss else None}


def _draw_figures(trainer: Trainer, guides: np.ndarray, patch, seed: int, device, job: Job) -> None:
    """loss.png and samples.png of the current state (atomically: a viewer never sees half)."""
    plot_loss(trainer.history, job.output.loss)
    sampling = SamplingSettings(
        t_start=round(_PREVIEW_T_FRACTION * trainer.model.timesteps), tile=tuple(patch),
        overlap=0, batch=_PREVIEW_TILES, **_PREVIEW,
    )
    outputs = synthesize(guides, trainer.ema.eval(), trainer.schedule, sampling, device, (seed,))
    plot_samples(
        (guides + 1) / 2, outputs, job.output.samples,
        f"SDEdit from t={sampling.t_start}, {sampling.sampler} ({sampling.steps} steps), "
        f"step {trainer.step}",
    )


def train_model(job: Job) -> None:
    """Train on the train split, validate on the val split, write model.pt, its model card and
    the figures (redrawn at every validation).

    An empty val split is allowed (no validation loss; the sample grid then uses train patches).
    ``model.init_from``: start from that model's weights (input ``init``).
    """
    device = _device(job)
    params = job.params
    model_cfg, ndim, channels = params.model, params.ndim, len(params.channels)
    dataset = getattr(job.wildcards, "dataset", None)
    train_files = list(index_files(job.input.train).values())
    val_files = list(index_files(job.input.val).values())
    init, init_from = _init_weights(job, dataset, model_cfg, ndim, channels)
    network = {k: v for k, v in model_cfg.items() if k not in ("from", "init_from")}
    trained_on = {
        "model": network,
        "ndim": ndim,
        "channels": channels,
        "train_files": sorted(p.name for p in train_files),
    }
    # everything that shapes the weights learnt so far (Trainer hashes it without the step
    # count, so more train.steps resume); checkpoints of older versions hashed only trained_on
    meta = {**trained_on, "normalize": dict(getattr(params, "normalize", None) or {}),
            "init_from": init_from}
    model = config.model_settings(model_cfg)
    patch = list(model.patch_size)
    trainer = Trainer(model, ndim, channels, meta, device, init=init,
                      also_resume=() if init is not None else (config_hash(trained_on),))
    log.info(
        "training a %dD U-Net (%d parameters) on %d train / %d val images, config hash %s",
        ndim, sum(p.numel() for p in trainer.net.parameters()), len(train_files),
        len(val_files), trainer.hash,
    )
    seed = model.train.seed
    with PatchSampler(train_files, patch, channels, model.train.augment) as train:
        val = PatchSampler(val_files, patch, channels, augment=False) if val_files else None
        try:
            guides = (val or train).batch(np.random.default_rng(seed), _PREVIEW_TILES)
            trainer.run(train, val, Path(params.checkpoint_dir) / CHECKPOINT,
                        _progress("train", 10),
                        refresh=lambda t: _draw_figures(t, guides, patch, seed, device, job))
        finally:
            if val is not None:
                val.close()
    full_meta = {
        **meta,
        "dataset": dataset,
        "pixel_size": _pixel_size(train_files),
        "versions": versions(),
        "steps": trainer.step,
        "loss": _final_losses(trainer, model.train.val_every),
        "hash": trainer.hash,
    }
    save_model(job.output.model, trainer.ema, full_meta)
    atomic_write_text(job.output.card, model_card(full_meta, str(job.output.model)))
    _draw_figures(trainer, guides, patch, seed, device, job)


def _pipeline(job: Job, kind: Kind, device: torch.device, raw: dict) -> SynthesisPipeline:
    """The job's synthesis pipeline (model loaded once), refused with the config key when the
    model does not fit the data set (param ``model_fit``: ``models.model_fit``; absent: not
    checked)."""
    net, meta = load_model(job.input.model, device)
    fit = getattr(job.params, "model_fit", None)
    if fit is not None:
        for warning in models.check_model_fit(fit, raw, job.input.model, net.config, meta):
            log.warning("%s", warning)
    settings = config.synthesis_settings(raw)
    calibration = getattr(job.input, "calibration", None)
    real = read_json(calibration) if settings.needs_calibration else None
    return SynthesisPipeline(net, schedule_of(meta), settings, kind, device, real,
                             calibration_source=str(calibration), meta=meta)


def synthesize_chunk(job: Job) -> None:
    """A chunk of sketch TIFFs in [-1, 1] -> synthetic image TIFFs in [0, 1] (same layout,
    axes and pixel size), each with its annotation check JSON; the chunk's manifest last.

    Time series (T, C, ...) are T independent frames. Samples are drawn together as their tiles
    fill a network call (``synthesis.batch``); sample i is seeded by (synthesis seed, i),
    whatever the chunking; an image the annotation check flags is drawn again with derived
    seeds (``annotation_check.redraws``), and its check JSON lists the flagged draws.
    """
    files, chunk = job.params.files, job.wildcards.chunk
    device = _device(job)
    kind = get_kind(job.params.kind)
    pipeline = _pipeline(job, kind, device, job.params.synthesis)   # refuses a misfit model
    require(files["sketch"], "sketch_chunk")
    require(files["labels"], "simulate_chunk")
    clear_stale(files, "synthesize")
    ndim = pipeline.meta["ndim"]
    seed = pipeline.settings.seed
    samples = list(chunks.samples(chunk))
    time_axis = {}

    def read(n: int, i: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int], str]:
        array, axes = read_tiff(files["sketch"][n])
        sketch, time_axis[n] = to_layout(array.astype(np.float32), axes, ndim, str(files["sketch"][n]))
        pipeline.check_sketch(sketch, str(files["sketch"][n]))
        labels, _ = read_tiff(files["labels"][n], axes=axes_for(ndim, time=kind.time))
        return sketch, labels, (seed, i), str(files["image"][n])

    records = []
    drawn_all = pipeline.stream(read(n, i) for n, i in enumerate(samples))
    for n, (i, (_, drawn)) in enumerate(zip(samples, drawn_all, strict=True)):
        write_tiff(files["image"][n], drawn.image, axes_for(ndim, time=time_axis[n]),
                   spacing=read_tiff_spacing(files["sketch"][n], ndim))  # the sketch's pixel size
        write_json(files["check"][n], drawn.report)
        records.append({"sample": i, "flagged": drawn.report["flagged"],
                        "redrawn": len(drawn.report.get("redrawn", []))})
    write_manifest(job.output[0], chunk, records, files["image"] + files["check"])


def _trial_shape(tile: list[int], ndim: int) -> list[int]:
    """The edge trial's image: at least 256 pixels a side in 2D (enough objects for a median),
    one tile in 3D."""
    return [max(int(t), 256) for t in tile] if ndim == 2 else [int(t) for t in tile]


def _trial_kind(channels: int) -> Kind | None:
    """The kind the edge trial draws for a model of ``channels`` image channels: nuclei alone,
    or a kind whose label channels the model draws together and one of which shows nuclei
    (two: multichannel's cells and nuclei); None when there is none."""
    if channels == 1:
        return get_kind("nuclei")
    fits = [k for k in KINDS.values() if len(k.stains) == channels and NUCLEUS_STAIN in k.stains
            and not k.time and not k.layered]
    return fits[0] if fits else None


def _no_trial(job: Job, reason: str) -> None:
    """edges.json and edges.png of an edge trial not run: no shift, and why."""
    log.info("edge trial: %s", reason)
    fig = pyplot().figure(figsize=(6, 1.5))
    fig.text(0.5, 0.5, reason, ha="center", wrap=True)
    save_figure(fig, job.output.figure)
    write_json(job.output.json, {"shift_px": 0.0, "reason": reason})


def calibrate_edges(job: Job) -> None:
    """Edge trial (workflow_lib.calibrate.edges): edges.json with the sketch edge shift that keeps
    the model's object edges within half the annotation check's limit of the masks, and
    edges.png (the trial images with mask outlines).

    A one-channel model draws calibrated nuclei; a two-channel one (cells and nuclei drawn
    together) a calibrated multichannel tissue, its nucleus channel measured."""
    calibration = read_json(job.input.calibration)
    measured = calibrate.stain_calibrations(calibration)
    dataset = job.wildcards.dataset
    kind = _trial_kind(job.params.channels)
    if NUCLEUS_STAIN not in measured:
        return _no_trial(job, "the calibration measures a membrane stain: its sketches are not shifted")
    if kind is None:
        return _no_trial(job, f"the model draws {job.params.channels} channels together and no "
                              "simulation kind shows nuclei in as many: no trial, no shift")
    nucleus = kind.stains.index(NUCLEUS_STAIN)
    if job.params.channels > 1 and job.params.stain_channels[NUCLEUS_STAIN] != nucleus:
        return _no_trial(job, f"the nuclei are measured in channel "
                              f"{job.params.stain_channels[NUCLEUS_STAIN]}, but kind '{kind.name}' "
                              f"draws them in channel {nucleus}: no trial, no shift")
    device = _device(job)
    pipeline = _pipeline(job, kind, device, job.params.synthesis)
    ndim, seed = pipeline.meta["ndim"], pipeline.settings.seed
    shape = _trial_shape(job.params.synthesis["tile"], ndim)
    prefix = config.key(dataset, "calibration")
    with config.keyed(prefix):
        settings = read_params(kind.name, calibrate.simulation_params(calibration, kind, shape, {}), ndim)
    labels = simulate(kind.name, shape, settings, sample_rng(seed, 0)).labels     # (C, *S)
    sketch_raw = {stain: calibrate.sketch_params(measured[stain], job.params.sketch, [])
                  if stain in measured else job.params.sketch for stain in kind.stains}

    def trial(shift: float) -> tuple[np.ndarray, float | None]:
        shifted = {**sketch_raw, NUCLEUS_STAIN: {**sketch_raw[NUCLEUS_STAIN], "edge_shift": shift}}
        p = [config.sketch_settings(shifted[stain], ndim, prefix) for stain in kind.stains]
        sketch = make_sketch(labels, kind, p, sample_rng(seed, 0, stream=1))[None]
        image, _ = pipeline.draw(sketch, labels, (seed, 0), f"edge trial of {dataset}")
        nuclei = image[0, nucleus]
        return nuclei, completeness([nuclei], [labels[nucleus]])["boundary_offset_px"]

    tolerance = pipeline.settings.check.max_boundary_offset_px / 2
    first, o0 = trial(0.0)
    trials, images = [(0.0, o0)], {0.0: first}
    shift, slope, reason = 0.0, None, None
    target = None if o0 is None else edges.target_offset(o0, tolerance)
    if target is not None:
        step = edges.second_shift(o0)
        for k in range(1 + edges.REFINEMENTS):
            images[step], offset = trial(step)
            trials.append((step, offset))
            close = offset is not None and abs(offset - target) <= edges.CLOSE_PX
            if close or k == edges.REFINEMENTS:
                break
            step, slope, why = edges.next_shift(trials, target)
            if step is None:
                # a first step the edge did not follow means no trial can be trusted
                reason = why if k == 0 or offset is None else None
                break
        if reason is None:
            shift, _ = edges.best_trial(trials, target)
    elif o0 is None:
        reason = "no object edge could be measured in the trial image"
    o2 = dict(trials)[shift]
    shown = [(0.0, first, o0)] + ([(shift, images[shift], o2)] if shift else [])
    log.info("edge trial: synthetic edges %s px from the masks (tolerance %.2f px); sketch edge "
             "shift %+.2f px: %s px", _px(o0), tolerance, shift, _px(o2))
    if reason:
        log.warning("edge trial: %s", reason)
    write_json(job.output.json, {
        "shift_px": round(shift, 3),
        "tolerance_px": tolerance,
        "slope": None if slope is None or np.isnan(slope) else round(slope, 3),
        "trials": [{"shift_px": round(s, 3), "boundary_offset_px": o} for s, o in trials],
        "shape": shape,
        "instances": int(labels.max()),
        "reason": reason,
    })
    save_figure(_edge_figure(labels[nucleus], shown), job.output.figure, dpi=90)


def _px(offset: float | None) -> str:
    return "not measured" if offset is None else f"{offset:+.2f}"


def _edge_figure(labels: np.ndarray, shown: list[tuple[float, np.ndarray, float | None]]):
    """The trial images (orthogonal views in 3D) unshifted and, if so, shifted; mask outlines
    red."""
    plt = pyplot()
    outline = orthogonal_views(find_boundaries(labels, mode="outer"))
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 5.5), squeeze=False)
    for ax, (shift, image, offset) in zip(axes[0], shown):
        rgb = np.repeat(orthogonal_views(image)[..., None], 3, -1).clip(0, 1)
        rgb[outline] = (1.0, 0.2, 0.2)
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(f"sketch edges {shift:+.2f} px: synthetic edges {_px(offset)} px", fontsize=10)
        ax.axis("off")
    return fig
