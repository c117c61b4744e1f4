"""Annotation guard: no object where the labels have none, no object past its mask's edge.

SDEdit alone lets the model draw what real images usually hold: where a sketch is emptier than
the training images, it fills the background with dim nuclei no mask holds, and it draws
nuclei a little larger than their masks. The guard wraps the denoiser (samplers still see only
``denoise(x, t) -> eps``): at every step it takes the model's estimate of the clean image
``x0``, caps its *local mean* (Gaussian, ``sigma`` pixels) at a ceiling, and hands the samplers
the noise estimate that belongs to the capped ``x0``:

    x0' = x0 - G_sigma * lam,  lam >= 0 the smallest field with G_sigma * x0' <= ceiling
    eps' = (x - sqrt(ab) x0') / sqrt(1 - ab)

Only a smooth field is removed, so the background keeps its texture and noise while no blob
can rise above it. The ceiling (image units, [-1, 1]):

- inside a mask: no cap (1);
- outside, at distance ``d`` (pixels) from the nearest mask edge:
  ``background + (1 - background) * 2 * Phi(-d / edge_sigma)``: the fall-off a blurred object
  edge has, so a nucleus may spread as far as the microscope's blur (``edge_sigma``) but no
  further, and the far background stays at ``background``.

``background`` is the real images' background level plus ``margin`` standard deviations of
their background's local mean (the calibration measures both): real background texture stays,
and what is left of a blob is too faint for a detector to call an object (the completeness
metric detects objects 4 SDs above the background).

**Edge keeping** (with ``sketch`` and ``band``): the model softens the sketch's edges beyond the
blur the calibration measured and dims small objects, so the image's edges drift from the
masks. After the cap, within a band around the mask edges the estimate's local mean is replaced
by that of the sketch, mapped linearly onto the estimate's intensities (least squares per image
and channel); only the finer texture above the local mean stays the model's there:

    x0'' = x0' + w * (G_sigma * (a s + b) - G_sigma * x0'),   w = exp(-d^2 / (2 width^2))

with ``d`` the distance (pixels) of a pixel centre from the nearest mask edge.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage
from scipy.special import ndtr

from workflow_lib.diffusion.samplers import Denoiser
from workflow_lib.diffusion.schedule import NoiseSchedule


def ceiling(objects: np.ndarray, background: float, edge_sigma: float) -> np.ndarray:
    """Ceiling of the local mean, float32 of ``objects``' shape ``(N, C, *S)`` (bool: where
    the labels have an instance; each (n, c) plane on its own)."""
    out = np.ones(objects.shape, np.float32)
    for index in np.ndindex(*objects.shape[:2]):
        inside = objects[index]
        if not inside.any():
            out[index] = background
            continue
        d = ndimage.distance_transform_edt(~inside) - 0.5
        fall = 2.0 * ndtr(-np.maximum(d, 0.0) / max(edge_sigma, 1e-3))
        out[index] = np.where(inside, 1.0, background + (1.0 - background) * fall)
    return out


def edge_band(objects: np.ndarray, width: float) -> np.ndarray:
    """Edge keeping's weight ``w`` in [0, 1], float32 of ``objects``' shape ``(N, C, *S)``
    (bool: where the labels have an instance; each plane on its own, 0 in planes without an
    edge). ``width``: the band's Gaussian sigma in pixels."""
    out = np.zeros(objects.shape, np.float32)
    for index in np.ndindex(*objects.shape[:2]):
        inside = objects[index]
        if not inside.any() or inside.all():
            continue
        d = np.where(inside, ndimage.distance_transform_edt(inside),
                     ndimage.distance_transform_edt(~inside)) - 0.5
        out[index] = np.exp(-0.5 * (d / width) ** 2)
    return out


def keep_edges(
    x0: torch.Tensor, sketch: torch.Tensor, band: torch.Tensor, sigma: float,
    sketch_mean: torch.Tensor | None = None,
) -> torch.Tensor:
    """``x0`` (N, C, *S) with its local mean (Gaussian ``sigma`` pixels) moved, by the weight
    ``band``, to that of ``sketch`` mapped linearly onto ``x0`` per (n, c) plane (module doc);
    clamped to [-1, 1]. ``sketch_mean``: the sketch's local mean, if already computed (the
    mapping is linear and a constant's local mean is itself, so it serves every step)."""
    if sketch_mean is None:
        sketch_mean = local_mean(sketch, sigma)
    s, x = sketch.flatten(2), x0.flatten(2)
    s_mean, x_mean = s.mean(-1, keepdim=True), x.mean(-1, keepdim=True)
    ds = s - s_mean
    gain = (ds * (x - x_mean)).sum(-1, keepdim=True) / (ds * ds).sum(-1, keepdim=True).clamp_min(1e-6)
    shape = x0.shape[:2] + (1,) * (x0.ndim - 2)
    target_mean = x_mean.view(shape) + gain.view(shape) * (sketch_mean - s_mean.view(shape))
    return (x0 + band * (target_mean - local_mean(x0, sigma))).clamp(-1.0, 1.0)


