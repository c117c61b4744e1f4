"""Toy data, made from the library's own nuclei simulator (:func:`helpers.simulated`).

:func:`toy_pair`: (image in [0, 1], labels), the labels rendered as bright blobs with noise;
:func:`toy_sketch`: the workflow's sketch of such labels, in [-1, 1];
:func:`write_raw_images`: uint16 TIFF input images; :func:`write_h5_images`: converted
images as the prepare stage writes them (HDF5 ``data/image``, (C, *spatial), [0, 1]);
:func:`write_split_index`: the prepare stage's index CSVs for a split chosen by the test.
:func:`write_ome_zarr`: an OME-Zarr image as ome-zarr-py writes it (what users bring).
:func:`discs`: hand-placed discs, for tests that compute their expected values by hand.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import tifffile
from scipy import ndimage

from helpers import simulated, sketch_settings
from workflow_lib.dataset import write_split_csv
from workflow_lib.io import write_h5
from workflow_lib.simulate import get_kind, sample_rng
from workflow_lib.sketch import make_sketch
from workflow_lib.sketch.render import SketchParams

RADIUS = [4, 6]
# Centres at least this far apart: nuclei of radius <= 6 (elongated up to 1.3) rarely touch,
# so a briefly trained segmenter can tell them apart.
MIN_DISTANCE = 14


def _shape(size: int | tuple[int, ...]) -> tuple[int, ...]:
    return (size, size) if isinstance(size, int) else tuple(size)


def discs(centres, radius: float, shape: tuple[int, ...] = (64, 64)) -> np.ndarray:
    """Labels (int32, ``shape``) of discs (balls in 3D) of ``radius`` around ``centres``, ids
    1..n in their order (a later disc covers an earlier one where they overlap)."""
    grid = np.indices(shape)
    labels = np.zeros(shape, np.int32)
    for k, centre in enumerate(centres, start=1):
        labels[sum((g - c) ** 2 for g, c in zip(grid, centre)) <= radius**2] = k
    return labels


def toy_labels(seed: int, size: int | tuple[int, ...] = 64, n: int | None = None,
               i: int = 0) -> np.ndarray:
    """Separate nuclei labels (uint16, ``size``) of radius 4-6: ``n // 2`` to ``n`` of them.

    ``n`` defaults to one nucleus per 512 pixels of the last two axes (8 in 64 x 64).
    """
    shape = _shape(size)
    if n is None:
        n = max(1, round(shape[-2] * shape[-1] / 512))
    params = {"cells": [max(1, n // 2), n], "radius": RADIUS, "min_distance": MIN_DISTANCE}
    return simulated("nuclei", shape, params, seed=seed, i=i).labels[0]


def toy_pair(seed: int, size: int | tuple[int, ...] = 64, n: int | None = None,
             i: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(image float32 in [0, 1], labels uint16), both of shape ``size`` (an int: square).

    Labels from :func:`toy_labels`; the image is a dim background (0.1) with each nucleus a
    bright blob (0.5-0.8, edges blurred by 1 px) and Gaussian noise (std 0.05).
    """
    labels = toy_labels(seed, size, n, i)
    rng = np.random.default_rng([seed, i, 7])
    brightness = np.concatenate([[0.0], rng.uniform(0.5, 0.8, int(labels.max()))])
    image = 0.1 + ndimage.gaussian_filter(brightness[labels], 1.0)
    image += rng.normal(0, 0.05, labels.shape)
    return np.clip(image, 0, 1).astype(np.float32), labels


def toy_sketch(size: int | tuple[int, ...], seed: int = 0, n: int | None = None,
               i: int = 0) -> np.ndarray:
    """The sketch (float32 (1, *size) in [-1, 1]) rule sketch_chunk makes of toy labels."""
    labels = toy_labels(seed, size, n, i)[None]
    settings = sketch_settings(labels.ndim - 1)
    return make_sketch(labels, get_kind("nuclei"), settings, sample_rng(seed, i, stream=1))


