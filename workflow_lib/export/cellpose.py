"""Cellpose training folder: ``{name}.tif`` beside ``{name}_masks.tif``, one flat folder.

Facts from cellpose (4.x, ``cellpose/io.py`` and ``cellpose/train.py``):

- ``io.get_image_files(folder, "_masks")`` takes every ``.tif`` whose stem does not end in
  ``_masks``, ``_flows``, ``_cellprob`` or ``_cp_output``; ``io.get_label_files`` pairs image
  ``X.tif`` with ``X_masks.tif`` (default ``--mask_filter _masks``). Sample names ``{sim}_{i}``
  and the suffixes below never end in those filters.
- ``train.train_seg`` trains on 2D images only: ``(Y, X)`` or ``(C, Y, X)`` (more than three
  dimensions is refused; the channel axis is the smallest one, at most 3 channels are used).
  Cellpose trains 3D models on 2D slices (its ``gui/make_train.py`` cuts volumes into slices),
  so a 3D sample is written as its Z slices ``{name}_z{z:03d}``, each with the 2D cut of the
  instances (ids kept). Time series frames are ``{name}_t{t:03d}`` (and ``..._z{z:03d}``).

Images: float32 as stored (cellpose normalises per image), ``(Y, X)`` for one channel, else
``(C, Y, X)`` with every image channel (multichannel: cells, nuclei). Masks: the instances of
:func:`workflow_lib.export.samples.instances`, uint16 (uint32 above 65535 ids).
"""

from __future__ import annotations

from pathlib import Path

from workflow_lib.export.samples import ExportSample
from workflow_lib.export.summary import Tally
from workflow_lib.export.tiff import write_image

MASK_SUFFIX = "_masks"


def write(samples: list[ExportSample], root: Path, tally: Tally) -> None:
    for sample in samples:
        tally.sample(sample)
        for name, image, labels in sample.frames():
            if sample.ndim == 2:
                _pair(sample, root, name, image, labels, sample.spacing, tally)
                continue
            width = max(3, len(str(labels.shape[0] - 1)))
            plane = sample.spacing[1:] if sample.spacing is not None else None
            for z in range(labels.shape[0]):
                _pair(sample, root, f"{name}_z{z:0{width}d}", image[:, z], labels[z], plane,
                      tally)


def _pair(sample, root, name, image, labels, spacing, tally) -> None:
    if len(image) == 1:
        write_image(tally.claim(root / f"{name}.tif"), image[0], "YX", spacing)
    else:
        write_image(tally.claim(root / f"{name}.tif"), image, "CYX", spacing)
    write_image(tally.claim(root / f"{name}{MASK_SUFFIX}.tif"), labels, "YX", spacing)
    tally.file(sample)
    tally.file(sample)
    tally.pair(sample)
