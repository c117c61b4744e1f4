"""Measuring real images: what the simulations and sketches need to look like the user's data.

Objects are found without annotation (:func:`find_nuclei`) unless masks are given:

1. Gaussian smoothing (``sigma`` pixels). Background level and noise are the median and
   1.4826 MAD of the pixels below the Otsu threshold (the noise at least one grey level: a
   background clipped to one level has a MAD of 0); everything 3 noise SDs above the
   background (holes filled) may belong to a nucleus, so dim nuclei are found too.
2. That foreground is split by a watershed of the inverted distance transform, seeded by
   its regional maxima of depth ``h`` pixels (h-maxima, on the distance smoothed by 0.7
   pixels), so one seed per convex body.
3. Each piece keeps its pixels at or above half its own maximum (95th percentile) over the
   background: its outline is its edge in the image, for bright and dim nuclei alike. The
   maximum is read after a grey opening a quarter of the typical radius wide, so bright
   chromatin foci do not count as the nucleus' brightness (half of theirs would cut the body
   into pieces).
4. Pieces smaller than ``min_size`` pixels (voxels) are dropped.
5. A dim nucleus touching a bright one falls below the bright one's half maximum: the bodies
   left in the foreground are searched again (steps 2-4). Bodies are what an opening half a
   typical radius wide keeps (the glow around nuclei is thinner), and the nuclei cut from
   them must be that deep too. The typical radius is that of the object a typical object
   pixel belongs to (pixel-weighted median), so fragments do not shrink it.
6. Nuclei the glow joined into one piece show a neck once cut at their half maxima: every
   object is split again by step 2 on its own outline. Holes (dark chromatin below the half
   maximum) go to the object around them.

Measured against the labels of four labelled data sets in docs/simulation.md; the glow
between nuclei (widefield, 8-bit) is what steps 5 and 6 and the grey-level noise are for.

Per object (spatial ``(Y, X)`` or ``(Z, Y, X)`` arrays; lengths in Y/X pixels; in 3D radius
and elongation with Z scaled by the object's own ``z_extent_ratio``, the coordinates a
simulation draws in before it flattens its shapes by ``z_scale``):

- ``radius``: equivalent radius (the disc/ball of the same area/volume);
- ``elongation``: long / short axis of the inertia ellipse(-oid) (>= 1);
- ``solidity``: area / convex hull area (2D; 1 for convex shapes) — how irregular outlines are;
- ``brightness``: mean intensity above the background, relative to the 95th percentile of
  all objects (so in (0, ~1], like a sketch's per-instance brightness);
- ``nn_distance``: distance between centroids and the nearest other centroid;
- ``z_extent_ratio`` (3D): mean Y/X spread over Z spread of the object (pixels), whose median
  is the Z anisotropy a simulation's ``z_scale`` reproduces.

Objects touching the image border take part in the density and neighbour statistics only.
Per image: ``density`` (objects per 10^4 pixels in 2D, 10^6 voxels in 3D) and ``foreground``
(fraction). Pooled: background level and noise (median and 1.4826 MAD of the pixels at least
3 pixels from any object; also of their 1-pixel Gaussian local mean, ``noise_local_mean``),
``brightness_scale`` (the 95th percentile of the nuclei's mean intensity above the background,
in image units, which ``brightness`` 1 stands for), the radial intensity profile (mean relative intensity per depth
bin, 0 = rim, 1 = centre) and the edge blur (Gaussian sigma from the 20 %-80 % rise of the
intensity across object edges: 1.683 sigma for a blurred step), and the ``texture``: robust SDs
of the pixel noise and of the few-pixel texture inside objects and in the background
(:mod:`.texture`), which synthesis matches.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree
from skimage.filters import threshold_otsu
from skimage.measure import regionprops
from skimage.morphology import h_maxima
from skimage.segmentation import find_boundaries, watershed

from workflow_lib.calibrate.stats import robust_stats
from workflow_lib.calibrate.texture import BANDS, REGIONS, measure_texture
from workflow_lib.simulate import NUCLEUS_STAIN
from workflow_lib.simulate.labels import equivalent_radius
from workflow_lib.sketch.targets import depth, edge_distance

_PROFILE_BINS = 10
#: An object shows in the radial profile when its peak rises at least this share of the
#: median object's above the background.
_MIN_PROFILE_CONTRAST = 0.1
_EDGE_REACH = 6.0
_EDGE_BIN = 0.5
#: Rise of a Gaussian-blurred step from 20 % to 80 %, in sigmas (2 x 0.8416).
_RISE_20_80 = 1.683
#: The per-object properties measured (calibration.json ``properties``; solidity in 2D only,
#: z_extent_ratio in 3D only).
PROPERTIES = ("radius", "elongation", "solidity", "z_extent_ratio", "brightness", "nn_distance")
#: Distributions are stored as at most this many values (quantiles of the measured ones).
MAX_SAMPLES = 512


@dataclass(frozen=True)
class MeasureSettings:
    """``sigma``: smoothing before thresholding; ``h``: depth (pixels) of the distance maxima
    that seed one nucleus each; ``min_size``: smallest object (pixels/voxels); ``z_scale``:
    physical Z step in Y/X pixels (3D)."""

    sigma: float = 1.0
    h: float = 1.0
    min_size: int = 20
    z_scale: float = 1.0


def _typical_radius(labels: np.ndarray) -> float:
    """Equivalent radius of the object a typical object pixel belongs to (the pixel-weighted
    median): small fragments, many but of few pixels, do not make nuclei look small."""
    sizes = np.bincount(labels.ravel())[1:]
    sizes = np.sort(sizes[sizes > 0])
    if not len(sizes):
        return 0.0
    half = np.searchsorted(np.cumsum(sizes), sizes.sum() / 2)
    return float(equivalent_radius(sizes[half : half + 1], labels.ndim)[0])


def _ball(radius: int, ndim: int) -> np.ndarray:
    """Disc (2D) or ball (3D) footprint of ``radius`` pixels."""
    grid = np.indices((2 * radius + 1,) * ndim) - radius
    return (grid**2).sum(0) <= radius**2


def _sampling(s: MeasureSettings, ndim: int) -> tuple[float, ...] | None:
    """Distance transform sampling: Z in Y/X pixels (3D)."""
    return (s.z_scale, 1.0, 1.0) if ndim == 3 else None


def _distance_watershed(
    shape_mask: np.ndarray, mask: np.ndarray, s: MeasureSettings
) -> tuple[np.ndarray, int]:
    """(int32 regions, count): a watershed of ``mask`` on the inverted distance transform of
    ``shape_mask``, seeded by its regional maxima of depth ``s.h`` (h-maxima)."""
    # Smoothing the distance map flattens the pixel steps along an elongated nucleus' ridge,
    # which would otherwise seed it twice.
    distance = ndimage.gaussian_filter(
        ndimage.distance_transform_edt(shape_mask, sampling=_sampling(s, mask.ndim)), 0.7)
    markers, n = ndimage.label(h_maxima(distance, s.h))
    return watershed(-distance, markers, mask=mask).astype(np.int32), n


def _cut_at_half_maximum(
    smooth: np.ndarray, mask: np.ndarray, bg: float, s: MeasureSettings
) -> np.ndarray:
    """Nuclei in ``mask``: distance-watershed pieces, each cut at its own half maximum."""
    regions, n = _distance_watershed(mask, mask, s)
    if n == 0:
        return regions
    # The peak is taken where small bright spots are opened away: in nuclei with chromatin
    # foci the spots, not the body, hold the 95th percentile, and half of it would cut the
    # body into pieces. The opening is a quarter of the pieces' typical radius wide, so a
    # smooth nucleus keeps its plateau.
    radius = _typical_radius(regions)
    opened = ndimage.grey_opening(smooth, footprint=_ball(max(1, round(radius / 4)), smooth.ndim))
    peak = np.zeros(n + 1)
    peak[1:] = ndimage.labeled_comprehension(
        opened, regions, np.arange(1, n + 1), lambda v: np.percentile(v, 95), float, bg)
    labels = np.where(smooth >= bg + 0.5 * (peak[regions] - bg), regions, 0)
    sizes = np.bincount(labels.ravel(), minlength=n + 1)
    small = sizes < s.min_size
    small[0] = False
    labels[small[labels]] = 0
    return relabelled(labels)


def _grey_step(image: np.ndarray) -> float:
    """Smallest difference between the image's grey values (read from at most ~2^20 pixels)."""
    values = np.unique(np.asarray(image, np.float32).ravel()[:: max(1, np.size(image) // 2**20)])
    return float(np.diff(values).min()) if len(values) > 1 else 0.0


def _deep_only(labels: np.ndarray, depth: float, sampling) -> np.ndarray:
    """``labels`` without the objects less than ``depth`` pixels deep (slivers, crescents)."""
    n = int(labels.max())
    if n == 0:
        return labels
    inside = ndimage.distance_transform_edt(labels > 0, sampling=sampling)
    deepest = np.zeros(n + 1)
    deepest[1:] = ndimage.maximum(inside, labels, np.arange(1, n + 1))
    return np.where(deepest[labels] >= depth, labels, 0)


def _split_touching(labels: np.ndarray, s: MeasureSettings) -> np.ndarray:
    """Objects split where their own outline (not the low threshold's) has a neck."""
    objects = labels > 0
    parts, n = _distance_watershed(objects & ~find_boundaries(labels, mode="inner"), objects, s)
    # One id per (object, part) pair; only object pixels are sorted (volumes are large).
    _, pair = np.unique(labels[objects].astype(np.int64) * (n + 1) + parts[objects],
                        return_inverse=True)
    split = np.zeros(labels.shape, np.int64)
    split[objects] = pair.ravel() + 1
    sizes = np.bincount(split.ravel())
    small = sizes < s.min_size
    small[0] = False
    return np.where(small[split], 0, split)


def _holes_filled(labels: np.ndarray) -> np.ndarray:
    """Holes in objects (dark chromatin below the half maximum) given to the nearest object."""
    holes = ndimage.binary_fill_holes(labels > 0) & (labels == 0)
    if not holes.any():
        return labels
    _, nearest = ndimage.distance_transform_edt(labels == 0, return_indices=True)
    return np.where(holes, labels[tuple(nearest)], labels)


def find_nuclei(image: np.ndarray, s: MeasureSettings = MeasureSettings()) -> np.ndarray:
    """Unsupervised instance segmentation of bright nuclei (module doc), int32 labels."""
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32), s.sigma)
    if smooth.max() <= smooth.min():
        return np.zeros(smooth.shape, np.int32)
    sampling = _sampling(s, smooth.ndim)
    bg, noise = robust_stats(smooth[smooth <= threshold_otsu(smooth)])
    # A background clipped to one grey level (8-bit cameras, offsets) has no measurable
    # spread: a threshold a hair above it would take the glow around nuclei as foreground.
    noise = max(noise, _grey_step(image))
    # A low threshold finds dim nuclei too; each is then cut at its own half maximum, so its
    # outline is where its edge is in the image, whatever its brightness.
    low = ndimage.binary_fill_holes(smooth > bg + 3.0 * noise)
    labels = _cut_at_half_maximum(smooth, low, bg, s)
    if labels.max() == 0:
        return labels
    # A dim nucleus touching a bright one falls below the bright one's half maximum: the
    # bodies left in the foreground are searched again. Bodies are what an opening at half a
    # typical radius keeps, so the thin glow around nuclei does not count, not even where it
    # joins a body; pieces cut from them must be that deep too.
    reach = 0.5 * _typical_radius(labels)
    rest = low & (labels == 0)
    cores = ndimage.distance_transform_edt(rest, sampling=sampling) >= reach
    if cores.any():
        bodies = rest & (ndimage.distance_transform_edt(~cores, sampling=sampling) <= reach)
        more = _deep_only(_cut_at_half_maximum(smooth, bodies, bg, s), reach, sampling)
        labels = np.where(more > 0, more + labels.max(), labels)
    # Nuclei joined by the low threshold's glow are one watershed seed; cut at their half
    # maxima they show a neck, and are split there.
    return relabelled(_holes_filled(_split_touching(labels, s)))


def relabelled(labels: np.ndarray) -> np.ndarray:
    """Ids renumbered 1..N in order of appearance, int32."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    lut = np.zeros(int(labels.max()) + 1, np.int32)
    lut[ids] = np.arange(1, len(ids) + 1)
    return lut[labels]


def _background(image: np.ndarray, labels: np.ndarray) -> tuple[float, float, float]:
    """(median, robust SD, robust SD of the 1-pixel Gaussian local mean) of the pixels at
    least 3 pixels away from every object."""
    away = ~ndimage.binary_dilation(labels > 0, iterations=3)
    if not away.any():
        away = np.ones(image.shape, bool)
    median, noise = robust_stats(image[away])
    _, local = robust_stats(ndimage.gaussian_filter(image, 1.0)[away])
    return median, noise, local


def _shape_stats(labels: np.ndarray, spacing: np.ndarray) -> dict[str, np.ndarray]:
    """Per object: radius, elongation, solidity (2D), z extent ratio (3D), border flag."""
    ndim = labels.ndim
    props = regionprops(labels)
    n = len(props)
    out = {k: np.full(n, np.nan) for k in ("radius", "elongation", "solidity", "z_extent_ratio")}
    out["border"] = np.zeros(n, bool)
    out["centroid"] = np.zeros((n, ndim))
    for k, p in enumerate(props):
        out["centroid"][k] = (p.coords * spacing).mean(0)
        lo, hi = np.array([b for b in p.bbox[:ndim]]), np.array(p.bbox[ndim:])
        out["border"][k] = bool(np.any(lo == 0) or np.any(hi == np.array(labels.shape)))
        shape_spacing = spacing
        if ndim == 3 and len(p.coords) > ndim:
            spread = p.coords.std(0)
            out["z_extent_ratio"][k] = ratio = float(spread[1:].mean() / max(spread[0], 1e-6))
            # A simulation draws its shapes in coordinates whose Z step is z_scale (the median
            # ratio) and flattens them by it; its radius and elongation are measured there too,
            # or an object's flatness would count twice: as z_scale and as elongation.
            shape_spacing = np.array((ratio, 1.0, 1.0))
        coords = p.coords * shape_spacing
        out["radius"][k] = equivalent_radius(len(coords) * float(np.prod(shape_spacing)), ndim)
        if len(coords) > ndim:
            cov = np.cov(coords.T)
            eig = np.clip(np.linalg.eigvalsh(cov), 1e-9, None)
            out["elongation"][k] = float(np.sqrt(eig[-1] / eig[0]))
        if ndim == 2:
            out["solidity"][k] = float(p.solidity)
    return out


def _edge_sigma(image: np.ndarray, labels: np.ndarray, bg: float) -> float | None:
    """Gaussian blur (pixels) from the pooled, per-object normalised intensity across edges."""
    signed, owner = edge_distance(labels)
    interior = ndimage.mean(image, labels, np.arange(1, labels.max() + 1))
    level = np.concatenate([[np.nan], np.asarray(interior, float)])[owner] - bg
    near = (np.abs(signed) <= _EDGE_REACH) & (level > 0)
    if near.sum() < 10:
        return None
    rel = (image[near] - bg) / level[near]
    bins = np.round((signed[near] + _EDGE_REACH) / _EDGE_BIN).astype(int)
    centres = np.arange(bins.max() + 1) * _EDGE_BIN - _EDGE_REACH
    count = np.bincount(bins)
    prof = np.bincount(bins, rel) / np.maximum(count, 1)
    ok = count > 0
    centres, prof = centres[ok], prof[ok]
    crossings = []
    for target in (0.2, 0.8):
        above = np.nonzero(prof >= target)[0]
        if not len(above) or above[0] == 0:
            return None
        j = above[0]
        x0, x1, y0, y1 = centres[j - 1], centres[j], prof[j - 1], prof[j]
        crossings.append(x0 + (target - y0) * (x1 - x0) / (y1 - y0) if y1 != y0 else x1)
    return float(max(crossings[1] - crossings[0], 0.0) / _RISE_20_80)


def _radial_profile(image: np.ndarray, labels: np.ndarray, bg: float) -> np.ndarray:
    """Mean of (intensity - bg) / (object's peak - bg) per relative-depth bin (rim -> centre).

    Objects whose peak rises less than a tenth as far above ``bg`` as the median object's
    are left out: a mask drawn where the image shows (almost) nothing would divide its noise
    by its (near-)zero contrast and swamp every bin (-50 in the centre bin of a dense 3D
    volume's masks)."""
    top = int(labels.max())
    d = depth(labels)
    peak = np.zeros(top + 1)
    peak[1:] = ndimage.maximum(d, labels, np.arange(1, top + 1))
    rel_depth = np.where(labels > 0, d / np.maximum(peak[labels], 1.0), 0.0)
    smooth = ndimage.gaussian_filter(np.asarray(image, np.float32), 1.0)
    brightest = np.zeros(top + 1)
    brightest[1:] = ndimage.maximum(smooth, labels, np.arange(1, top + 1))
    contrast = brightest - bg
    typical = float(np.median(contrast[1:])) if top else 0.0
    shown = contrast > _MIN_PROFILE_CONTRAST * max(typical, 0.0)
    shown[0] = False
    scale = np.maximum(contrast, 1e-6)[labels]
    cell = shown[labels]
    bins = np.minimum((rel_depth[cell] * _PROFILE_BINS).astype(int), _PROFILE_BINS - 1)
    values = ((image - bg) / scale)[cell]
    count = np.bincount(bins, minlength=_PROFILE_BINS)
    profile = np.bincount(bins, values, _PROFILE_BINS) / np.maximum(count, 1)
    # Objects less than _PROFILE_BINS pixels deep have no pixel in the first bins (their rim
    # ring is at depth 1 / peak): those bins take their nearest measured neighbour's value.
    seen = np.nonzero(count)[0]
    centres = np.arange(_PROFILE_BINS)
    return np.interp(centres, seen, profile[seen]) if len(seen) else profile


def _samples(values: np.ndarray) -> list[float]:
    """A distribution as at most MAX_SAMPLES values (its quantiles when there are more)."""
    values = np.sort(np.asarray(values, float)[np.isfinite(values)])
    if len(values) > MAX_SAMPLES:
        values = np.quantile(values, (np.arange(MAX_SAMPLES) + 0.5) / MAX_SAMPLES)
    return [round(float(v), 4) for v in values]


def _summary(values: np.ndarray) -> dict[str, float] | None:
    values = np.asarray(values, float)
    values = values[np.isfinite(values)]
    if not len(values):
        return None
    q = np.percentile(values, [10, 25, 50, 75, 90])
    return {"mean": float(values.mean()), "p10": float(q[0]), "p25": float(q[1]),
            "median": float(q[2]), "p75": float(q[3]), "p90": float(q[4]), "n": int(len(values))}


def _median_texture(textures: Sequence[dict]) -> dict:
    """Per band and region the median over images of their robust SDs (None: no image had
    the region)."""
    out: dict = {}
    for band in BANDS:
        out[band] = {}
        for region in REGIONS:
            values = [t[band][region] for t in textures if t[band][region] is not None]
            out[band][region] = float(np.median(values)) if values else None
    return out


class Pool:
    """Measurements of a set of images, added image by image and pooled into the JSON fields
    every stain's calibration shares (:func:`measure_nuclei`, :func:`.membranes.measure_membranes`).

    ``density`` is objects per 10^4 pixels (10^6 voxels) of each image's ``area`` (its pixels,
    or its tissue's); per-object properties keep whole objects only (not touching the border),
    neighbour distances every object.
    """

    def __init__(self, ndim: int, z_scale: float):
        self.ndim = ndim
        self.spacing = np.array((z_scale, 1.0, 1.0) if ndim == 3 else (1.0, 1.0))
        self.per_object: dict[str, list[np.ndarray]] = {k: [] for k in PROPERTIES}
        self.sources: list[str] = []
        self.density: list[float] = []
        self.foreground: list[float] = []
        self.background: list[tuple[float, float, float]] = []
        self.textures: list[dict] = []
        self.profiles: list[np.ndarray] = []
        self.weights: list[int] = []

    def add_image(self, source: str, labels: np.ndarray, area: int, background: tuple[float, float, float]) -> None:
        """One image's ``labels`` (``source``: mask or unsupervised), the ``area`` its density
        is counted on, and its background (level, noise, noise of the local mean)."""
        self.sources.append(source)
        self.density.append(labels.max() / max(area, 1) * (1e4 if self.ndim == 2 else 1e6))
        self.foreground.append(float(np.mean(labels > 0)))
        self.background.append(background)

    def add_objects(self, image: np.ndarray, labels: np.ndarray, bg: float, bright: np.ndarray) -> None:
        """The objects of one image: shapes, neighbour distances, radial profile, and their
        brightness = the mean of ``image`` over ``bright`` (labels of the pixels that show the
        stain: the whole nucleus, or a cell's membrane band) above ``bg``."""
        stats = _shape_stats(labels, self.spacing)
        whole = ~stats["border"]
        for key in ("radius", "elongation", "solidity", "z_extent_ratio"):
            self.per_object[key].append(stats[key][whole])
        means = np.asarray(ndimage.mean(image, bright, np.arange(1, labels.max() + 1)), float)
        self.per_object["brightness"].append(means[whole] - bg)
        if len(stats["centroid"]) > 1:
            dist, _ = cKDTree(stats["centroid"]).query(stats["centroid"], k=2)
            self.per_object["nn_distance"].append(dist[:, 1])
        self.profiles.append(_radial_profile(image, labels, bg))
        self.weights.append(int(labels.max()))

    def result(self, stain: str, density_unit: str) -> dict:
        """The shared JSON fields; ``brightness`` relative to its 95th percentile
        (``brightness_scale``, image units, which ``brightness`` 1 stands for)."""
        ndim = self.ndim
        pooled = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.per_object.items()}
        bright = pooled["brightness"]
        top = float(np.percentile(bright, 95)) if len(bright) else 1.0
        pooled["brightness"] = np.clip(bright / max(top, 1e-6), 0.0, None)
        level, noise, local = (np.median(v) for v in zip(*self.background))
        return {
            "stain": stain,
            "ndim": ndim,
            "images": len(self.sources),
            "segmentation": sorted(set(self.sources)),
            "objects": int(len(pooled["radius"])),
            "density": {"unit": density_unit, "per_image": [float(d) for d in self.density],
                        **(_summary(self.density) or {})},
            "foreground": _summary(self.foreground),
            "background": {"level": float(level), "noise": float(noise), "noise_local_mean": float(local)},
            "brightness_scale": top,
            "radial_profile": (np.average(self.profiles, axis=0, weights=self.weights).tolist()
                               if self.profiles else None),
            "texture": _median_texture(self.textures),
            "properties": {
                key: {"summary": _summary(values), "samples": _samples(values)}
                for key, values in pooled.items()
                if not (key == "solidity" and ndim == 3) and not (key == "z_extent_ratio" and ndim == 2)
            },
        }


def measure_nuclei(
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    s: MeasureSettings = MeasureSettings(),
) -> dict:
    """Statistics of nuclei in real ``images`` (module doc); ``masks[k]`` replaces the
    unsupervised segmentation of image k where given. Returns a JSON-ready dict with a summary
    and the distribution (``samples``) of every per-object property."""
    if not images:
        raise ValueError("no images to calibrate on")
    ndim = images[0].ndim
    pool = Pool(ndim, s.z_scale)
    blurs = []
    for image, mask in zip(images, masks):
        image = np.asarray(image, np.float32)
        labels = relabelled(np.asarray(mask)) if mask is not None else find_nuclei(image, s)
        background = _background(image, labels)
        pool.add_image("mask" if mask is not None else "unsupervised", labels, image.size, background)
        pool.textures.append(measure_texture(image, labels > 0))
        if labels.max() == 0:
            continue
        pool.add_objects(image, labels, background[0], labels)
        sigma = _edge_sigma(image, labels, background[0])
        if sigma is not None:
            blurs.append(sigma)
    unit = "objects per 1e4 pixels" if ndim == 2 else "objects per 1e6 voxels"
    return {**pool.result(NUCLEUS_STAIN, unit), "edge_sigma_px": float(np.median(blurs)) if blurs else None}
