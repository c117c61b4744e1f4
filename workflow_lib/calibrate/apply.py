"""From a calibration (:func:`.measure.measure_nuclei`, :func:`.membranes.measure_membranes`)
to simulation and sketch parameters.

A simulation with ``calibrate: true`` takes every parameter its user did not set from the
measurements of the real training images; keys the user set always win. The calibration's
``stain`` (nuclei or membranes) must be one the kind shows (:attr:`Kind.stains`); of a kind
showing both (``multichannel``: cells and their nuclei) the label channels of that stain are
calibrated, and both when the data set's images show both stains in separate channels (the
calibration then measured each: :func:`stain_calibrations`). What is derived:

- ``cells``: the per-image density's interquartile range, scaled to the simulated shape (tissue
  kinds: to their tissue's area, the user's ``tissue``/``extent``), from the membranes where
  they were measured (they show the cells), else from the nuclei; a layered tissue instead
  gets ``layer_spacing`` = the median cell diameter from a membrane calibration;
- ``radius_samples``, ``elongation_samples`` (nuclei): the measured distributions, drawn from
  per nucleus (not uniform ranges around a mean); in ``multichannel`` the nucleus radii, each
  at most its cell's equivalent radius (a user ``nucleus_size`` keeps the old rule);
- ``irregularity``: low (0.05), because the simulator's warp mostly stretches nuclei (at 0.5
  their median eccentricity is 0.61 with elongation 1) and the measured elongation already
  carries the stretch; the warp barely moves solidity (0.97 -> 0.96 from 0 to 1), so outline
  roughness is not calibrated;
- ``min_distance`` (free nuclei): the median nucleus's width (2 x median radius / sqrt(median
  elongation)). The simulator cannot deform nuclei: two placed closer than their width overlap
  and the later one is cut to a sliver, where real nuclei that close are squeezed side by side.
  Cut nuclei are shapes no real image holds, and a segmenter trained on them scored lower on
  real images (docs/simulation.md); the price is fewer close neighbours than real (the
  structure figure's ``nn_distance``). Layered kinds (``overlapping``) keep their own: their
  cells overlap whole, in separate label layers, and are never cut; in a tissue the cells
  space the nuclei;
- ``z_scale`` (3D): the median Y/X over Z spread of the objects (of the stain ``cells`` comes
  from).

Sketches: ``brightness_samples`` (per-object brightness relative to the brightest), the
profile's ``falloff`` and ``gamma`` fitted to the measured radial profile (mode ``centre`` for
nuclei, ``boundary`` for membranes), ``blur`` = the measured edge sigma (membranes: their
width), ``background`` = the real background level and ``cell_range`` from just above it to the
brightest objects' level, so the sketch has the real images' intensities (the diffusion model
then has no dark void to fill, nor a glow to invent).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workflow_lib.errors import ParamError
from workflow_lib.simulate import MEMBRANE_STAIN, NUCLEUS_STAIN, Kind
from workflow_lib.simulate.kinds import SKETCH_MODES
from workflow_lib.simulate.membranes import read_tissue, tissue_mask
from workflow_lib.simulate.params import Params

#: Sketch brightness never drops below this: a nucleus must stay visibly a nucleus.
_MIN_BRIGHTNESS = 0.05
_IRREGULARITY_WITH_MEASURED_ELONGATION = 0.05
#: calibration.json key of the measurements of every stain after the first (stain -> the same
#: fields as the first's).
OTHER_STAINS = "other_stains"
#: What one measured object of each stain is called in messages.
OBJECT_NAME = {NUCLEUS_STAIN: "nucleus", MEMBRANE_STAIN: "cell"}
#: A calibration on fewer whole objects is reported as rough: its p10 and p90, which bound the
#: drawn sizes and shapes, are then each one object's value.
FEW_OBJECTS = 10


def calibrated_stain(calibration: Mapping[str, Any]) -> str:
    """The (first) stain a calibration measured (one without the key, e.g. made by hand: nuclei)."""
    return calibration.get("stain", NUCLEUS_STAIN)


def stain_calibrations(calibration: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Every stain a calibration measured -> its measurements, the first stain's first.

    A calibration of one stain is its measurements; one of several (``calibration.stain`` a
    list, one channel each) holds the first stain's at the top and every further stain's
    under :data:`OTHER_STAINS`, so that readers of one stain read it unchanged."""
    first = {k: v for k, v in calibration.items() if k != OTHER_STAINS}
    return {calibrated_stain(calibration): first, **calibration.get(OTHER_STAINS, {})}


