"""Texture of real images, measured and matched: pixel noise and fine structure per region.

A few-step deterministic sampler ends on the model's estimate of the clean image, which is
smoother than a real image at the pixel scale (its shot noise is averaged out) and can be
blotchier inside objects than real nuclei at a few pixels (structure the model invents from
the sketch's noise). On the demo the synthetic background's pixel noise was half the real one
and the nuclei's mid-scale texture 2.5 times the real one; a segmenter trained on such images
learns textures it never meets in real images (docs/diffusion.md has the measurements).

Two bands of a spatial image ``x``, each region smoothed on its own (normalised convolution:
``G * (x m) / G * m`` for the objects ``m`` and for the background ``1 - m``, Gaussians of
``FINE`` and ``MID`` pixels on every axis), so an object's edge and its fall-off to the
background are never taken for texture:

- ``fine = x - S_FINE(x)``: pixel noise;
- ``mid = S_FINE(x) - S_MID(x)``: texture a few pixels across (chromatin, blotches).

Each is measured as a robust SD (1.4826 MAD) in two regions: ``objects`` (at least ``INSET``
pixels inside an object) and ``background`` (at least ``INSET`` pixels from every object).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from scipy import ndimage

from workflow_lib.calibrate.stats import robust_stats

FINE = 1.0
MID = 4.0
INSET = 3
REGIONS = ("objects", "background")
BANDS = ("fine", "mid")
_DAMPING_ROUNDS = 3


def _robust_sd(values: np.ndarray) -> float | None:
    """Robust SD, or None for fewer than 50 values (a region too small to say)."""
    return robust_stats(values)[1] if values.size >= 50 else None


class _Bands:
    """The band decomposition for one ``objects`` mask (module doc): each region smoothed from
    its own pixels, ``G * (x m) / G * m``, with the smoothed region masks ``G * m`` computed
    once per sigma however many images are split."""

    def __init__(self, objects: np.ndarray):
        objects = np.asarray(objects, bool)
        self.masks = [(region, region.astype(np.float32)) for region in (objects, ~objects)
                      if region.any()]
        self.shares = {s: [ndimage.gaussian_filter(w, s) for _, w in self.masks] for s in (FINE, MID)}

    def smooth(self, image: np.ndarray, sigma: float) -> np.ndarray:
        out = np.empty_like(image)
        for (region, weight), share in zip(self.masks, self.shares[sigma]):
            num = ndimage.gaussian_filter(image * weight, sigma)
            out[region] = num[region] / np.maximum(share[region], 1e-6)
        return out

    def fine(self, image: np.ndarray) -> np.ndarray:
        return image - self.smooth(image, FINE)

    def mid(self, image: np.ndarray) -> np.ndarray:
        return self.smooth(image, FINE) - self.smooth(image, MID)


def bands(image: np.ndarray, objects: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(fine, mid) bands of a spatial float image with bool ``objects`` (module doc)."""
    image = np.asarray(image, np.float32)
    split = _Bands(objects)
    fine_blur = split.smooth(image, FINE)
    return image - fine_blur, fine_blur - split.smooth(image, MID)


def regions(objects: np.ndarray) -> dict[str, np.ndarray]:
    """Boolean ``objects`` / ``background`` regions, ``INSET`` pixels away from every edge."""
    objects = np.asarray(objects, bool)
    return {
        "objects": ndimage.binary_erosion(objects, iterations=INSET),
        "background": ~ndimage.binary_dilation(objects, iterations=INSET),
    }


def measure_texture(image: np.ndarray, objects: np.ndarray) -> dict[str, dict[str, float | None]]:
    """Robust SD of each band in each region: ``{"fine": {"objects": sd, "background": sd},
    "mid": {...}}`` (image units; None where a region has fewer than 50 pixels)."""
    fine, mid = bands(image, objects)
    where = regions(objects)
    return {name: {r: _robust_sd(band[where[r]]) for r in REGIONS}
            for name, band in (("fine", fine), ("mid", mid))}


def _fine_gain_of_white_noise(ndim: int) -> float:
    """SD of the fine band of unit white noise (the band keeps part of the noise only)."""
    delta = np.zeros((9,) * ndim, np.float64)
    delta[(4,) * ndim] = 1.0
    kernel = delta - ndimage.gaussian_filter(delta, FINE)
    return float(np.sqrt(np.sum(kernel**2)))


def _soft(region: np.ndarray) -> np.ndarray:
    """A region as a weight in [0, 1] with a 1-pixel soft rim (no seam where a change stops)."""
    return np.clip(ndimage.gaussian_filter(region.astype(np.float32), 1.0), 0.0, 1.0)


def match_texture(
    image: np.ndarray,
    objects: np.ndarray,
    target: Mapping[str, Mapping[str, float | None]],
    rng: np.random.Generator,
) -> tuple[np.ndarray, dict[str, dict[str, float]]]:
    """``image`` (spatial, in [0, 1]) with the real images' texture ``target`` (as from
    :func:`measure_texture` on real images), region by region:

    1. ``fine`` noise weaker than the target gets white Gaussian noise added up to it (never
       removed);
    2. ``mid`` texture (the added noise's share included) stronger than the target is damped
       to it (never amplified: that would invent structure).

    ``objects`` (bool, the image's shape): where the labels have an object. Texture in the
    edge zones is left as it is (edges are not texture); noise goes everywhere. Returns (the
    image clipped to [0, 1], what was done: per region the ``mid_gain`` and the
    ``noise_added`` SD).
    """
    out = np.asarray(image, np.float32).copy()
    split = _Bands(objects)
    where = regions(objects)
    weights = {r: _soft(where[r]) for r in REGIONS}
    # Noise everywhere, edges included (a noise-free rim would mark every edge), at each
    # region's level, blended across the edge.
    fine = split.fine(out)
    per_unit = _fine_gain_of_white_noise(out.ndim)
    inside = _soft(np.asarray(objects, bool))
    amplitude = np.zeros_like(out)
    done: dict[str, dict[str, float]] = {}
    for r, weight in (("objects", inside), ("background", 1.0 - inside)):
        have, want = _robust_sd(fine[where[r]]), target["fine"].get(r)
        add = (float(np.sqrt(max(want**2 - have**2, 0.0))) / per_unit
               if have is not None and want is not None else 0.0)
        amplitude += add * weight
        done[r] = {"noise_added": round(add, 5)}
    out += amplitude * rng.standard_normal(out.shape, dtype=np.float32)
    # The bands overlap a little, so one damping undershoots: damp, measure again, damp.
    gains = dict.fromkeys(REGIONS, 1.0)
    for _ in range(_DAMPING_ROUNDS):
        mid = split.mid(out)
        gain_field = np.ones_like(out)
        for r in REGIONS:
            have, want = _robust_sd(mid[where[r]]), target["mid"].get(r)
            gain = min(1.0, want / have) if have and want is not None else 1.0
            gain_field -= (1.0 - gain) * weights[r]
            gains[r] *= gain
        out -= (1.0 - gain_field) * mid
    for r in REGIONS:
        done[r]["mid_gain"] = round(gains[r], 4)
    return np.clip(out, 0.0, 1.0), done
