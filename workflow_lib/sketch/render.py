"""Sketches: from instance labels to a coarse image in [-1, 1] that the diffusion model refines.

Exactly what a sketch is (see docs/simulation.md, "Sketch"), per spatial label array:

1. Depth ``r`` of an instance pixel: its distance to the nearest pixel outside the instance
   (:func:`targets.depth`, outermost ring = 1), divided by the instance's largest depth, so
   ``r`` is in (0, 1], 1 at the instance's innermost pixel.
2. Profile ``q``: mode ``centre``: ``1 - falloff * (1 - r) ** gamma`` (bright centre, dimmer
   rim); ``boundary``: ``1 - falloff * r ** gamma`` (bright rim, like a membrane stain); ``flat``:
   1. ``falloff``/``gamma`` null pick the mode's defaults (centre 0.6/1.5, boundary 0.85/0.4).
3. Per instance brightness ``b`` uniform in ``brightness`` (or drawn from
   ``brightness_samples``, e.g. measured by the calibration); value ``v = b * q`` in [0, 1].
4. Optional dark nucleoli: per instance a uniform number in ``nucleoli.count`` of discs with
   radius uniform in ``nucleoli.radius``, centred on a random pixel with ``r >= 0.35``, cut to
   the instance; ``v`` is multiplied there by ``nucleoli.intensity``.
5. Map to the image range: background ``background`` (default -1; the calibration sets the
   real images' level), instance pixels ``lo + (hi - lo) * v`` with ``[lo, hi] = cell_range``
   (default [-0.7, 1.0], as the original method).
6. Edges moved by ``edge_shift`` pixels (outward; negative: inward): a pixel whose centre lies
   ``e`` pixels inside the objects' edge (negative outside; the edge is half a pixel beyond the
   outermost object pixels) keeps the fraction ``clip(0.5 + edge_shift + e, 0, 1)`` of its
   object's contrast over the background, pixels outside taking the value of the nearest object
   pixel. So 0.5 adds a half-bright ring, -1 erodes by a pixel, and the step stays sub-pixel.
7. Gaussian blur with ``blur`` (sigma in pixels, one number or one per spatial axis), then clip to
   [-1, 1].

Layouts: every channel is sketched on its own, mode ``auto`` taking the kind's profile per
label channel (:attr:`~workflow_lib.simulate.Kind.sketch_modes`: ``boundary`` for cells seen
by their membranes, ``centre`` for nuclei); layered kinds (``overlapping``) give one composite
channel where the layers' values ``v`` add up (overlaps look brighter, as in a smear), clipped
to 1 before step 5; time series keep one brightness per track id over all frames.
Randomness comes from the ``rng`` passed in (the workflow's stream 1 of the sample's seed).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from workflow_lib.errors import ParamError
from workflow_lib.simulate import Kind
from workflow_lib.sketch.targets import boundary, depth, per_slice, signed_distance

MODES = ("auto", "centre", "boundary", "flat")
_MODE_DEFAULTS = {"centre": (0.6, 1.5), "boundary": (0.85, 0.4), "flat": (0.0, 1.0)}
_NUCLEOLUS_MIN_DEPTH = 0.35


@dataclass(frozen=True)
class SketchParams:
    """Sketch settings; see the module doc for their meaning."""

    mode: str = "auto"
    falloff: float | None = None
    gamma: float | None = None
    brightness: tuple[float, float] = (0.5, 1.0)
    cell_range: tuple[float, float] = (-0.7, 1.0)
    background: float = -1.0
    nucleoli_count: tuple[int, int] = (0, 0)
    nucleoli_radius: tuple[float, float] = (3.0, 6.0)
    nucleoli_intensity: float = 0.4
    blur: float | tuple[float, ...] = 1.0
    edge_shift: float = 0.0
    # An empirical distribution (e.g. measured on real images) replacing ``brightness``.
    brightness_samples: tuple[float, ...] | None = None

    def __post_init__(self):
        if self.mode not in MODES:
            raise ParamError("mode", f"must be one of {', '.join(MODES)}, got {self.mode!r}")
        for name, (lo, hi) in (
            ("brightness", self.brightness), ("cell_range", self.cell_range),
            ("nucleoli.count", self.nucleoli_count), ("nucleoli.radius", self.nucleoli_radius),
        ):
            if lo > hi:
                raise ParamError(name, f"min ({lo}) must be <= max ({hi})")
        if not -1.0 < self.cell_range[0]:
            raise ParamError("cell_range", "min must be > -1 so cells stand out from the background")
        if not -1.0 <= self.background < self.cell_range[1]:
            raise ParamError("background", f"must be in [-1, cell_range max), got {self.background}")

    def profile(self, mode: str) -> tuple[float, float]:
        """(falloff, gamma) of ``mode`` with nulls replaced by the mode's defaults."""
        f, g = _MODE_DEFAULTS[mode]
        return (f if self.falloff is None else self.falloff, g if self.gamma is None else self.gamma)


