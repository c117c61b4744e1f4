"""Structure simulation: instance label images of cells, exact by construction.

Two steps: ``read_params(kind, params, ndim)`` validates a simulation's ``params`` into the
kind's frozen settings (no random numbers, no image shape), then
``simulate(kind, shape, settings, rng)`` draws one sample and returns a :class:`Simulation`.
Kinds are described by :mod:`.kinds`. Layouts (uint16, ids 1..N without gaps, each instance one
connected component):

- nuclei, membranes, masks: ``(1, *shape)``
- multichannel: ``(2, *shape)``, channel 0 cells, channel 1 nuclei, same ids
- overlapping: ``(layers, *shape)``, see :mod:`.overlapping`
- timeseries: ``(T, 1, *shape)`` plus CTC tracks, see :mod:`.timeseries`

``shape`` is ``(Y, X)`` or ``(Z, Y, X)``. Every random draw comes from ``rng``; the workflow
seeds it with ``np.random.SeedSequence([seed, i])`` for sample ``i`` (see :func:`sample_rng`).
Bad values raise :class:`~workflow_lib.errors.ParamError` naming the key within ``params``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from workflow_lib.errors import ParamError
from workflow_lib.simulate.kinds import (
    BLOBS, CELLS, KINDS, MEMBRANE_STAIN, NUCLEUS_STAIN, Kind, Simulation,
)
from workflow_lib.simulate.kinds import get as get_kind
from workflow_lib.simulate.params import Params


def read_params(kind: str, params: Mapping[str, Any] | None, ndim: int) -> Any:
    """The frozen settings of ``kind`` from its ``params`` for ``ndim`` (2 or 3) spatial axes.

    Every key is validated here; unknown keys and keys unused with the other settings are
    refused. ValueError for an unknown kind.
    """
    k = get_kind(kind)
    return k.read(Params(params, allowed=k.keys), ndim)


def simulate(
    kind: str,
    shape: Sequence[int],
    settings: Any,
    rng: np.random.Generator,
    mask: np.ndarray | None = None,
) -> Simulation:
    """Simulate one sample of ``kind`` in an image of ``shape`` (see module doc).

    ``settings``: from :func:`read_params` with ``ndim == len(shape)``; ``mask``: the spatial
    label array a ``needs_mask`` kind is made from. Raises :class:`ParamError` when the shape
    is unusable or the settings cannot be met in it (e.g. too many cells).
    """
    k = get_kind(kind)
    shape = tuple(int(s) for s in shape)
    if len(shape) not in (2, 3):
        raise ParamError("shape", f"must have 2 or 3 axes, got {list(shape)}")
    if min(shape) < 1:
        raise ParamError("shape", f"sizes must be positive, got {list(shape)}")
    if k.needs_mask and mask is None:
        raise ParamError("masks", f"kind '{k.name}' needs a mask image")
    return k.simulate(shape, settings, rng, mask)


def sample_rng(seed: int, i: int, stream: int = 0) -> np.random.Generator:
    """Generator for sample ``i`` of a simulation seeded ``seed`` (stream 1: its sketch); also
    synthesis' texture noise, from the synthesis seed."""
    return np.random.default_rng(np.random.SeedSequence([seed, i, stream]))


def track_text(tracks: np.ndarray) -> str:
    """Cell Tracking Challenge ``res_track.txt`` content: one ``L B E P`` line per track."""
    return "".join(f"{L} {B} {E} {P}\n" for L, B, E, P in np.asarray(tracks, int))


__all__ = [
    "BLOBS", "CELLS", "KINDS", "MEMBRANE_STAIN", "NUCLEUS_STAIN", "Kind", "Simulation",
    "get_kind", "read_params", "simulate", "sample_rng", "track_text",
]
