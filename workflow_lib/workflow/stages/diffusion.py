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
from workflow_lib.calibrate import calibrated_stain, edges
from workflow_lib.calibrate.texture import match_texture
from workflow_lib.dataset import index_files
from workflow_lib.device import pick_device
from workflow_lib.diffusion.data import PatchSampler
from workflow_lib.diffusion.guard import edge_band, guard_ceiling
from workflow_lib.diffusion.model_io import (
    file_digest, load_model, model_card, read_model, save_model, schedule_of, versions,
)
from workflow_lib.diffusion.plots import plot_loss, plot_samples
from workflow_lib.diffusion.synthesis import channel_batch, synthesize, to_layout
from workflow_lib.diffusion.train import CHECKPOINT, Trainer, config_hash
from workflow_lib.errors import InputError
from workflow_lib.evaluate.completeness import completeness
from workflow_lib.evaluate.views import units
from workflow_lib.io import (
    atomic_write_text, axes_for, read_h5_header, read_json, read_tiff, read_tiff_spacing,
    write_json, write_tiff,
)
from workflow_lib.plotting import middle_plane, pyplot, save_figure
from workflow_lib.simulate import (
    BLOBS, NUCLEUS_STAIN, Kind, get_kind, read_params, sample_rng, simulate,
)
from workflow_lib.sketch import make_sketch
from workflow_lib.workflow import config, models
from workflow_lib.workflow.runner import Job

log = logging.getLogger("cellsynth")

_PREVIEW_TILES = 8
# The training preview grid uses fixed SDEdit settings (the method's t_start = 400 of 1000)
# rather than the data set's synthesis config, so tuning synthesis never reruns (and resets)
# training.
_PREVIEW_T_FRACTION = 0.4
_PREVIEW = {"sampler": "dpmpp", "steps": 20, "blur": 1.0, "clip": True}
# The texture's noise is its own random stream of the sample's seed, so matching texture
# leaves the diffusion's noise (and images made before it) as they were.
_TEXTURE_STREAM = 1
# Redraws of a flagged image: a stream of their own, apart from the first draw's and the
# texture's.
_REDRAW_STREAM = 2



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
    params = {
        **_PREVIEW,
        "t_start": round(_PREVIEW_T_FRACTION * trainer.cfg["timesteps"]),
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
    patch, augment = model_cfg["patch_size"], model_cfg["train"]["augment"]
    trainer = Trainer(model_cfg, ndim, channels, meta, device, init=init,
                      also_resume=() if init is not None else (config_hash(trained_on),))
    log.info(
        "training a %dD U-Net (%d parameters) on %d train / %d val images, config hash %s",
        ndim, sum(p.numel() for p in trainer.net.parameters()), len(train_files),
        len(val_files), trainer.hash,
    )
    seed = model_cfg["train"]["seed"]
    with PatchSampler(train_files, patch, channels, augment) as train:
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
        "loss": _final_losses(trainer, model_cfg["train"]["val_every"]),
        "hash": trainer.hash,
    }
    save_model(job.output.model, trainer.ema, full_meta)
    atomic_write_text(job.output.card, model_card(full_meta, str(job.output.model)))
    _draw_figures(trainer, guides, patch, seed, device, job)


def _load_model(job: Job, device: torch.device):
    """The job's model.pt as ``(net, meta)``, refused with the config key when it does not fit
    the data set (param ``model_fit``: ``models.model_fit``; absent: not checked)."""
    net, meta = load_model(job.input.model, device)
    fit = getattr(job.params, "model_fit", None)
    if fit is not None:
        for warning in models.check_model_fit(fit, job.params.synthesis, job.input.model,
                                              net.config, meta):
            log.warning("%s", warning)
    return net, meta


