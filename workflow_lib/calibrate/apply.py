"""From a calibration (:func:`.measure.measure_nuclei`) to simulation and sketch parameters.

A simulation with ``calibrate: true`` takes every parameter its user did not set from the
measurements of the real training images; keys the user set always win. What is derived:

- ``cells``: the per-image density's interquartile range, scaled to the simulated shape;
- ``radius_samples``, ``elongation_samples``: the measured distributions, drawn from per
  nucleus (not uniform ranges around a mean);
- ``irregularity``: low (0.05), because the simulator's warp mostly stretches nuclei (at 0.5
  their median eccentricity is 0.61 with elongation 1) and the measured elongation already
  carries the stretch; the warp barely moves solidity (0.97 -> 0.96 from 0 to 1), so outline
  roughness is not calibrated;
- ``min_distance``: the median nucleus's width (2 x median radius / sqrt(median elongation)).
  The simulator cannot deform nuclei: two placed closer than their width overlap and the later
  one is cut to a sliver, where real nuclei that close are squeezed side by side. Cut nuclei
  are shapes no real image holds, and a segmenter trained on them scored lower on real images
  (docs/simulation.md); the price is fewer close neighbours than real (the structure figure's
  ``nn_distance``). Layered kinds (``overlapping``) keep their own: their cells overlap whole,
  in separate label layers, and are never cut;
- ``z_scale`` (3D): the median Y/X over Z spread of the nuclei.

Sketches: ``brightness_samples`` (per-nucleus brightness relative to the brightest), the
``centre`` profile's ``falloff`` and ``gamma`` fitted to the measured radial profile, ``blur``
= the measured edge sigma, ``background`` = the real background level and ``cell_range`` from
just above it to the brightest nuclei's level, so the sketch has the real images' intensities
(the diffusion model then has no dark void to fill, nor a glow to invent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workflow_lib.errors import ParamError
from workflow_lib.simulate import Kind

#: Sketch brightness never drops below this: a nucleus must stay visibly a nucleus.
_MIN_BRIGHTNESS = 0.05
_IRREGULARITY_WITH_MEASURED_ELONGATION = 0.05


def _samples(calibration: Mapping[str, Any], name: str) -> list[float]:
    prop = calibration["properties"].get(name)
    return list(prop["samples"]) if prop else []


def _median(calibration: Mapping[str, Any], name: str) -> float | None:
    prop = calibration["properties"].get(name)
    return prop["summary"]["median"] if prop and prop["summary"] else None


def simulation_params(
    calibration: Mapping[str, Any], kind: Kind, shape: Sequence[int], user: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``params`` of a calibrated simulation: measured values under the user's explicit keys."""
    if not kind.nuclei_like:
        raise ParamError(
            "calibrate", f"kind '{kind.name}' cannot be calibrated yet (nuclei-like kinds only)"
        )
    if calibration["objects"] == 0:
        raise ParamError("calibrate", "the calibration found no nucleus in the training images")
    ndim = len(shape)
    derived: dict[str, Any] = {}
    density = calibration["density"]
    scale = float(np.prod(shape)) / (1e4 if ndim == 2 else 1e6)
    lo = max(1, int(np.floor(density["p25"] * scale)))
    derived["cells"] = [lo, max(lo, int(np.ceil(density["p75"] * scale)))]
    radii = [max(r, 1.0) for r in _samples(calibration, "radius")]
    if radii:
        derived["radius_samples"] = radii
    elongations = [max(e, 1.0) for e in _samples(calibration, "elongation")]
    if elongations:
        derived["elongation_samples"] = elongations
    if elongations:
        derived["irregularity"] = _IRREGULARITY_WITH_MEASURED_ELONGATION
    radius, elongation = _median(calibration, "radius"), _median(calibration, "elongation")
    if radius is not None and not kind.layered:  # layered kinds overlap whole cells by design
        derived["min_distance"] = round(2.0 * radius / np.sqrt(max(elongation or 1.0, 1.0)), 3)
    ratio = _median(calibration, "z_extent_ratio")
    if ndim == 3 and ratio is not None:
        derived["z_scale"] = round(max(ratio, 0.05), 4)
    user = dict(user or {})
    # A user range replaces the measured distribution of the same property.
    for key, samples in (("radius", "radius_samples"), ("elongation", "elongation_samples")):
        if key in user:
            derived.pop(samples, None)
    return {k: v for k, v in derived.items() if k in kind.keys} | user


def _profile_fit(profile: Sequence[float]) -> tuple[float, float]:
    """(falloff, gamma) of ``1 - falloff * (1 - r) ** gamma`` closest to a rim->centre profile."""
    p = np.asarray(profile, float)
    p = p / max(p.max(), 1e-6)
    r = (np.arange(len(p)) + 0.5) / len(p)
    best, best_err = (0.6, 1.5), np.inf
    for falloff in np.linspace(0.0, 1.0, 41):
        for gamma in np.linspace(0.2, 4.0, 39):
            err = float(np.sum((1 - falloff * (1 - r) ** gamma - p) ** 2))
            if err < best_err:
                best, best_err = (float(falloff), float(gamma)), err
    return round(best[0], 3), round(best[1], 3)


def sketch_params(
    calibration: Mapping[str, Any], sketch: Mapping[str, Any], explicit: Sequence[str]
) -> dict[str, Any]:
    """A schema-filled ``sketch`` mapping with the measured values where the user set none."""
    out = dict(sketch)
    if "brightness" not in explicit:
        bright = [min(max(b, _MIN_BRIGHTNESS), 1.0) for b in _samples(calibration, "brightness")]
        if bright:
            out["brightness_samples"] = bright
    profile = calibration.get("radial_profile")
    if profile and "mode" not in explicit:
        out["mode"] = "centre"
        falloff, gamma = _profile_fit(profile)
        if "falloff" not in explicit:
            out["falloff"] = falloff
        if "gamma" not in explicit:
            out["gamma"] = gamma
    if calibration.get("edge_sigma_px") is not None and "blur" not in explicit:
        out["blur"] = round(float(calibration["edge_sigma_px"]), 3)
    level = float(calibration["background"]["level"])
    if "background" not in explicit:
        out["background"] = round(2 * level - 1, 4)
    if "cell_range" not in explicit:
        # brightness 1 is the brightest nuclei's mean intensity; the profile's mean over a
        # nucleus turns that mean into the sketch's peak value
        shape = np.asarray(profile, float) if profile else np.ones(1)
        mean_q = float(np.clip(shape.mean() / max(shape.max(), 1e-6), 0.3, 1.0))
        top = level + float(calibration["brightness_scale"]) / mean_q
        lo = min(2 * level - 1 + 0.02, 0.9)
        out["cell_range"] = [round(lo, 4), round(float(np.clip(2 * top - 1, lo + 0.05, 1.0)), 4)]
    return out
