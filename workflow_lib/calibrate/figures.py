"""Calibration figures: what was measured on the real images, and real vs simulated structure."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy import stats
from skimage.segmentation import find_boundaries

from workflow_lib.calibrate.apply import calibrated_stain
from workflow_lib.calibrate.measure import PROPERTIES
from workflow_lib.calibrate.texture import BANDS, REGIONS
from workflow_lib.plotting import orthogonal_views, pyplot
from workflow_lib.simulate import MEMBRANE_STAIN

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_TITLES = {
    "radius": "equivalent radius (px)",
    "elongation": "elongation (long / short axis)",
    "solidity": "solidity (area / convex hull)",
    "z_extent_ratio": "Y/X over Z spread",
    "brightness": "brightness over background (rel.)",
    "nn_distance": "nearest-neighbour distance (px)",
}
_VIEW = 256


def _overlay(image: np.ndarray, labels: np.ndarray) -> np.ndarray:
    image, labels = orthogonal_views(image, _VIEW), orthogonal_views(labels, _VIEW)
    lo, hi = np.percentile(image, [1, 99.8])
    grey = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgb[find_boundaries(labels, mode="inner")] = (1.0, 0.2, 0.2)
    return rgb


def calibration_figure(
    rows: Sequence[tuple[Mapping[str, Any], np.ndarray, np.ndarray]],
) -> Figure:
    """Per measured stain, a row: ``(result, image, labels)``, the first training image of
    its channel with the objects found (nuclei, or cells of a membrane stain), each property's
    distribution, the radial profile, and the scalar measurements in the row's title."""
    plt = pyplot()
    cols = max(len([p for p in PROPERTIES if p in result["properties"]]) for result, _, _ in rows) + 2
    fig = plt.figure(figsize=(3.2 * cols, 3.6 * len(rows)), layout="constrained")
    for sub, (result, image, labels) in zip(np.atleast_1d(fig.subfigures(len(rows), 1)), rows):
        _stain_row(sub, sub.subplots(1, cols), result, image, labels)
    return fig


def _stain_row(fig, axes, result: Mapping[str, Any], image: np.ndarray, labels: np.ndarray) -> None:
    objects = "cells" if calibrated_stain(result) == MEMBRANE_STAIN else "nuclei"
    edge_name = "membrane width" if objects == "cells" else "edge sigma"
    props = [p for p in PROPERTIES if p in result["properties"]]
    axes[0].imshow(_overlay(image, labels), interpolation="nearest")
    axes[0].set_title(f"found: {int(labels.max())} {objects} ({', '.join(result['segmentation'])})",
                      fontsize=8)
    axes[0].axis("off")
    for ax, name in zip(axes[1:], props):
        values = result["properties"][name]["samples"]
        if values:
            ax.hist(values, bins=30, color="tab:green", alpha=0.8)
        ax.set_title(_TITLES[name], fontsize=8)
    for ax in axes[1 + len(props):-1]:
        ax.axis("off")
    profile = result.get("radial_profile")
    ax = axes[-1]
    if profile:
        ax.plot((np.arange(len(profile)) + 0.5) / len(profile), profile, "o-", color="tab:green")
    ax.set(xlabel="relative depth (0 rim, 1 centre)", ylim=(0, 1.1))
    ax.set_title("radial intensity profile", fontsize=8)
    density = result["density"]
    edge = result.get("edge_sigma_px")
    fig.suptitle(
        f"{result['stain']} stain: {result['images']} train image(s), {result['objects']} whole "
        f"{objects}; density "
        f"{density.get('median', float('nan')):.2f} {density['unit']}, foreground "
        f"{(result['foreground'] or {}).get('median', float('nan')):.1%}, {edge_name} "
        f"{'n/a' if edge is None else f'{edge:.2f} px'}, background "
        f"{result['background']['level']:.3f} +- {result['background']['noise']:.3f}",
        fontsize=9,
    )


def structure_distances(real: Mapping[str, Any], simulated: Mapping[str, Any]) -> dict[str, Any]:
    """Per property: two-sample Kolmogorov-Smirnov statistic (0 = same distribution, 1 =
    disjoint) between real and simulated samples; density: simulated / real median; texture
    (where both measured it): per band and region the real and simulated robust SD and their
    ratio (1 = as real)."""
    out: dict[str, Any] = {}
    for name in PROPERTIES:
        a = real["properties"].get(name, {}).get("samples") or []
        b = simulated["properties"].get(name, {}).get("samples") or []
        out[name] = {"ks": float(stats.ks_2samp(a, b).statistic) if a and b else None,
                     "real_median": float(np.median(a)) if a else None,
                     "simulated_median": float(np.median(b)) if b else None}
    r, s = real["density"].get("median"), simulated["density"].get("median")
    out["density_ratio"] = float(s / r) if r and s is not None else None
    if real.get("texture") and simulated.get("texture"):
        out["texture"] = {
            f"{band}_{region}": {"real": a, "simulated": b,
                                 "ratio": float(b / a) if a and b is not None else None}
            for band in BANDS for region in REGIONS
            for a, b in [(real["texture"][band][region], simulated["texture"][band][region])]
        }
    return out


def structure_figure(
    real: Mapping[str, Any], simulated: Mapping[str, Any], distances: Mapping[str, Any]
) -> Figure:
    """Real (calibration) vs simulated distributions of each property, KS distance in titles."""
    plt = pyplot()
    props = [p for p in PROPERTIES if p in real["properties"]]
    fig, axes = plt.subplots(1, len(props), figsize=(3.2 * len(props), 3.2), squeeze=False)
    for ax, name in zip(axes[0], props):
        a = real["properties"][name]["samples"]
        b = simulated["properties"].get(name, {}).get("samples") or []
        data = [x for x in (a, b) if x]
        if data:
            bins = np.histogram_bin_edges(np.concatenate(data), bins=30)
            for values, label, colour in ((a, "real", "tab:green"), (b, "synthetic", "tab:blue")):
                if values:
                    ax.hist(values, bins=bins, density=True, alpha=0.5, label=label, color=colour)
        ks = distances[name]["ks"]
        ax.set_title(f"{_TITLES[name]}\nKS {'n/a' if ks is None else f'{ks:.2f}'}", fontsize=8)
    axes[0, 0].legend(fontsize=7)
    ratio = distances.get("density_ratio")
    fig.suptitle("structure of the synthetic images vs the real train split (same measurement); "
                 f"density ratio {'n/a' if ratio is None else f'{ratio:.2f}'}", fontsize=9)
    fig.tight_layout()
    return fig