def _objects(job: Job, kind: Kind, labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Where the labels have an object, bool (T, 1 or C, *S) (T = 1 without a time axis), for
    a sketch of ``shape`` (T, C, *S)."""
    series = labels if kind.time else labels[None]
    objects = (series > 0).any(1, keepdims=True) if kind.layered else series > 0
    fits = (objects.shape[0] == shape[0] and objects.shape[2:] == tuple(shape[2:])
            and objects.shape[1] in (1, shape[1]))
    if not fits:
        raise InputError(job.input.labels, f"labels {labels.shape} do not fit the sketch {shape}: "
                         "rerun the sketch stage")
    return objects


def _ceiling(objects: np.ndarray, real: dict, guard) -> np.ndarray:
    """The annotation guard's ceiling (the objects' shape) from them and the real background."""
    edge = real.get("edge_sigma_px") or 1.0
    return guard_ceiling(
        objects, real["background"]["level"], real["background"]["noise_local_mean"],
        float(np.hypot(edge, guard["sigma"])), guard["margin"],
    )


def _edge_band(kind: Kind, objects: np.ndarray, guard) -> np.ndarray:
    """Edge keeping's weight (the objects' shape) around the blob-like label channels' objects;
    0 on cell channels, whose sketch edge is a membrane, not an object's rim."""
    blobs = np.array([m == BLOBS for m in kind.eval_methods[:objects.shape[1]]])
    return edge_band(objects & blobs.reshape((1, -1) + (1,) * (objects.ndim - 2)), guard["edge_band"])


def _draw(
    job: Job, net, meta: dict, device: torch.device, kind: Kind, sketch: np.ndarray,
    batch: np.ndarray, labels: np.ndarray, real: dict, seed: tuple[int, ...],
) -> tuple[np.ndarray, list[dict] | str | None]:
    """Sketch (T, C, *S) in [-1, 1], as network inputs ``batch`` (:func:`channel_batch`) ->
    (synthetic (T, C, *S) in [0, 1], texture record or None): SDEdit with the annotation guard,
    then texture matching (``job.params.synthesis``)."""
    params = job.params.synthesis
    channels = net.config["channels"]
    objects = _objects(job, kind, labels, sketch.shape)
    guard = params["guard"]
    ceiling = band = None
    if guard["enabled"]:
        ceiling = channel_batch(np.broadcast_to(_ceiling(objects, real, guard), sketch.shape), channels)
        if guard["edge_band"] > 0:
            band = channel_batch(np.broadcast_to(_edge_band(kind, objects, guard), sketch.shape), channels)
    out = synthesize(
        batch, net, schedule_of(meta), params, device, seed,
        _progress("denoise", 5), ceiling=ceiling, guard_sigma=guard["sigma"], edge_band=band,
    ).reshape(sketch.shape)
    texture = (_match_texture(job, kind, out, objects, real, seed, channels)
               if params["texture"] else None)
    return out, texture