def _gaussian_kernel(sigma: float) -> torch.Tensor:
    radius = max(1, int(math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def local_mean(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur over the spatial axes of (N, C, *S), reflected at the borders."""
    kernel = _gaussian_kernel(sigma).to(x.device, x.dtype)
    pad = (len(kernel) - 1) // 2
    out = x
    for axis in range(2, x.ndim):
        moved = out.movedim(axis, -1)
        shape = moved.shape
        flat = moved.reshape(-1, 1, shape[-1])
        mode = "reflect" if shape[-1] > pad else "replicate"
        flat = torch.nn.functional.pad(flat, (pad, pad), mode=mode)
        flat = torch.nn.functional.conv1d(flat, kernel.view(1, 1, -1))
        out = flat.reshape(shape).movedim(-1, axis)
    return out


def cap_local_mean(
    x0: torch.Tensor, ceiling: torch.Tensor, sigma: float, rounds: int = 60, tol: float = 1e-3
) -> torch.Tensor:
    """``x0`` (N, C, *S) in [-1, 1] lowered by a smooth field until its local mean is at most
    ``ceiling`` (within ``tol``, or what ``rounds`` reach: about 0.01 where clamping at -1
    leaves few pixels to lower), staying in [-1, 1].

    Projected dual ascent: ``x0' = clamp(x0 - G * lam)`` with a non-negative field ``lam`` grown
    wherever the local mean ``G * x0'`` still exceeds the ceiling. What is subtracted is itself
    blurred (``G * lam``), so the texture of ``x0`` survives.
    """
    lam = torch.zeros_like(x0)
    out = x0
    for _ in range(rounds):
        excess = local_mean(out, sigma) - ceiling
        if float(excess.max()) <= tol:
            break
        lam = torch.relu(lam + 4.0 * excess)
        out = (x0 - local_mean(lam, sigma)).clamp(-1.0, 1.0)
    return out


class GuardedDenoiser:
    """``denoise`` with the annotation guard (module doc); a drop-in :data:`Denoiser`. With
    ``sketch`` (the network's input image) and ``band`` (:func:`edge_band`), both of the
    ceiling's shape, it keeps the sketch's edges too. ``rows``: for a batch of samples drawn
    together, the rows of each (in order along N); each sample's cap then converges as it
    would alone (default: the batch is one sample)."""

    def __init__(
        self, denoise: Denoiser, schedule: NoiseSchedule, ceiling: torch.Tensor, sigma: float = 1.0,
        sketch: torch.Tensor | None = None, band: torch.Tensor | None = None,
        rows: Sequence[int] | None = None,
    ):
        self.denoise = denoise
        self.alpha_bar = schedule.alpha_bar.tolist()
        self.ceiling = ceiling
        self.sigma = sigma
        self.sketch, self.band = sketch, band
        self.sketch_mean = None if sketch is None else local_mean(sketch, sigma)
        bounds = np.cumsum([0, *(rows or [ceiling.shape[0]])]).tolist()
        if bounds[-1] != ceiling.shape[0]:
            raise ValueError(f"rows {list(rows or [])} do not cover a batch of {ceiling.shape[0]}")
        self.spans = [slice(a, b) for a, b in zip(bounds, bounds[1:])]

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        eps = self.denoise(x, t)
        ab = self.alpha_bar[t]
        # Clamped first, as the samplers clamp (clip): an estimate beyond [-1, 1] inside a mask
        # would otherwise lift the local mean next to it out of reach of the cap.
        x0 = ((x - (1 - ab) ** 0.5 * eps) / ab**0.5).clamp(-1.0, 1.0)
        ceiling = self.ceiling.to(x0.dtype)
        x0 = torch.cat([cap_local_mean(x0[s], ceiling[s], self.sigma) for s in self.spans])
        if self.band is not None:
            x0 = keep_edges(x0, self.sketch.to(x0.dtype), self.band.to(x0.dtype), self.sigma,
                            self.sketch_mean.to(x0.dtype))
        return (x - ab**0.5 * x0) / (1 - ab) ** 0.5


def guard_ceiling(
    objects: np.ndarray, background: float, noise: float, edge_sigma: float, margin: float
) -> np.ndarray:
    """:func:`ceiling` from the real images' statistics in [0, 1] units (``background``
    level, ``noise``: SD of the background's local mean) mapped to image units [-1, 1];
    ``margin`` in those SDs."""
    level = 2.0 * (background + margin * noise) - 1.0
    return ceiling(objects, float(np.clip(level, -1.0, 1.0)), edge_sigma)

