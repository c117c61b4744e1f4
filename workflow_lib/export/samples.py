"""One synthetic sample to export, checked against the stored layout, and its per-frame views.

Stored layouts (the contract): labels uint16 ``(C, *S)``, or ``(T, C, *S)`` for time series,
``S = (Y, X)`` or ``(Z, Y, X)``; images float32 in [0, 1] of the same layout, except that
layered kinds have one image channel (and other kinds may have one image channel for all label
channels, as the evaluation accepts). Time series come with CTC tracks ``(N, 4)`` ``L B E P``.

What an instance format gets of a frame (:func:`instances`): the label channel a segmenter
learns, ``kind.downstream_channel``; for layered kinds the overlap layers flattened (the last
non-zero layer wins, :func:`workflow_lib.evaluate.views.flatten_layers`), since their one image
channel cannot separate the layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from workflow_lib.evaluate.views import flatten_layers
from workflow_lib.simulate import Kind

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.+-]*")


@dataclass(frozen=True)
class ExportSample:
    """One sample of a data set, in the stored layout.

    ``name``: unique over the export, ``{sim}_{i}`` (letters, digits, ``_ . + -``);
    ``spacing``: microns per spatial axis (``[Z,] Y, X``) or None (written without sizes).
    ValueError when the arrays do not fit the kind's layout.
    """

    name: str
    kind: Kind
    image: np.ndarray
    labels: np.ndarray
    tracks: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        where = f"sample {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.fullmatch(self.name):
            raise ValueError(f"{where}: a name is letters, digits and _ . + - "
                             "(not starting with a symbol)")
        labels, image = np.asarray(self.labels), np.asarray(self.image)
        lead = 2 if self.kind.time else 1
        if labels.ndim - lead not in (2, 3):
            raise ValueError(f"{where}: labels of shape {labels.shape} are not "
                             f"{'(T, C, *S)' if self.kind.time else '(C, *S)'} with 2 or 3 "
                             "spatial axes")
        if labels.dtype.kind not in "ui":
            raise ValueError(f"{where}: labels must be integers, got {labels.dtype}")
        if image.shape[:lead - 1] != labels.shape[:lead - 1] \
                or image.shape[lead:] != labels.shape[lead:] or image.ndim != labels.ndim:
            raise ValueError(f"{where}: image {image.shape} and labels {labels.shape} differ "
                             "in layout")
        channels = image.shape[lead - 1]
        allowed = (1,) if self.kind.layered else (1, labels.shape[lead - 1])
        if channels not in allowed:
            raise ValueError(f"{where}: {channels} image channels for {labels.shape[lead - 1]} "
                             f"label channels of kind '{self.kind.name}'")
        if not np.all(np.isfinite(image)):
            raise ValueError(f"{where}: image has NaN or infinite values")
        if self.kind.time:
            tracks = None if self.tracks is None else np.asarray(self.tracks)
            if tracks is None or tracks.ndim != 2 or tracks.shape[1] != 4:
                raise ValueError(f"{where}: a time series needs tracks (N, 4) 'L B E P'")
            object.__setattr__(self, "tracks", tracks.astype(np.int64))
        if self.spacing is not None:
            spacing = tuple(float(s) for s in self.spacing)
            if len(spacing) != self.ndim or not all(np.isfinite(s) and s > 0 for s in spacing):
                raise ValueError(f"{where}: spacing {self.spacing} is not {self.ndim} "
                                 "positive sizes ([Z,] Y, X)")
            object.__setattr__(self, "spacing", spacing)
        object.__setattr__(self, "labels", labels)
        object.__setattr__(self, "image", image.astype(np.float32, copy=False))

    @property
    def ndim(self) -> int:
        """Number of spatial axes: 2 or 3."""
        return self.labels.ndim - (2 if self.kind.time else 1)

    @property
    def channels(self) -> int:
        """Number of image channels."""
        return self.image.shape[1 if self.kind.time else 0]

    @property
    def frame_count(self) -> int:
        return self.labels.shape[0] if self.kind.time else 1

    def frames(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """``(name, image (C, *S), instances (*S))`` per frame: the sample's own name, or
        ``{name}_t{t:03d}`` for the frames of a time series."""
        if not self.kind.time:
            return [(self.name, self.image, instances(self.labels, self.kind))]
        width = max(3, len(str(self.frame_count - 1)))
        return [(f"{self.name}_t{t:0{width}d}", img, instances(lab, self.kind))
                for t, (img, lab) in enumerate(zip(self.image, self.labels))]

    def segmentation_channel(self, image: np.ndarray) -> np.ndarray:
        """The image channel (``*S``) of a frame ``(C, *S)`` that shows :func:`instances`."""
        return image[min(self.kind.downstream_channel, len(image) - 1)]


def instances(labels: np.ndarray, kind: Kind) -> np.ndarray:
    """The instance array (``*S``) a segmenter learns from one frame's labels ``(C, *S)``:
    flattened layers for layered kinds, else the kind's downstream channel; uint16, or uint32
    when ids exceed 65535."""
    lab = flatten_layers(labels) if kind.layered else labels[kind.downstream_channel]
    return lab.astype(mask_dtype(lab), copy=False)


def mask_dtype(labels: np.ndarray) -> np.dtype:
    """uint16 unless the largest id needs uint32."""
    top = int(labels.max()) if labels.size else 0
    if top > np.iinfo(np.uint32).max or (labels.size and int(labels.min()) < 0):
        raise ValueError(f"instance ids must be in 0..{np.iinfo(np.uint32).max}")
    return np.dtype(np.uint16 if top <= np.iinfo(np.uint16).max else np.uint32)
