"""StarDist training folder: ``images/{name}.tif`` and ``masks/{name}.tif`` (same names).

Facts from StarDist (its ``examples/2D/2_training.ipynb`` and ``examples/3D/2_training.ipynb``,
which read ``train/images/*.tif`` and ``train/masks/*.tif`` with ``tifffile.imread`` and pair
them by file name): input images are ``(Y, X)`` / ``(Z, Y, X)`` for one channel, or with the
channel axis LAST, ``(Y, X, C)`` / ``(Z, Y, X, C)`` (``n_channel = X[0].shape[-1]``); label
images are integer instances of the same spatial shape. StarDist2D trains on 2D, StarDist3D on
3D, so 3D samples stay volumes. Time series frames are ``{name}_t{t:03d}``.

Images: float32 as stored (StarDist's examples normalise per image); one channel as an ImageJ
TIFF, several channels as a channel-last shaped TIFF (samples per pixel; ImageJ hyperstacks
cannot put C last). Masks: the instances of :func:`workflow_lib.export.samples.instances`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workflow_lib.export.samples import ExportSample
from workflow_lib.export.summary import Tally
from workflow_lib.export.tiff import write_image

IMAGES, MASKS = "images", "masks"


def write(samples: list[ExportSample], root: Path, tally: Tally) -> None:
    for sample in samples:
        tally.sample(sample)
        space = "ZYX" if sample.ndim == 3 else "YX"
        for name, image, labels in sample.frames():
            path = tally.claim(root / IMAGES / f"{name}.tif")
            if len(image) == 1:
                write_image(path, image[0], space, sample.spacing)
            else:
                write_image(path, np.moveaxis(image, 0, -1), space + "C", sample.spacing,
                            imagej=False)
            write_image(tally.claim(root / MASKS / f"{name}.tif"), labels, space, sample.spacing)
            tally.file(sample)
            tally.file(sample)
            tally.pair(sample)