def write_raw_images(folder: Path, n: int = 2, shape: tuple[int, int] = (64, 64),
                     seed: int = 0) -> list[Path]:
    """``n`` uint16 TIFFs ``img<i>.tif`` of toy nuclei (bright blobs on a dim, noisy background)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        image, _ = toy_pair(seed, shape, i=i)
        paths.append(folder / f"img{i}.tif")
        tifffile.imwrite(paths[-1], np.round(100 + 2000 * image).astype(np.uint16))
    return paths


def write_h5_images(folder: Path, n: int = 2, shape: tuple[int, ...] = (1, 40, 40),
                    seed: int = 0) -> list[Path]:
    """``n`` HDF5 files ``img<i>.h5`` holding ``data/image``: float32 ``shape`` (C, *spatial) in
    [0, 1], as the prepare stage writes them; each channel its own toy image."""
    paths = []
    for i in range(n):
        image = np.stack([toy_pair(seed + c, shape[1:], i=i)[0] for c in range(shape[0])])
        paths.append(folder / f"img{i}.h5")
        write_h5(paths[-1], {"data/image": image})
    return paths


def write_ome_zarr(path: Path, array: np.ndarray, axes: str,
                   sizes: Mapping[str, float] | None = None, unit: str = "micrometer") -> Path:
    """``array`` (axes like ``czyx``) as an NGFF 0.4 OME-Zarr written by ome-zarr-py, with two
    resolution levels and ``sizes`` (axis letter -> size in ``unit``) on its spatial axes."""
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    sizes = {a.lower(): float(v) for a, v in (sizes or {}).items()}
    scale = {**{a: 1.0 for a in axes.lower() if a in "tc"}, **sizes}
    write_image(array, str(path), axes=axes.lower(), fmt=FormatV04(), scale_factors=[2],
                scale=scale if sizes else None, axes_units={a: unit for a in sizes} or None)
    return path


def write_split_index(index_dir: Path, splits: Mapping[str, Sequence[Path]]) -> dict[str, Path]:
    """``index_dir/<split>.csv`` for each split (split -> HDF5 images), as the prepare stage
    writes them; returns split -> CSV path."""
    index_dir.mkdir(parents=True, exist_ok=True)
    out = {split: index_dir / f"{split}.csv" for split in splits}
    for split, paths in splits.items():
        write_split_csv(out[split], paths)
    return out


MEMBRANE_TISSUE = {"cells": [40, 40], "tissue": "ellipsoid", "size_jitter": 0.2}
MEMBRANE_TISSUE_3D = {"cells": [12, 12], "tissue": "ellipsoid", "size_jitter": 0.2}
MEMBRANE_SHAPE, MEMBRANE_SHAPE_3D = (256, 256), (32, 64, 64)


def membrane_tissue(seed: int, ndim: int = 2) -> np.ndarray:
    """Cell labels of a `membranes` simulation: 40 cells in 2D, 12 in 3D, in an ellipsoid."""
    shape, params = ((MEMBRANE_SHAPE, MEMBRANE_TISSUE) if ndim == 2 else
                     (MEMBRANE_SHAPE_3D, MEMBRANE_TISSUE_3D))
    return simulated("membranes", shape, params, seed=seed).labels[0]


def sketched_membranes(labels: np.ndarray, seed: int, noise: float = 0.02) -> np.ndarray:
    """The workflow's sketch of the labels (mode boundary) mapped to [0, 1], plus noise."""
    rng = np.random.default_rng(seed)
    sketch = make_sketch(labels[None], get_kind("membranes"), SketchParams(mode="boundary"), rng)[0]
    return (sketch + 1) / 2 + rng.normal(0, noise, labels.shape)


TWO_STAIN_TISSUE = {"cells": [30, 30], "tissue": "ellipsoid", "size_jitter": 0.2}


def two_stain_tissue(seed: int, shape: tuple[int, int] = (256, 256), params=None,
                     noise: float = 0.02) -> tuple[np.ndarray, np.ndarray]:
    """(image (2, Y, X) in [0, 1] plus noise, labels (2, Y, X)) of a `multichannel`
    simulation: channel 0 its cells' membranes (mode boundary), channel 1 their nuclei (mode
    centre), as a membrane and a nuclear stain imaged side by side."""
    labels = simulated("multichannel", shape, params or TWO_STAIN_TISSUE, seed=seed).labels
    rng = np.random.default_rng(seed)
    sketch = make_sketch(labels, get_kind("multichannel"), SketchParams(), rng)
    return (sketch + 1) / 2 + rng.normal(0, noise, sketch.shape), labels
