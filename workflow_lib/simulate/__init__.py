"""Structure simulation: instance label images of cells, exact by construction.

``simulate(kind, shape, params, rng)`` dispatches to one module per kind and returns a
:class:`Simulation`. Layouts (uint16, ids 1..N without gaps, each instance one connected
component):

- nuclei, membranes, masks: ``(1, *shape)``
- multichannel: ``(2, *shape)``, channel 0 cells, channel 1 nuclei, same ids
- overlapping: ``(layers, *shape)``, see :mod:`.overlapping`
- timeseries: ``(T, 1, *shape)`` plus CTC tracks, see :mod:`.timeseries`

``shape`` is ``(Y, X)`` or ``(Z, Y, X)``. Every random draw comes from ``rng``; the workflow
seeds it with ``np.random.SeedSequence([seed, i])`` for sample ``i`` (see :func:`sample_rng`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow_lib.errors import ConfigError
from workflow_lib.simulate import masks, membranes, multichannel, nuclei, overlapping, timeseries
from workflow_lib.simulate.masks import fit_mask
from workflow_lib.simulate.membranes import simulate_membranes
from workflow_lib.simulate.multichannel import simulate_multichannel
from workflow_lib.simulate.nuclei import simulate_nuclei
from workflow_lib.simulate.overlapping import simulate_overlapping
from workflow_lib.simulate.params import Params
from workflow_lib.simulate.timeseries import simulate_timeseries

KINDS = ("nuclei", "membranes", "multichannel", "overlapping", "timeseries", "masks")
# Every parameter key each kind knows (docs/simulation.md describes them).
PARAM_KEYS = {
    "nuclei": nuclei.KEYS,
    "membranes": membranes.KEYS,
    "multichannel": multichannel.KEYS,
    "overlapping": overlapping.KEYS,
    "timeseries": timeseries.KEYS,
    "masks": masks.KEYS,
}


@dataclass(frozen=True)
class Simulation:
    """labels: uint16 (C, *shape) or (T, C, *shape); tracks: (N, 4) ``L B E P`` or None."""

    kind: str
    labels: np.ndarray
    tracks: np.ndarray | None = None

    @property
    def time(self) -> bool:
        return self.tracks is not None

    @property
    def count(self) -> int:
        return int(self.labels.max())


def sample_rng(seed: int, i: int, stream: int = 0) -> np.random.Generator:
    """Generator for sample ``i`` of a simulation seeded ``seed`` (stream 1: its sketch)."""
    return np.random.default_rng(np.random.SeedSequence([seed, i, stream]))


def simulate(
    kind: str,
    shape: Sequence[int],
    params: Mapping[str, Any] | None,
    rng: np.random.Generator,
    prefix: str = "params",
    mask: np.ndarray | None = None,
) -> Simulation:
    """Simulate one sample of ``kind`` (see module doc). ``mask``: the label array for ``masks``.

    Bad ``params`` raise :class:`ConfigError` naming ``<prefix>.<key>``.
    """
    shape = tuple(int(s) for s in shape)
    key_shape = prefix.rsplit(".", 1)[0] + ".shape" if "." in prefix else "shape"
    if len(shape) not in (2, 3):
        raise ConfigError(key_shape, f"must have 2 or 3 axes, got {list(shape)}")
    if min(shape) < 1:
        raise ConfigError(key_shape, f"sizes must be positive, got {list(shape)}")
    if kind not in KINDS:
        raise ConfigError(
            prefix.rsplit(".", 1)[0] + ".kind" if "." in prefix else "kind",
            f"unknown kind {kind!r}; one of {', '.join(KINDS)}",
        )
    p = Params(params, prefix, allowed=PARAM_KEYS[kind])
    if kind == "nuclei":
        return Simulation(kind, simulate_nuclei(shape, p, rng))
    if kind == "membranes":
        return Simulation(kind, simulate_membranes(shape, p, rng))
    if kind == "multichannel":
        return Simulation(kind, simulate_multichannel(shape, p, rng))
    if kind == "overlapping":
        return Simulation(kind, simulate_overlapping(shape, p, rng))
    if kind == "timeseries":
        labels, tracks = simulate_timeseries(shape, p, rng)
        return Simulation(kind, labels, tracks)
    if mask is None:
        raise ConfigError(prefix + ".masks", "kind 'masks' needs a mask image")
    return Simulation(kind, fit_mask(mask, shape, p, rng))


def track_text(tracks: np.ndarray) -> str:
    """Cell Tracking Challenge ``res_track.txt`` content: one ``L B E P`` line per track."""
    return "".join(f"{L} {B} {E} {P}\n" for L, B, E, P in np.asarray(tracks, int))


__all__ = ["KINDS", "PARAM_KEYS", "Simulation", "simulate", "sample_rng", "track_text"]
