"""Kind ``timeseries``: nuclei that move, grow and divide over ``frames`` time points.

Per frame every living nucleus takes a Gaussian random step (std ``speed`` pixels), grows by
the factor ``1 + growth`` and, once at least the mean starting ``radius``, divides with
probability ``division``; a division ends the mother and starts two daughters in the next
frame, half the mother's volume each, placed along a random axis. Overlapping neighbours are pushed apart before each frame is drawn, and
older cells are drawn first. A nucleus whose centre leaves the image ends there.

Tracks follow the Cell Tracking Challenge ``res_track.txt``: one row ``L B E P`` per id (label,
first frame, last frame, parent id or 0). Guarantees: id L is present in exactly the frames
B..E; a daughter starts at frame E(parent) + 1; ids are 1..N over the whole series. A nucleus
squeezed out of a frame ends in the frame before (its daughters then count as parentless).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from scipy.spatial import cKDTree

from workflow_lib.simulate.labels import largest_components
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.placement import PLACEMENT_KEYS, PlacementSettings, place, read_placement
from workflow_lib.simulate.shapes import (
    SHAPE_KEYS, Shape, ShapeParams, make_shapes, paint, read_shape_params,
)

KEYS = SHAPE_KEYS + PLACEMENT_KEYS + ("frames", "speed", "growth", "division")


@dataclass(frozen=True)
class TimeseriesSettings:
    shapes: ShapeParams             # how each nucleus looks (daughters too)
    placement: PlacementSettings    # of the first frame's nuclei
    frames: int                     # number of frames T
    speed: float                    # std of a step per frame and axis (physical pixels)
    growth: float                   # relative radius growth per frame
    division: float                 # division probability per grown nucleus and frame


def read_settings(p: Params, ndim: int) -> TimeseriesSettings:
    """Every key of the kind for ``ndim`` spatial axes; refuses the keys left unused."""
    shapes = read_shape_params(p, ndim, radius=(8.0, 12.0))
    frames = p.number("frames", 5, 1, 1000, integer=True)
    speed = p.number("speed", 2.0, 0.0)
    growth = p.number("growth", 0.05, 0.0, 1.0)
    division = p.number("division", 0.1, 0.0, 1.0)
    placement = read_placement(p, ndim, shapes.mean_radius, default_cells=(10, 15),
                               default_min_distance=2.2)
    p.finish()
    return TimeseriesSettings(shapes, placement, frames, speed, growth, division)


def _push_apart(centres: np.ndarray, radii: np.ndarray, spacing: np.ndarray, rounds: int = 5) -> np.ndarray:
    """Move centres so pairs closer than 0.9 * (r_i + r_j) (physical) separate; vectorised."""
    pos = centres * spacing
    if len(pos) < 2:
        return centres
    for _ in range(rounds):
        pairs = cKDTree(pos).query_pairs(1.8 * radii.max(), output_type="ndarray")
        if not len(pairs):
            break
        i, j = pairs.T
        delta = pos[j] - pos[i]
        dist = np.linalg.norm(delta, axis=1)
        overlap = 0.9 * (radii[i] + radii[j]) - dist
        hit = overlap > 0
        if not hit.any():
            break
        i, j, delta, dist, overlap = i[hit], j[hit], delta[hit], dist[hit], overlap[hit]
        direction = delta / np.maximum(dist, 1e-6)[:, None]
        step = 0.5 * overlap[:, None] * direction
        move = np.zeros_like(pos)
        np.add.at(move, i, -step)
        np.add.at(move, j, step)
        pos = pos + move
    return pos / spacing


def _consistent_tracks(frames: np.ndarray, tracks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Make ``frames`` (T, *shape) and ``tracks`` (n, 4: L B E P) agree; ids renumbered 1..N."""
    top = int(tracks[:, 0].max()) if len(tracks) else 0
    present = np.stack([np.bincount(f.ravel(), minlength=top + 1)[: top + 1] > 0 for f in frames])
    kept = []
    last = {}
    for L, B, E, P in tracks:
        run = present[B : E + 1, L]
        if not run[0]:
            frames[frames == L] = 0
            continue
        end = B + (int(np.argmin(run)) - 1 if not run.all() else E - B)
        frames[end + 1 :][frames[end + 1 :] == L] = 0
        last[L] = end
        kept.append([L, B, end, P])
    kept = np.array(kept, dtype=np.int64).reshape(-1, 4)
    kept[:, 3] = [P if P in last and last[P] == B - 1 else 0 for _, B, _, P in kept]
    lut = np.zeros(top + 1, np.int64)
    lut[kept[:, 0]] = np.arange(1, len(kept) + 1)
    kept[:, 0] = lut[kept[:, 0]]
    kept[:, 3] = lut[kept[:, 3]]
    return lut[frames].astype(np.uint16), kept


def simulate_timeseries(
    shape: tuple[int, ...], settings: TimeseriesSettings, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Labels (T, 1, *shape) uint16 and tracks (N, 4) int64 as described in the module doc."""
    ndim = len(shape)
    sp, frames_n = settings.shapes, settings.frames
    speed, growth, division = settings.speed, settings.growth, settings.division
    centres = place(shape, settings.placement, sp.spacing, rng)
    spacing = np.asarray(sp.spacing)
    hi = np.array(shape, float) - 1

    shapes: list[Shape] = make_shapes(rng, centres, sp)
    ids = list(range(1, len(shapes) + 1))
    tracks = [[i, 0, frames_n - 1, 0] for i in ids]   # end frames fixed when a cell ends
    next_id = len(ids) + 1
    frames = np.zeros((frames_n, *shape), np.int32)
    for t in range(frames_n):
        if shapes:
            radii = np.array([s.radius for s in shapes])
            moved = _push_apart(np.array([s.centre for s in shapes]), radii, spacing)
            shapes = [replace(s, centre=c) for s, c in zip(shapes, moved)]
        order = np.argsort(ids)
        frame = np.zeros(shape, np.int32)
        paint(frame, [shapes[k] for k in order], sp.spacing, min_visible=0.0)
        lut = np.zeros(len(order) + 1, np.int32)
        lut[1:] = np.array(ids)[order]
        frames[t] = largest_components(lut[frame])
        if t == frames_n - 1:
            break
        survivors, survivor_ids = [], []
        # Only nuclei grown to the mean starting size divide, so lineages do not shrink away.
        grown = np.array([s.radius >= sp.mean_radius for s in shapes], bool)
        divide = (rng.uniform(size=len(shapes)) < division) & grown
        for s, cid, div in zip(shapes, ids, divide):
            c = s.centre + rng.normal(0.0, speed, size=ndim) / spacing
            if np.any(c < 0) or np.any(c > hi):
                tracks[cid - 1][2] = t
                continue
            if not div:
                survivors.append(replace(s, centre=c, radius=s.radius * (1 + growth)))
                survivor_ids.append(cid)
                continue
            tracks[cid - 1][2] = t
            axis = rng.normal(size=ndim)
            axis /= np.linalg.norm(axis)
            r = s.radius * 2 ** (-1.0 / ndim)
            offsets = np.array([axis, -axis]) * (0.9 * r) / spacing
            for daughter in make_shapes(rng, c + offsets, sp, radii=np.array([r, r])):
                survivors.append(daughter)
                survivor_ids.append(next_id)
                tracks.append([next_id, t + 1, frames_n - 1, cid])
                next_id += 1
        shapes, ids = survivors, survivor_ids
    labels, track_table = _consistent_tracks(frames, np.array(tracks, np.int64).reshape(-1, 4))
    return labels[:, None], track_table
