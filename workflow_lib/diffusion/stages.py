"""The two workflow stages as plain functions over paths: train a model, synthesise one image."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workflow_lib.diffusion.data import PatchSampler, read_index
from workflow_lib.diffusion.model_io import load_model, save_model, schedule_of
from workflow_lib.diffusion.plots import plot_loss, plot_samples
from workflow_lib.diffusion.synthesis import channel_batch, synthesize, to_layout
from workflow_lib.diffusion.train import CHECKPOINT, Trainer
from workflow_lib.io import axes_for, read_tiff, write_tiff

log = logging.getLogger("cellsynth")

Progress = Callable[[Iterable[int]], Iterable[int]]
_SAMPLE_TILES = 8
# The preview grid uses fixed SDEdit settings (the method's t_start = 400 of 1000) rather than
# the data set's synthesis config, so tuning synthesis never reruns (and resets) training.
_PREVIEW_T_FRACTION = 0.4
_PREVIEW = {"sampler": "dpmpp", "steps": 20, "blur": 1.0, "clip": True}


def train_stage(
    train_csv: str | Path,
    val_csv: str | Path,
    model_path: str | Path,
    loss_png: str | Path,
    samples_png: str | Path,
    checkpoint_dir: str | Path,
    model_cfg: Mapping[str, Any],
    ndim: int,
    channels: int,
    device: torch.device,
    progress: Progress = lambda it: it,
) -> None:
    """Train on the train split, validate on the val split, write model.pt and the figures.

    An empty val split is allowed (no validation loss; the sample grid then uses train patches).
    """
    train_files, val_files = read_index(train_csv), read_index(val_csv)
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
    with PatchSampler(train_files, patch, channels, augment) as train:
        val = PatchSampler(val_files, patch, channels, augment=False) if val_files else None
        try:
            trainer.run(train, val, Path(checkpoint_dir) / CHECKPOINT, progress)
            guides = (val or train).batch(np.random.default_rng(model_cfg["train"]["seed"]), _SAMPLE_TILES)
        finally:
            if val is not None:
                val.close()
    save_model(model_path, trainer.ema, {**meta, "steps": trainer.step, "hash": trainer.hash})
    plot_loss(trainer.history, loss_png)
    params = {
        **_PREVIEW,
        "t_start": round(_PREVIEW_T_FRACTION * model_cfg["timesteps"]),
        "tile": list(patch),
        "overlap": 0,
        "batch": _SAMPLE_TILES,
    }
    outputs = synthesize(
        guides, trainer.ema.eval(), trainer.schedule, params, device,
        (model_cfg["train"]["seed"],),
    )
    plot_samples(
        (guides + 1) / 2,
        outputs,
        samples_png,
        f"SDEdit from t={params['t_start']}, {params['sampler']} ({params['steps']} steps), "
        f"step {trainer.step}",
    )


def synthesize_stage(
    model_path: str | Path,
    sketch_path: str | Path,
    image_path: str | Path,
    params: Mapping[str, Any],
    index: int,
    device: torch.device,
    progress: Progress = lambda it: it,
) -> None:
    """One sketch TIFF in [-1, 1] -> one synthetic image TIFF in [0, 1], same layout and axes.

    Time series (T, C, ...) are T independent frames. Seeded by (params seed, ``index``).
    """
    net, meta = load_model(model_path, device)
    ndim = meta["ndim"]
    array, axes = read_tiff(sketch_path)
    sketch, has_time = to_layout(array.astype(np.float32), axes, ndim, str(sketch_path))
    if sketch.min() < -1 or sketch.max() > 1:
        log.warning("%s: values outside [-1, 1] are clipped", sketch_path)
        sketch = sketch.clip(-1, 1)
    batch = channel_batch(sketch, net.config["channels"], str(sketch_path))
    out = synthesize(
        batch, net, schedule_of(meta), params, device, (params["seed"], index), progress
    ).reshape(sketch.shape)
    write_tiff(image_path, out if has_time else out[0], axes_for(ndim, time=has_time))