def synthesize_image(job: Job) -> None:
    """One sketch TIFF in [-1, 1] -> one synthetic image TIFF in [0, 1], same layout and axes.

    Time series (T, C, ...) are T independent frames. Seeded by (synthesis seed, sample index);
    an image the annotation check flags is drawn again with derived seeds, at most
    ``annotation_check.redraws`` times (same labels and sketch: they stay paired), and its
    check JSON lists the flagged draws (``redrawn``).
    """
    params = job.params.synthesis
    sketch_path = job.input.sketch
    device = _device(job)
    net, meta = _load_model(job, device)
    ndim = meta["ndim"]
    array, axes = read_tiff(sketch_path)
    sketch, has_time = to_layout(array.astype(np.float32), axes, ndim, str(sketch_path))
    if sketch.min() < -1 or sketch.max() > 1:
        log.warning("%s: values outside [-1, 1] are clipped", sketch_path)
        sketch = sketch.clip(-1, 1)
    batch = channel_batch(sketch, net.config["channels"], str(sketch_path))
    kind = get_kind(job.params.kind)
    labels, _ = read_tiff(job.input.labels, axes=axes_for(ndim, time=kind.time))
    guard = params["guard"]
    real = read_json(job.input.calibration) if guard["enabled"] or params["texture"] else {}
    limits = params["annotation_check"]
    i = int(job.wildcards.i)
    flagged_draws = []
    for attempt in range(limits["redraws"] + 1):
        seed = _draw_seed(params["seed"], i, attempt)
        out, texture = _draw(job, net, meta, device, kind, sketch, batch, labels, real, seed)
        image = out if has_time else out[0]
        check = _annotation_check(kind, labels, image, limits)
        if not check["flagged"]:
            break
        flagged_draws.append({"seeds": list(seed), "problems": check["problems"]})
        log.info("%s: draw %d flagged (%s)", job.output.image, attempt, "; ".join(check["problems"]))
    check["seeds"] = list(seed)
    check["redrawn"] = flagged_draws[:-1] if check["flagged"] else flagged_draws
    if check["flagged"]:
        log.warning("%s: flagged after %d draws (synthesis.annotation_check.redraws: %d): %s; "
                    "flagged in %s and left out of exports", job.output.image, attempt + 1,
                    limits["redraws"], "; ".join(check["problems"]), job.output.check)
    elif flagged_draws:
        log.info("%s: draw %d passed the annotation check after %d flagged", job.output.image,
                 attempt, len(flagged_draws))
    if texture is not None:
        check["texture"] = texture
    write_tiff(job.output.image, image, axes_for(ndim, time=has_time),
               spacing=read_tiff_spacing(sketch_path, ndim))  # the sketch's pixel size
    write_json(job.output.check, check)


def _match_texture(
    job: Job, kind: Kind, out: np.ndarray, objects: np.ndarray, real: dict, seed: tuple[int, ...],
    model_channels: int,
) -> list[dict] | str:
    """Match ``out`` (T, C, *S; changed in place) frame by frame to the real images' pixel
    noise and texture (``calibrate.texture``); returns what was done per frame, or why not."""
    target = real.get("texture")
    if target is None:
        reason = (f"{job.input.calibration} predates texture measurements: rerun it with "
                  "`snakemake --forcerun calibrate_dataset`")
        log.warning("texture not matched: %s", reason)
        return reason
    # The texture is measured inside nuclei of the one channel the calibration measured: it
    # applies where a one-channel model (trained on that channel) drew a nucleus channel.
    channels = [c for c, stain in enumerate(kind.stains) if stain == NUCLEUS_STAIN and c < out.shape[1]]
    if calibrated_stain(real) != NUCLEUS_STAIN or not channels or model_channels != 1:
        reason = ("the calibration measures the texture of nuclei in one channel; this "
                  "simulation's images are not drawn by a single-channel model or show no nuclei")
        log.info("texture not matched: %s", reason)
        return reason
    rng = np.random.default_rng(np.random.SeedSequence([*seed, _TEXTURE_STREAM]))
    done = []
    for t in range(out.shape[0]):
        for c in channels:
            out[t, c], frame = match_texture(out[t, c], objects[t, min(c, objects.shape[1] - 1)], target, rng)
            done.append(frame)
    log.info("texture matched to the real images: %s", done)
    return done


def _draw_seed(seed: int, i: int, attempt: int) -> tuple[int, ...]:
    """Noise seeds of draw ``attempt`` of sample ``i``: the first draw keeps the sample's own
    (seed, i); redraws of a flagged image get their own derived streams."""
    return (seed, i) if attempt == 0 else (seed, i, _REDRAW_STREAM, attempt)


def _annotation_check(kind: Kind, labels: np.ndarray, image: np.ndarray, limits) -> dict:
    """Completeness of this image against its labels (blob-like label channels); flagged when
    over the limits (``problems`` says how), so no such sample reaches a user silently."""
    blobs = [u for u in units(kind, labels, image) if u.method == BLOBS]
    if not blobs:
        return {"flagged": False, "reason": "no blob-like label channel: not checked"}
    scores = completeness([u.image for u in blobs], [u.labels for u in blobs])
    problems = []
    if (scores["unannotated_pct"] or 0.0) > limits["max_unannotated_pct"]:
        problems.append(f"{scores['unannotated_pct']:.1f} % of its objects are in no mask "
                        f"(limit {limits['max_unannotated_pct']} %)")
    offset = scores["boundary_offset_px"]
    if offset is not None and abs(offset) > limits["max_boundary_offset_px"]:
        problems.append(f"its object edges lie {offset:+.2f} px from the mask edges "
                        f"(limit {limits['max_boundary_offset_px']} px)")
    return {"flagged": bool(problems), "problems": problems, "limits": dict(limits), **scores}


