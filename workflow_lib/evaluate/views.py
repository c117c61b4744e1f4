"""How each simulation kind is evaluated: stored arrays -> spatial image/label pairs.

Stored layouts (the contract): labels ``(C, *S)`` / sketches and images ``(C', *S)`` with
``S = (Y, X)`` or ``(Z, Y, X)``; time series add a leading T. Per kind:

- nuclei, masks: channel 0, blob segmentation.
- membranes: channel 0, cells-from-boundaries segmentation.
- multichannel: label channel 0 = cells (membrane image), 1 = nuclei; each evaluated on its
  own image channel (channel 0 when the image has one); downstream uses the nuclei.
- overlapping: C = overlap layers; compared with the flattened labels (a later layer covers
  an earlier one where they overlap), since the single image channel cannot separate them.
- timeseries: every frame on its own, as one more image of the set.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOBS, CELLS = "blobs", "cells"
#: Kinds whose instances are cells seen by their boundaries.
_CELL_KINDS = {"membranes"}


@dataclass(frozen=True)
class Unit:
    """One spatial image with its instance labels, and how to segment it classically."""

    image: np.ndarray   # (Y, X) or (Z, Y, X)
    labels: np.ndarray  # same shape, integer instances
    method: str         # BLOBS or CELLS
    channel: int        # label channel it came from (0 after flattening)


def frames(array: np.ndarray, kind: str) -> list[np.ndarray]:
    """Split a stored array into ``(C, *S)`` frames: T of them for time series, else one."""
    return list(array) if kind == "timeseries" else [array]


def flatten_layers(labels: np.ndarray) -> np.ndarray:
    """Overlap layers ``(L, *S)`` -> ``(*S)``; where layers overlap the last non-zero id wins."""
    flat = np.zeros(labels.shape[1:], labels.dtype)
    for layer in labels:
        flat = np.where(layer > 0, layer, flat)
    return flat


def units(kind: str, labels: np.ndarray, image: np.ndarray) -> list[Unit]:
    """All units of one sample for annotation fidelity (see the module doc for kinds)."""
    out = []
    for lab, img in zip(frames(labels, kind), frames(image, kind)):
        if kind == "overlapping":
            out.append(Unit(img[0], flatten_layers(lab), BLOBS, 0))
        elif kind == "multichannel":
            for c, method in ((0, CELLS), (1, BLOBS)):
                out.append(Unit(img[min(c, len(img) - 1)], lab[c], method, c))
        else:
            out.append(Unit(img[0], lab[0], CELLS if kind in _CELL_KINDS else BLOBS, 0))
    return out


def downstream_units(kind: str, labels: np.ndarray, image: np.ndarray) -> list[Unit]:
    """Units for training the downstream segmenter: nuclei channel of multichannel samples."""
    all_units = units(kind, labels, image)
    if kind == "multichannel":
        return [u for u in all_units if u.channel == 1]
    return all_units