def relative_depth(labels: np.ndarray) -> np.ndarray:
    """Depth divided by the instance's largest depth: (0, 1] inside instances, 0 outside."""
    d = depth(labels)
    top = int(labels.max())
    if top == 0:
        return d
    peak = np.zeros(top + 1, np.float32)
    peak[1:] = ndimage.maximum(d, labels, np.arange(1, top + 1))
    peak[peak == 0] = 1.0  # ids absent from this array
    return d / peak[labels]


def _nucleoli(labels: np.ndarray, r: np.ndarray, p: SketchParams, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative factor map: ``nucleoli_intensity`` inside nucleoli, 1 elsewhere."""
    factor = np.ones(labels.shape, np.float32)
    top = int(labels.max())
    lo, hi = p.nucleoli_count
    if top == 0 or hi == 0:
        return factor
    ids = np.arange(1, top + 1)
    counts = rng.integers(lo, hi + 1, size=top)
    eligible = r >= _NUCLEOLUS_MIN_DEPTH
    seeds = np.zeros(labels.shape, np.int64)   # seed number (1-based) at each nucleolus centre
    radii, owners = [], []
    for slot in range(hi):
        # A random eligible pixel per instance: the arg-max of random keys within the instance.
        keys = np.where(eligible, rng.uniform(size=labels.shape), -1.0)
        pos = ndimage.maximum_position(keys, labels, ids)
        for cid, at in zip(ids, pos):
            if counts[cid - 1] > slot and keys[at] >= 0:
                owners.append(cid)
                radii.append(rng.uniform(*p.nucleoli_radius))
                seeds[at] = len(owners)
    if not owners:
        return factor
    dist, idx = ndimage.distance_transform_edt(seeds == 0, return_indices=True)
    nearest = seeds[tuple(idx)]
    radii_arr = np.concatenate([[0.0], radii])
    owner_arr = np.concatenate([[0], owners])
    hole = (dist <= radii_arr[nearest]) & (labels == owner_arr[nearest]) & (labels > 0)
    factor[hole] = p.nucleoli_intensity
    return factor


def intensity(
    labels: np.ndarray, p: SketchParams, mode: str, bright: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Value ``v`` in [0, 1] (float32) of one spatial label array; ``bright[id]`` per instance."""
    if mode == "flat":
        q = np.ones(labels.shape, np.float32)
        r = relative_depth(labels) if p.nucleoli_count[1] else q
    else:
        r = relative_depth(labels)
        falloff, gamma = p.profile(mode)
        u = (1.0 - r) if mode == "centre" else r
        q = 1.0 - falloff * np.power(np.clip(u, 0, 1), gamma)
    v = bright[labels] * q * _nucleoli(labels, r, p, rng)
    return np.where(labels > 0, v, 0.0).astype(np.float32)


def shift_edges(img: np.ndarray, cells: np.ndarray, background: float, shift: float) -> np.ndarray:
    """Step 6: ``img`` (objects where ``cells``, ``background`` elsewhere) with the objects'
    edges moved ``shift`` pixels outward (negative: inward) by partial coverage (float32)."""
    if shift == 0 or not cells.any() or cells.all():
        return img
    inside = ndimage.distance_transform_edt(cells) - 0.5
    outside, nearest = ndimage.distance_transform_edt(~cells, return_indices=True)
    edge = np.where(cells, inside, 0.5 - outside)          # > 0 inside, < 0 outside
    cover = np.clip(0.5 + shift + edge, 0.0, 1.0)
    value = img[tuple(nearest)]                             # outside: the nearest object's value
    return (background + cover * (value - background)).astype(np.float32)


def to_image(v: np.ndarray, cells: np.ndarray, p: SketchParams) -> np.ndarray:
    """Steps 5-7: map values to [-1, 1], move the edges, blur over the spatial axes, clip
    (float32)."""
    lo, hi = p.cell_range
    img = np.where(cells, lo + (hi - lo) * v, p.background).astype(np.float32)
    img = shift_edges(img, cells, p.background, p.edge_shift)
    sigma = p.blur
    if np.any(np.asarray(sigma) > 0):
        img = ndimage.gaussian_filter(img, sigma, mode="nearest")
    return np.clip(img, -1.0, 1.0).astype(np.float32)


def _modes(params: list[SketchParams], kind: Kind) -> list[str]:
    """Profile mode per label channel: the configured one, or the kind's own for ``auto``."""
    auto = [kind.sketch_modes[0]] * len(params) if kind.layered else list(kind.sketch_modes)
    return [a if p.mode == "auto" else p.mode for p, a in zip(params, auto)]


def make_sketch(
    labels: np.ndarray, kind: Kind, p: SketchParams | Sequence[SketchParams], rng: np.random.Generator
) -> np.ndarray:
    """Sketch of a simulation's labels.

    labels: uint (C, *S) or, for time series kinds, (T, C, *S), S = (Y, X) or (Z, Y, X).
    ``p``: one setting for every label channel, or one per label channel (e.g. a calibrated
    nucleus channel beside an uncalibrated cell channel; layered kinds use the first).
    Returns float32 in [-1, 1] of the same layout, except layered kinds: C = 1.
    """
    time = kind.time
    series = labels if time else labels[None]
    channels = series.shape[1]
    params = [p] * channels if isinstance(p, SketchParams) else list(p)
    if kind.layered:
        params = [params[0]] * channels
    if len(params) != channels:
        raise ParamError("sketch", f"{len(params)} settings for {channels} label channels")
    spatial = series.ndim - 2
    for q in params:
        if isinstance(q.blur, tuple) and len(q.blur) != spatial:
            raise ParamError("blur", f"has {len(q.blur)} sigmas but the data has {spatial} spatial axes")
    top = int(series.max())
    modes = _modes(params, kind)
    # One brightness per id and channel, shared by all frames so tracks keep their look.
    bright = np.stack([
        rng.choice(q.brightness_samples, size=top + 1) if q.brightness_samples is not None
        else rng.uniform(*q.brightness, size=top + 1) for q in params
    ]).astype(np.float32)
    out = []
    for frame in series:
        if kind.layered:
            v = sum(intensity(layer, params[0], modes[0], bright[0], rng) for layer in frame)
            out.append(to_image(np.minimum(v, 1.0), (frame > 0).any(0), params[0])[None])
        else:
            out.append(np.stack([
                to_image(intensity(frame[c], params[c], modes[c], bright[c], rng), frame[c] > 0, params[c])
                for c in range(channels)
            ]))
    result = np.stack(out)
    return result if time else result[0]


def annotations(
    labels: np.ndarray, sketch: np.ndarray, time: bool = False
) -> dict[str, np.ndarray]:
    """HDF5 datasets for segmentation training (layouts as ``labels``, sketch as given).

    data/sketch float32 [-1, 1]; data/instance uint16 ids; data/boundary uint8 inner boundary;
    data/distance float32 signed distance (inside >= 1, background <= -1), see targets.py.
    """
    spatial = labels.ndim - (2 if time else 1)
    return {
        "data/sketch": sketch.astype(np.float32),
        "data/instance": labels.astype(np.uint16),
        "data/boundary": per_slice(boundary, labels, spatial),
        "data/distance": per_slice(signed_distance, labels, spatial),
    }
