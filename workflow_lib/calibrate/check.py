"""How far the unsupervised measurement is from the user's masks, on the images that have both.

Where ``calibration.masks`` are given they replace the unsupervised segmentation of their
images, and the unsupervised one measures the rest. How much to trust that rest is measured
here: the same images, once with their masks and once without, compared property by property.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from workflow_lib.calibrate.figures import structure_distances

#: Targets of a calibration that holds (issue "3D and membranes, proven"): the unsupervised
#: density within 10 % and median radius within 5 % of the masks'.
DENSITY_TOLERANCE = 0.10
RADIUS_TOLERANCE = 0.05


def unsupervised_vs_masks(
    measure: Callable[..., dict],
    images: Sequence[np.ndarray],
    masks: Sequence[np.ndarray | None],
    settings: Any,
    names: Sequence[str],
) -> dict[str, Any] | None:
    """The unsupervised measurement beside the mask-based one on the images with a mask.

    ``measure(images, masks, settings)`` is the stain's measurement
    (:data:`workflow_lib.calibrate.MEASUREMENTS`). Returns None when no image has a mask,
    else ``{"images", "objects", "density", "radius", "ks", "holds"}``: the images compared,
    the objects each way, the median density and radius each way with their ratio
    (unsupervised / masks), the KS distance of every per-object property (0: the same
    distribution) and whether density and radius are within :data:`DENSITY_TOLERANCE` and
    :data:`RADIUS_TOLERANCE`.
    """
    both = [k for k, m in enumerate(masks) if m is not None]
    if not both:
        return None
    chosen = [images[k] for k in both]
    with_masks = measure(chosen, [masks[k] for k in both], settings)
    without = measure(chosen, [None] * len(chosen), settings)
    distances = structure_distances(with_masks, without)
    radius = [r["properties"]["radius"]["summary"] or {} for r in (with_masks, without)]
    radius_m, radius_u = (r.get("median") for r in radius)
    density_m, density_u = with_masks["density"].get("median"), without["density"].get("median")
    ratio_density = distances.get("density_ratio")
    ratio_radius = radius_u / radius_m if radius_m and radius_u is not None else None
    return {
        "images": [names[k] for k in both],
        "objects": {"masks": with_masks["objects"], "unsupervised": without["objects"]},
        "density": {"masks": density_m, "unsupervised": density_u, "ratio": ratio_density},
        "radius": {"masks": radius_m, "unsupervised": radius_u, "ratio": ratio_radius},
        "ks": {name: value["ks"] for name, value in distances.items()
               if isinstance(value, dict) and "ks" in value},
        "holds": {
            "density": ratio_density is not None and abs(ratio_density - 1) <= DENSITY_TOLERANCE,
            "radius": ratio_radius is not None and abs(ratio_radius - 1) <= RADIUS_TOLERANCE,
        },
    }
