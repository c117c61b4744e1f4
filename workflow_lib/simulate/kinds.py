"""The registry of simulation kinds: what each takes, makes, and how later stages treat it.

This is the only place that knows kinds by name; the sketch and the evaluation read a kind's
:class:`Kind` spec instead of comparing names.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from workflow_lib.simulate import masks, membranes, multichannel, nuclei, overlapping, timeseries
from workflow_lib.simulate.params import Params

# How the evaluation finds a label channel's instances in an image.
BLOBS, CELLS = "blobs", "cells"
# What a label channel's instances look like in a real image of their stain (Kind.stains), and
# what a data set's calibration measures (calibration.stain).
NUCLEUS_STAIN, MEMBRANE_STAIN = "nuclei", "membranes"
#: The sketch profile (mode 'auto') of a label channel showing each stain.
SKETCH_MODES = {NUCLEUS_STAIN: "centre", MEMBRANE_STAIN: "boundary"}


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


@dataclass(frozen=True)
class Kind:
    """One kind of simulation. The per-label-channel tuples have one entry per label channel
    (layered kinds: one entry for all layers)."""

    name: str
    keys: tuple[str, ...]                  # every params key the kind takes
    read: Callable[[Params, int], Any]     # (params, spatial ndim) -> frozen settings
    # (shape, settings, rng, mask or None) -> Simulation
    simulate: Callable[[tuple[int, ...], Any, np.random.Generator, np.ndarray | None], Simulation]
    time: bool = False                     # labels (T, C, *S) plus CTC tracks
    needs_mask: bool = False               # samples are made from a user label image
    layered: bool = False                  # label channels are overlap layers of ONE image channel
    label_channels: tuple[str, ...] = ("nuclei",)   # what each label channel holds
    eval_methods: tuple[str, ...] = (BLOBS,)        # BLOBS or CELLS
    downstream_channel: int = 0            # label channel the downstream segmenter learns from
    # What each label channel's instances look like in a real image of its stain: "nuclei"
    # (compact blobs) or "membranes" (cells seen by their boundaries). A calibration of a stain
    # (calibration.stain) parameterises the label channels that show it.
    stains: tuple[str, ...] = (NUCLEUS_STAIN,)
    notes: tuple[str, ...] = ()            # evaluation notes shown with the scores

    @property
    def sketch_modes(self) -> tuple[str, ...]:
        """Sketch profile of mode 'auto' per label channel: that of the stain it shows."""
        return tuple(SKETCH_MODES[stain] for stain in self.stains)


def _labels_only(name: str, simulate: Callable[..., np.ndarray]) -> Callable[..., Simulation]:
    """Kind.simulate of a kind whose module returns its labels only."""
    return lambda shape, settings, rng, mask: Simulation(name, simulate(shape, settings, rng))


def _timeseries(shape, settings, rng, mask) -> Simulation:
    return Simulation("timeseries", *timeseries.simulate_timeseries(shape, settings, rng))


def _masks(shape, settings, rng, mask) -> Simulation:
    return Simulation("masks", masks.fit_mask(mask, shape, settings, rng))


KINDS: dict[str, Kind] = {k.name: k for k in (
    Kind("nuclei", nuclei.KEYS, nuclei.read_settings,
         _labels_only("nuclei", nuclei.simulate_nuclei)),
    Kind("membranes", membranes.KEYS, membranes.read_settings,
         _labels_only("membranes", membranes.simulate_membranes),
         label_channels=("cells",), eval_methods=(CELLS,),
         stains=(MEMBRANE_STAIN,),
         notes=("membranes: the downstream segmenter learns whole cells; its scores mean "
                "something only where the real masks annotate cells too",)),
    Kind("multichannel", multichannel.KEYS, multichannel.read_settings,
         _labels_only("multichannel", multichannel.simulate_multichannel),
         label_channels=("cells", "nuclei"), eval_methods=(CELLS, BLOBS), downstream_channel=1,
         stains=(MEMBRANE_STAIN, NUCLEUS_STAIN),
         notes=("multichannel: fidelity per label channel; realism and downstream on "
                "the nucleus channel (1)",)),
    Kind("overlapping", overlapping.KEYS, overlapping.read_settings,
         _labels_only("overlapping", overlapping.simulate_overlapping),
         layered=True, label_channels=("cells (one per overlap layer)",),
         notes=("overlapping: fidelity and downstream use the flattened labels "
                "(a later overlap layer covers an earlier one)",)),
    Kind("timeseries", timeseries.KEYS, timeseries.read_settings, _timeseries, time=True,
         notes=("timeseries: every frame is evaluated as one image",)),
    Kind("masks", masks.KEYS, masks.read_settings, _masks, needs_mask=True,
         label_channels=("instances of the mask image",)),
)}


def get(name: str) -> Kind:
    """The kind called ``name``; ValueError for an unknown name."""
    if name not in KINDS:
        raise ValueError(f"unknown kind {name!r}; one of {', '.join(KINDS)}")
    return KINDS[name]
