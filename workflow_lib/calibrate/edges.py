"""The edge trial: which sketch edge shift keeps the edges the model draws near the masks.

A calibrated sketch has the real images' measured blur and profile, yet the diffusion model
draws each object's edge a data-set-dependent distance from its sketch's edge (on the demo 0.1-0.3
px further out, on small dense nuclei 0.6-0.7 px: docs/diffusion.md). So after training, one
calibrated nuclei image is synthesised from its sketch and its synthetic edge offset
(``boundary_offset_px`` of the completeness measurement) is read off. Within ``tolerance`` of
the masks nothing changes. Otherwise a second image is synthesised with the sketch's edges moved
``TRIAL_STEP_PX`` toward the masks (:func:`workflow_lib.sketch.render.shift_edges`), and the
shift that brings the offset to the tolerance's edge is interpolated; every calibrated sketch of
the data set then uses it. Moving edges no further than that leaves realism where it was: on
the demo, shifting them all the way to 0 raised every simulation's KID by about a fifth.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Pixels the second trial moves the sketch's edges toward the masks.
TRIAL_STEP_PX = 1.0
#: Largest shift applied (pixels): beyond it the sketch's objects would lose their shape.
MAX_SHIFT_PX = 2.0
#: Least synthetic edge movement per pixel of sketch shift for the trial to be trusted.
MIN_SLOPE = 0.1


def target_offset(offset: float, tolerance: float) -> float | None:
    """The offset to aim for: None (no shift) within ``tolerance`` of the masks, else the
    tolerance's edge on the offset's side."""
    if abs(offset) <= tolerance:
        return None
    return tolerance if offset > 0 else -tolerance


def second_shift(offset: float) -> float:
    """The shift of the second trial: ``TRIAL_STEP_PX`` against the first trial's offset."""
    return -TRIAL_STEP_PX if offset > 0 else TRIAL_STEP_PX


def solve_shift(
    shifts: Sequence[float], offsets: Sequence[float | None], target: float
) -> tuple[float, float, str | None]:
    """(shift, slope, reason) from two trials: the shift whose interpolated offset is
    ``target``, clipped to +-``MAX_SHIFT_PX``; 0 with a reason when an offset could not be
    measured (None) or the synthetic edge did not follow the sketch's (slope < ``MIN_SLOPE``)."""
    (s0, s1), (o0, o1) = shifts, offsets
    if o0 is None or o1 is None:
        return 0.0, float("nan"), "no object edge could be measured in a trial image"
    slope = (o1 - o0) / (s1 - s0)
    if slope < MIN_SLOPE:
        return 0.0, slope, (f"the synthetic edges moved {slope:.2f} px per pixel of sketch shift "
                            f"(< {MIN_SLOPE}): left unshifted")
    shift = s0 + (target - o0) / slope
    return float(min(max(shift, -MAX_SHIFT_PX), MAX_SHIFT_PX)), slope, None
