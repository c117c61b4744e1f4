"""Robust statistics of the calibration and the completeness metric: a median and a spread
that a minority of object pixels in the sample does not move."""

from __future__ import annotations

import numpy as np

#: 1.4826 x the median absolute deviation estimates a normal distribution's SD.
MAD_TO_SD = 1.4826


def robust_stats(values: np.ndarray) -> tuple[float, float]:
    """(median, robust SD = 1.4826 x median absolute deviation) of ``values``."""
    median = float(np.median(values))
    return median, MAD_TO_SD * float(np.median(np.abs(values - median)))