def with_other_stains(measured: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """The calibration.json of several stains' measurements (stain -> measurements, the first
    stain first): :func:`stain_calibrations` inverted."""
    first, *others = measured
    return {**measured[first], **({OTHER_STAINS: {s: measured[s] for s in others}} if others else {})}


def _samples(calibration: Mapping[str, Any], name: str) -> list[float]:
    prop = calibration["properties"].get(name)
    return list(prop["samples"]) if prop else []


def _median(calibration: Mapping[str, Any], name: str) -> float | None:
    prop = calibration["properties"].get(name)
    return prop["summary"]["median"] if prop and prop["summary"] else None


def _tissue_share(shape: Sequence[int], user: Mapping[str, Any]) -> float:
    """Share of the image a tissue kind's tissue covers, with the user's ``tissue``/``extent``."""
    settings = read_tissue(Params(user), len(shape))
    return float(tissue_mask(tuple(shape), settings.tissue, np.asarray(settings.extent)).mean())


def _count_range(density: Mapping[str, Any], area: float, ndim: int) -> list[int]:
    """The per-image density's interquartile range as an object count in ``area`` pixels."""
    scale = area / (1e4 if ndim == 2 else 1e6)
    lo = max(1, int(np.floor(density["p25"] * scale)))
    return [lo, max(lo, int(np.ceil(density["p75"] * scale)))]


def _nucleus_shapes(calibration: Mapping[str, Any]) -> dict[str, Any]:
    """The measured radius and elongation distributions and the outline irregularity."""
    derived: dict[str, Any] = {}
    radii = [max(r, 1.0) for r in _samples(calibration, "radius")]
    if radii:
        derived["radius_samples"] = radii
    elongations = [max(e, 1.0) for e in _samples(calibration, "elongation")]
    if elongations:
        derived["elongation_samples"] = elongations
        derived["irregularity"] = _IRREGULARITY_WITH_MEASURED_ELONGATION
    return derived


def simulation_params(
    calibration: Mapping[str, Any], kind: Kind, shape: Sequence[int], user: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``params`` of a calibrated simulation: measured values under the user's explicit keys.

    At least one stain the calibration measured must be one that the kind shows
    (:attr:`Kind.stains`); a tissue kind (one with a ``tissue`` key: membranes, multichannel)
    scales the density to its tissue's area, since there the cells fill the tissue, not the
    image.
    """
    measured = {s: m for s, m in stain_calibrations(calibration).items() if s in kind.stains}
    if not measured:
        raise ParamError("calibrate", f"kind '{kind.name}' shows {' and '.join(kind.stains)}, but "
                         f"the calibration measures {' and '.join(stain_calibrations(calibration))} "
                         "(the data set's calibration.stain)")
    for stain, m in measured.items():
        if m["objects"] == 0:
            raise ParamError("calibrate", f"the calibration found no {OBJECT_NAME[stain]} in the "
                             "training images")
    user = dict(user or {})
    ndim = len(shape)
    tissue = "tissue" in kind.keys
    area = float(np.prod(shape)) * (_tissue_share(shape, user) if tissue else 1.0)
    # The cells' layout from the stain that shows the cells where it was measured
    layout_stain = MEMBRANE_STAIN if MEMBRANE_STAIN in measured else NUCLEUS_STAIN
    layout = measured[layout_stain]
    radius = _median(layout, "radius")
    derived: dict[str, Any] = {}
    if not (tissue and user.get("layers")):  # layered tissues place their seeds by spacing
        derived["cells"] = _count_range(layout["density"], area, ndim)
    elif layout_stain == MEMBRANE_STAIN and radius is not None:
        derived["layer_spacing"] = round(2.0 * radius, 3)  # one cell thick
    nuclei = measured.get(NUCLEUS_STAIN)
    if nuclei is not None:
        derived |= _nucleus_shapes(nuclei)
        nucleus_radius, elongation = _median(nuclei, "radius"), _median(nuclei, "elongation")
        if nucleus_radius is not None and not tissue and not kind.layered:
            # layered kinds overlap whole cells by design; in a tissue the cells space the nuclei
            derived["min_distance"] = round(2.0 * nucleus_radius / np.sqrt(max(elongation or 1.0, 1.0)), 3)
    ratio = _median(layout, "z_extent_ratio")
    if ndim == 3 and ratio is not None:
        derived["z_scale"] = round(max(ratio, 0.05), 4)
    # A user range replaces the measured distribution of the same property; a user nucleus
    # size (relative to the cell) replaces the measured nucleus radii.
    for key, samples in (("radius", "radius_samples"), ("elongation", "elongation_samples"),
                         ("nucleus_size", "radius_samples")):
        if key in user:
            derived.pop(samples, None)
    return {k: v for k, v in derived.items() if k in kind.keys} | user


def _profile_fit(profile: Sequence[float], mode: str) -> tuple[float, float]:
    """(falloff, gamma) of the sketch profile of ``mode`` (``centre``: ``1 - falloff * (1 - r)
    ** gamma``, ``boundary``: ``1 - falloff * r ** gamma``) closest to a rim->centre profile."""
    p = np.asarray(profile, float)
    p = p / max(p.max(), 1e-6)
    r = (np.arange(len(p)) + 0.5) / len(p)
    u = 1 - r if mode == "centre" else r
    best, best_err = (0.6, 1.5), np.inf
    for falloff in np.linspace(0.0, 1.0, 41):
        for gamma in np.linspace(0.2, 4.0, 39):
            err = float(np.sum((1 - falloff * u ** gamma - p) ** 2))
            if err < best_err:
                best, best_err = (float(falloff), float(gamma)), err
    return round(best[0], 3), round(best[1], 3)


def sketch_params(
    calibration: Mapping[str, Any], sketch: Mapping[str, Any], explicit: Sequence[str]
) -> dict[str, Any]:
    """A schema-filled ``sketch`` mapping with the measured values where the user set none
    (for the label channels that show the calibration's stain; of several stains, give one
    stain's measurements: :func:`stain_calibrations`)."""
    stain = calibrated_stain(calibration)
    out = dict(sketch)
    if "brightness" not in explicit:
        bright = [min(max(b, _MIN_BRIGHTNESS), 1.0) for b in _samples(calibration, "brightness")]
        if bright:
            out["brightness_samples"] = bright
    profile = calibration.get("radial_profile")
    mode = SKETCH_MODES[stain]
    if profile and "mode" not in explicit:
        out["mode"] = mode
        falloff, gamma = _profile_fit(profile, mode)
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
        # brightness 1 is the brightest objects' mean intensity (nuclei: over the whole nucleus,
        # membranes: on the boundary); the profile's mean there turns it into the peak value
        shape = np.asarray(profile, float) if profile else np.ones(1)
        measured_on = shape if stain == NUCLEUS_STAIN else shape[:1]
        mean_q = float(np.clip(measured_on.mean() / max(shape.max(), 1e-6), 0.3, 1.0))
        top = level + float(calibration["brightness_scale"]) / mean_q
        lo = min(2 * level - 1 + 0.02, 0.9)
        out["cell_range"] = [round(lo, 4), round(float(np.clip(2 * top - 1, lo + 0.05, 1.0)), 4)]
    return out
