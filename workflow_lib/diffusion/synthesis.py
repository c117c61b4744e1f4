"""SDEdit synthesis: sketch in [-1, 1] -> realistic image in [0, 1], tiled, any 2D/3D size."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch
from scipy import ndimage

from workflow_lib.device import autocast_dtype, generator
from workflow_lib.diffusion.guard import GuardedDenoiser
from workflow_lib.diffusion.samplers import network_evaluations, sample, sdedit_start
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.settings import SamplingSettings
from workflow_lib.diffusion.tiling import TiledDenoiser, tile_layout
from workflow_lib.diffusion.unet import UNet
from workflow_lib.errors import InputError

log = logging.getLogger("cellsynth")


def to_layout(array: np.ndarray, axes: str, ndim: int, path: str = "") -> tuple[np.ndarray, bool]:
    """Bring an array read from a TIFF into the workflow layout (T, C, [Z,] Y, X).

    ``axes`` are the file's letters ('' if unknown; ImageJ drops singleton axes, which are put
    back). Returns ``(array of shape (T, C, *spatial), has_time)``; without a T axis T = 1.
    """
    spatial = "ZYX"[3 - ndim :]
    if not axes:
        guess = {ndim: spatial, ndim + 1: "C" + spatial, ndim + 2: "TC" + spatial}
        if array.ndim not in guess:
            raise InputError(path, f"shape {array.shape} is not a {ndim}D (T, C, ...) sketch")
        axes = guess[array.ndim]
    if not set(spatial) <= set(axes) or set(axes) - set("TC" + spatial):
        raise InputError(path, f"axes '{axes}' do not describe a {ndim}D sketch (want [T]C{spatial})")
    has_time = "T" in axes
    for letter in "TC":
        if letter not in axes:
            array, axes = array[None], letter + axes
    order = "TC" + spatial
    return np.transpose(array, [axes.index(a) for a in order]), has_time


def channel_batch(sketch: np.ndarray, model_channels: int, path: str = "") -> np.ndarray:
    """(T, C, *S) sketch -> (N, model_channels, *S) batch of independent network inputs.

    C == model channels: synthesised jointly. A 1-channel model and C > 1: every channel on
    its own (N = T * C). Anything else raises :class:`InputError`.
    """
    t, c, *spatial = sketch.shape
    if c == model_channels:
        return sketch
    if model_channels == 1:
        return sketch.reshape(t * c, 1, *spatial)
    raise InputError(
        path, f"sketch has {c} channels but the model was trained on {model_channels}"
    )


def _padded_shape(spatial_shape: Sequence[int], tile: Sequence[int], multiple: int) -> list[int]:
    """Spatial axes shorter than their tile padded up to a size the network accepts."""
    return [math.ceil(s / multiple) * multiple if s < t else s for s, t in zip(spatial_shape, tile)]


def _pad_to(x: np.ndarray, tile: Sequence[int], multiple: int) -> tuple[np.ndarray, tuple[slice, ...]]:
    """Reflect-pad spatial axes shorter than their tile up to a size the network accepts."""
    padded = _padded_shape(x.shape[2:], tile, multiple)
    pads = [(0, 0), (0, 0)] + [(0, p - s) for s, p in zip(x.shape[2:], padded)]
    crop = tuple(slice(0, s) for s in x.shape)
    return np.pad(x, pads, mode="symmetric"), crop


def tiles_per_image(spatial_shape: Sequence[int], sampling: SamplingSettings, multiple: int) -> int:
    """How many tiles :func:`synthesize` cuts an image of ``spatial_shape`` into (axes shorter
    than their tile padded to ``multiple``, the network's size multiple)."""
    padded = _padded_shape(spatial_shape, sampling.tile, multiple)
    return math.prod(len(starts) for starts in tile_layout(padded, sampling.tile, sampling.overlap))


def synthesize(
    sketch: np.ndarray,
    net: UNet,
    schedule: NoiseSchedule,
    sampling: SamplingSettings,
    device: torch.device,
    seeds: Sequence[int] = (0,),
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
    ceiling: np.ndarray | None = None,
    guard_sigma: float = 1.0,
    edge_band: np.ndarray | None = None,
    samples: Sequence[tuple[Sequence[int], int]] | None = None,
) -> np.ndarray:
    """Turn sketches ``(N, C, *spatial)`` in [-1, 1] into images of the same shape in [0, 1].

    ``sampling``: start step, sampler, tiling (:class:`.settings.SamplingSettings`). ``seeds`` seed the noise (same seeds, same
    device -> same output). Spatial sizes need not fit the tile: tiles overlap and are blended at
    every step; axes shorter than a tile are padded. ``ceiling`` (the sketch's shape, image
    units): the annotation guard's cap on the local mean (``guard_sigma`` pixels) of every
    clean-image estimate, see :mod:`.guard`; None: no guard. ``edge_band`` (the same shape,
    with a ceiling): the guard's edge keeping weight (:func:`.guard.edge_band`); None: none.
    ``samples``: the batch as several samples drawn together (their tiles share network
    calls), ``(seeds, rows)`` each, their rows following one another along N; each gets the
    noise and guard it would get alone (``seeds`` is then unused). Default: one sample.
    """
    samples = samples or [(seeds, sketch.shape[0])]
    tile = list(sampling.tile)
    if any(t % net.multiple for t in tile):
        raise ValueError(f"tile {tile} must be a multiple of {net.multiple} on every axis")
    x0 = ndimage.gaussian_filter(
        sketch.astype(np.float32), sigma=[0, 0] + [sampling.blur] * (sketch.ndim - 2)
    )
    x0, crop = _pad_to(x0, tile, net.multiple)
    if ceiling is not None:
        ceiling, _ = _pad_to(ceiling.astype(np.float32), tile, net.multiple)
    if edge_band is not None:
        edge_band, _ = _pad_to(edge_band.astype(np.float32), tile, net.multiple)
    tiled = TiledDenoiser(
        net,
        x0.shape[2:],
        tile,
        sampling.overlap,
        sampling.batch,
        device,
        autocast_dtype(device),
    )
    nfe = network_evaluations(sampling.sampler, sampling.t_start, sampling.steps)
    log.info(
        "synthesis of %s (%d sample(s)): %d tile(s) of %s per image, %s sampler, "
        "%d network evaluations",
        sketch.shape, len(samples), tiled.tiles_per_image, tiled.tile, sampling.sampler, nfe,
    )
    rows = [n for _, n in samples]
    gen = [(generator(device, *s), n) for s, n in samples]
    with torch.inference_mode():
        x = sdedit_start(torch.from_numpy(x0).to(device), schedule, sampling.t_start, gen)
        keep = ({} if edge_band is None else
                {"sketch": torch.from_numpy(x0).to(device), "band": torch.from_numpy(edge_band).to(device)})
        denoise = tiled if ceiling is None else GuardedDenoiser(
            tiled, schedule, torch.from_numpy(ceiling).to(device), guard_sigma, rows=rows, **keep
        )
        out = sample(
            denoise,
            x,
            schedule,
            sampling.t_start,
            sampling.sampler,
            sampling.steps,
            generator=gen,
            clip=sampling.clip,
            progress=progress,
        )
    return ((out.float().cpu().numpy()[crop] + 1) / 2).clip(0, 1)
