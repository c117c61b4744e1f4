"""nnU-Net v2 raw data set: ``imagesTr/``, ``labelsTr/``, ``dataset.json``, read by Tiff3DIO.

Write it as ``$nnUNet_raw/Dataset{ID:03d}_{Name}`` (nnU-Net's folder naming); then
``nnUNetv2_plan_and_preprocess -d ID --verify_dataset_integrity`` takes it as it is.

Facts from nnU-Net v2 (``documentation/dataset_format.md``, ``nnunetv2/imageio/
tif_reader_writer.py``, ``reader_writer_registry.py``, ``experiment_planning/
verify_dataset_integrity.py`` and ``experiment_planners/default_experiment_planner.py``):

- One file per input channel, ``imagesTr/{case}_{c:04d}.tif``; the segmentation
  ``labelsTr/{case}.tif``; ``dataset.json`` needs ``channel_names``, ``labels`` (name -> class,
  background 0, consecutive), ``numTraining`` and ``file_ending``.
- ``Tiff3DIO`` reads only 3D TIFFs (``tifffile.imread`` must give exactly 3 axes) and takes
  the spacing from a sidecar ``{case}.json`` ``{"spacing": [z, y, x]}`` beside the images (the
  channel suffix omitted) and beside the label file; without it, (1, 1, 1). The integrity check
  compares image and label spacing.
- ``.tif`` is also claimed by NaturalImage2DIO (listed first, 2D only), so ``dataset.json``
  pins ``"overwrite_image_reader_writer": "Tiff3DIO"``.
- 2D: NaturalImage2DIO gives 2D images the shape (1, Y, X) and spacing (999, 1, 1); the
  planner plans no 3D configuration when the first axis of the median shape is 1. So 2D
  cases are written as (1, Y, X) TIFFs with spacing ``[999, y, x]`` through Tiff3DIO:
  nnU-Net sees exactly what its 2D reader would give (and plans ``2d`` only), and 2D and 3D
  exports share one reader. (Shaped TIFFs, not ImageJ ones: ImageJ drops the axis of size 1.)

Segmentations are semantic, as nnU-Net trains: 0 background, 1 interior, 2 boundary, where
boundary = instance pixels (of :func:`workflow_lib.export.samples.instances`) with a face
neighbour (4-neighbourhood in 2D, 6 in 3D) of another id or background, or on the image border
(:func:`workflow_lib.sketch.targets.boundary`, computed on the 2D or 3D frame itself);
interior = the other instance pixels. uint8. Images: float32 as stored, every image channel.
Time series frames are cases ``{name}_t{t:03d}``. All cases must share the number of image
channels and of spatial axes (one nnU-Net data set); otherwise ValueError.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from workflow_lib.export.samples import ExportSample
from workflow_lib.export.summary import Tally
from workflow_lib.export.tiff import write_image
from workflow_lib.io import atomic_write_text
from workflow_lib.sketch.targets import boundary

IMAGES, LABELS = "imagesTr", "labelsTr"
FILE_ENDING = ".tif"
READER = "Tiff3DIO"
CLASSES = {"background": 0, "interior": 1, "boundary": 2}
SPACING_2D = 999.0  # nnU-Net's out-of-plane spacing of 2D images (NaturalImage2DIO)


def write(samples: list[ExportSample], root: Path, tally: Tally) -> None:
    layouts = {(s.ndim, s.channels) for s in samples}
    if len(layouts) > 1:
        found = ", ".join(f"{n}D with {c} channel(s)" for n, c in sorted(layouts))
        raise ValueError(f"nnunet export: one nnU-Net data set needs one layout; the samples "
                         f"are {found}")
    cases = 0
    for sample in samples:
        tally.sample(sample)
        spacing = nnunet_spacing(sample)
        sidecar = json.dumps({"spacing": spacing}) + "\n"
        for case, image, labels in sample.frames():
            for c, channel in enumerate(image):
                path = tally.claim(root / IMAGES / f"{case}_{c:04d}{FILE_ENDING}")
                write_image(path, _as_3d(channel), "ZYX", imagej=False)
                tally.file(sample)
            write_image(tally.claim(root / LABELS / f"{case}{FILE_ENDING}"),
                        _as_3d(semantic(labels)), "ZYX", imagej=False)
            for folder in (IMAGES, LABELS):
                atomic_write_text(tally.claim(root / folder / f"{case}.json"), sidecar)
            tally.file(sample)
            tally.file(sample)
            tally.file(sample)
            tally.pair(sample)
            cases += 1
    dataset = {
        "channel_names": channel_names(samples),
        "labels": dict(CLASSES),
        "numTraining": cases,
        "file_ending": FILE_ENDING,
        "overwrite_image_reader_writer": READER,
        "description": "cellsynth synthetic pairs; labels: 0 background, 1 interior, "
                       "2 boundary (instance pixels with a face neighbour of another id or "
                       "background, or on the image border)",
    }
    atomic_write_text(tally.claim(root / "dataset.json"), json.dumps(dataset, indent=2) + "\n")
    tally.file(None)
    tally.extra.update({"reader": READER, "labels": dict(CLASSES), "cases": cases})


def semantic(labels: np.ndarray) -> np.ndarray:
    """Instances (``*S``) -> uint8 classes: 0 background, 1 interior, 2 boundary."""
    out = (labels > 0).astype(np.uint8)
    out[boundary(labels) > 0] = CLASSES["boundary"]
    return out


def nnunet_spacing(sample: ExportSample) -> list[float]:
    """``[z, y, x]`` for Tiff3DIO: the sample's spacing (1 per axis when unknown), 2D as
    ``[999, y, x]``."""
    spacing = list(sample.spacing) if sample.spacing is not None else [1.0] * sample.ndim
    return ([SPACING_2D] if sample.ndim == 2 else []) + [float(s) for s in spacing]


def channel_names(samples: list[ExportSample]) -> dict[str, str]:
    """``{"0": name, ...}``: the label channel names when every sample is of one kind with an
    image channel per label channel, else ``fluorescence`` (any name but ``CT`` gives
    nnU-Net's per-image z-score normalisation)."""
    channels = samples[0].channels if samples else 0
    kinds = {s.kind for s in samples}
    if len(kinds) == 1 and channels > 1:
        kind = next(iter(kinds))
        if not kind.layered and len(kind.label_channels) == channels:
            return {str(c): kind.label_channels[c] for c in range(channels)}
    if channels == 1:
        return {"0": "fluorescence"}
    return {str(c): f"fluorescence {c}" for c in range(channels)}


def _as_3d(array: np.ndarray) -> np.ndarray:
    return array[np.newaxis] if array.ndim == 2 else array
