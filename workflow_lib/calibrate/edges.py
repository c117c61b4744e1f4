"""The edge trial: which sketch edge shift keeps the edges the model draws near the masks.

A calibrated sketch has the real images' measured blur and profile, yet the diffusion model
draws each object's edge a data-set-dependent distance from its sketch's edge (on the demo
0.1-0.2 px further out, on small dense nuclei 0.6-0.7 px: docs/diffusion.md). So after
training, one calibrated nuclei image is synthesised from its sketch and its synthetic edge
offset (``boundary_offset_px`` of the completeness measurement) is read off. Within
``tolerance`` of the masks nothing changes. Otherwise a second image is synthesised with the
sketch's edges moved ``TRIAL_STEP_PX`` toward the masks
(:func:`workflow_lib.sketch.render.shift_edges`), and the shift that brings the offset to the
tolerance's edge is found by false position (up to ``REFINEMENTS`` more syntheses); every
calibrated sketch of the data set then uses it. Moving edges no further than that leaves
realism where it was: on the demo, shifting them all the way to 0 raised every simulation's KID
by about a fifth.
"""

from __future__ import annotations

from collections.abc import Sequence

#: Pixels the second trial moves the sketch's edges toward the masks.
TRIAL_STEP_PX = 1.0
#: Largest shift applied (pixels): beyond it the sketch's objects would lose their shape.
MAX_SHIFT_PX = 2.0
#: Least synthetic edge movement per pixel of sketch shift for the trial to be trusted.
MIN_SLOPE = 0.1
#: Syntheses after the first two: the edge does not follow the shift linearly (small objects).
REFINEMENTS = 2
#: An offset this near the target (pixels) ends the refinement.
CLOSE_PX = 0.05


def target_offset(offset: float, tolerance: float) -> float | None:
    """The offset to aim for: None (no shift) within ``tolerance`` of the masks, else the
    tolerance's edge on the offset's side."""
    if abs(offset) <= tolerance:
        return None
    return tolerance if offset > 0 else -tolerance


def second_shift(offset: float) -> float:
    """The shift of the second trial: ``TRIAL_STEP_PX`` against the first trial's offset."""
    return -TRIAL_STEP_PX if offset > 0 else TRIAL_STEP_PX


def next_shift(
    trials: Sequence[tuple[float, float | None]], target: float
) -> tuple[float | None, float, str | None]:
    """(next shift to try, slope, reason) from the trials so far, (shift, offset) pairs: false
    position between the trials nearest ``target`` on either side of it, else a secant step
    from the last two; clipped to +-``MAX_SHIFT_PX``. None with a reason when an offset could
    not be measured or the synthetic edge did not follow the sketch's (slope < ``MIN_SLOPE``)."""
    if any(o is None for _, o in trials):
        return None, float("nan"), "no object edge could be measured in a trial image"
    above = [t for t in trials if t[1] > target]
    below = [t for t in trials if t[1] <= target]
    if above and below:
        a = min(above, key=lambda t: t[1] - target)
        b = min(below, key=lambda t: target - t[1])
    else:
        a, b = trials[-2], trials[-1]
    slope = (b[1] - a[1]) / (b[0] - a[0])
    if slope < MIN_SLOPE:
        return None, slope, (f"the synthetic edges moved {slope:.2f} px per pixel of sketch shift "
                             f"(< {MIN_SLOPE}): left unshifted")
    shift = a[0] + (target - a[1]) / slope
    return float(min(max(shift, -MAX_SHIFT_PX), MAX_SHIFT_PX)), slope, None


def best_trial(trials: Sequence[tuple[float, float | None]], target: float) -> tuple[float, float]:
    """The (shift, offset) trial whose offset is nearest ``target`` (unmeasured ones skipped)."""
    return min((t for t in trials if t[1] is not None), key=lambda t: abs(t[1] - target))
