"""Demo data: real fluorescence nuclei shipped with StarDist, cut into quadrants."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage.segmentation import relabel_sequential

from workflow_lib.io import write_tiff


def demo_quadrants() -> tuple[list[np.ndarray], list[np.ndarray]]:
    """StarDist's 2D test image (Data Science Bowl 2018, BSD-3) as 4 quadrants of 256x256.

    Returns (images, masks): uint16 ``(Y, X)`` each; masks relabelled 1..N per quadrant. Four
    files give the train/val/test split something to split; the masks are for evaluation only.
    """
    from stardist.data import test_image_nuclei_2d

    image, mask = test_image_nuclei_2d(return_mask=True)
    h, w = image.shape[0] // 2, image.shape[1] // 2
    corners = [(0, 0), (0, w), (h, 0), (h, w)]
    images = [np.ascontiguousarray(image[y : y + h, x : x + w]) for y, x in corners]
    masks = [
        relabel_sequential(np.ascontiguousarray(mask[y : y + h, x : x + w]))[0].astype(np.uint16)
        for y, x in corners
    ]
    return images, masks


def write_demo(image_paths: Sequence[str | Path], mask_paths: Sequence[str | Path]) -> None:
    """Write the demo quadrants to ``image_paths`` and ``mask_paths`` (4 each) as ImageJ TIFFs."""
    images, masks = demo_quadrants()
    if len(image_paths) != len(images) or len(mask_paths) != len(masks):
        raise ValueError(f"the demo has {len(images)} images and masks")
    for path, image in zip(image_paths, images):
        write_tiff(path, image.astype(np.uint16), "YX")
    for path, mask in zip(mask_paths, masks):
        write_tiff(path, mask, "YX")
