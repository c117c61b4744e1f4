"""Stored arrays of a simulation -> spatial image/label pairs (units) the evaluation scores.

Stored layouts (the contract): labels ``(C, *S)`` / sketches and images ``(C', *S)`` with
``S = (Y, X)`` or ``(Z, Y, X)``; time series add a leading T and every frame is a unit of its
own. What each label channel holds and how its instances are found in the image come from the
kind's spec (:mod:`workflow_lib.simulate.kinds`): label channel ``c`` is compared with image
channel ``c`` (channel 0 when the image has one); layered kinds (overlap layers of one image
channel) are compared with their flattened labels, since one image channel cannot separate
the layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from workflow_lib.simulate import Kind


@dataclass(frozen=True)
class Unit:
    """One spatial image with its instance labels, and how to segment it classically."""

    image: np.ndarray   # (Y, X) or (Z, Y, X)
    labels: np.ndarray  # same shape, integer instances
    method: str         # simulate.BLOBS or simulate.CELLS
    channel: int        # label channel it came from (0 after flattening)


def frames(array: np.ndarray, kind: Kind) -> list[np.ndarray]:
    """Split a stored array into ``(C, *S)`` frames: T of them for time series, else one."""
    return list(array) if kind.time else [array]


def flatten_layers(labels: np.ndarray) -> np.ndarray:
    """Overlap layers ``(L, *S)`` -> ``(*S)``; where layers overlap the last non-zero id wins."""
    flat = np.zeros(labels.shape[1:], labels.dtype)
    for layer in labels:
        flat = np.where(layer > 0, layer, flat)
    return flat


def units(kind: Kind, labels: np.ndarray, image: np.ndarray) -> list[Unit]:
    """All units of one sample for annotation fidelity."""
    out = []
    for lab, img in zip(frames(labels, kind), frames(image, kind)):
        if kind.layered:
            out.append(Unit(img[0], flatten_layers(lab), kind.eval_methods[0], 0))
            continue
        for c, method in enumerate(kind.eval_methods):
            out.append(Unit(img[min(c, len(img) - 1)], lab[c], method, c))
    return out


def downstream_units(kind: Kind, labels: np.ndarray, image: np.ndarray) -> list[Unit]:
    """Units the downstream segmenter trains on: the kind's downstream label channel."""
    return [u for u in units(kind, labels, image) if u.channel == kind.downstream_channel]