def _trial_shape(tile: list[int], ndim: int) -> list[int]:
    """The edge trial's image: at least 256 pixels a side in 2D (enough objects for a median),
    one tile in 3D."""
    return [max(int(t), 256) for t in tile] if ndim == 2 else [int(t) for t in tile]


def calibrate_edges(job: Job) -> None:
    """Edge trial (workflow_lib.calibrate.edges): edges.json with the sketch edge shift that keeps
    the model's object edges within half the annotation check's limit of the masks, and
    edges.png (the trial images with mask outlines)."""
    plt = pyplot()
    real = read_json(job.input.calibration)
    dataset = job.wildcards.dataset
    if calibrated_stain(real) != NUCLEUS_STAIN:
        reason = "the calibration measures a membrane stain: its sketches are not shifted"
        log.info("edge trial: %s", reason)
        fig = plt.figure(figsize=(6, 1.5))
        fig.text(0.5, 0.5, reason, ha="center")
        save_figure(fig, job.output.figure)
        write_json(job.output.json, {"shift_px": 0.0, "reason": reason})
        return
    device = _device(job)
    net, meta = _load_model(job, device)
    ndim, seed = meta["ndim"], job.params.synthesis["seed"]
    shape = _trial_shape(job.params.synthesis["tile"], ndim)
    kind = get_kind("nuclei")
    prefix = config.key(dataset, "calibration")
    with config.keyed(prefix):
        settings = read_params(kind.name, calibrate.simulation_params(real, kind, shape, {}), ndim)
    labels = simulate(kind.name, shape, settings, sample_rng(seed, 0)).labels     # (1, *S)
    sketch_raw = calibrate.sketch_params(real, job.params.sketch, [])

    def trial(shift: float) -> tuple[np.ndarray, float | None]:
        p = config.sketch_settings({**sketch_raw, "edge_shift": shift}, ndim, prefix)
        sketch = make_sketch(labels, kind, p, sample_rng(seed, 0, stream=1))[None]
        batch = channel_batch(sketch, net.config["channels"], f"edge trial of {dataset}")
        image, _ = _draw(job, net, meta, device, kind, sketch, batch, labels, real, (seed, 0))
        return image[0, 0], completeness([image[0, 0]], [labels[0]])["boundary_offset_px"]

    tolerance = job.params.synthesis["annotation_check"]["max_boundary_offset_px"] / 2
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
    save_figure(_edge_figure(labels[0], shown), job.output.figure, dpi=90)


def _px(offset: float | None) -> str:
    return "not measured" if offset is None else f"{offset:+.2f}"


def _edge_figure(labels: np.ndarray, shown: list[tuple[float, np.ndarray, float | None]]):
    """The trial images (middle plane in 3D) unshifted and, if so, shifted; mask outlines red."""
    plt = pyplot()
    outline = middle_plane(find_boundaries(labels, mode="outer"))
    fig, axes = plt.subplots(1, len(shown), figsize=(5.5 * len(shown), 5.5), squeeze=False)
    for ax, (shift, image, offset) in zip(axes[0], shown):
        rgb = np.repeat(middle_plane(image)[..., None], 3, -1).clip(0, 1)
        rgb[outline] = (1.0, 0.2, 0.2)
        ax.imshow(rgb, interpolation="nearest")
        ax.set_title(f"sketch edges {shift:+.2f} px: synthetic edges {_px(offset)} px", fontsize=10)
        ax.axis("off")
    return fig
