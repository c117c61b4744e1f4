"""Stages of envs/prepare.yaml: demo data, conversion, split index."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from workflow_lib.dataset import SPLITS, write_index
from workflow_lib.errors import InputError
from workflow_lib.io import read_h5_header
from workflow_lib.prepare.convert import convert_image as convert
from workflow_lib.prepare.demo import write_demo, write_demo3d
from workflow_lib.workflow.runner import Job

log = logging.getLogger("cellsynth")


def demo_data(job: Job) -> None:
    write_demo(job.output.images, job.output.masks)


def demo3d_data(job: Job) -> None:
    write_demo3d(job.output.images, job.output.masks)


def convert_image(job: Job) -> None:
    p = job.params
    convert(
        job.input[0],
        job.output[0],
        ndim=p.ndim,
        channels=p.channels,
        axes=p.axes,
        h5_dataset=p.h5_dataset,
        normalize_percentiles=(p.normalize["lower"], p.normalize["upper"]),
        rescale=p.rescale,
        pixel_size_um=p.pixel_size,
        scene=p.scene,
    )


def unusable_images(job: Job) -> None:
    raise InputError(None, job.params.problem)


def index_dataset(job: Job) -> None:
    split = job.params.split
    result = write_index(
        list(job.input), dict(zip(SPLITS, job.output)),
        val=split["val"], test=split["test"], seed=split["seed"],
    )
    for name, images in result.items():
        log.info("%s: %d images %s", name, len(images), images)
    _log_pixel_sizes(list(job.input))


def _log_pixel_sizes(h5_files: list[str]) -> None:
    """Say once per data set what pixel size its outputs get: that of its first image (rule
    simulate_chunk's param), or none; warn when its images disagree."""
    sizes = {}
    for path in h5_files:
        _, attrs = read_h5_header(path)
        size = attrs.get("element_size_um")
        sizes[Path(path).stem] = None if size is None else tuple(np.round(size, 6).tolist())
    if not sizes:
        return
    first, size = next(iter(sizes.items()))
    if size is None:
        log.warning("no pixel size known for the images of this data set (%s, ...): no ImageJ, "
                    "OME or element_size_um metadata and no `pixel_size` in the config, so its "
                    "outputs are written without a physical size", first)
    else:
        log.info("pixel size %s um ([Z,] Y, X) from %s", list(size), first)
    other = {n: s for n, s in sizes.items() if s != size}
    if other:
        log.warning("images differ in pixel size: %s has %s, but %s; outputs use %s's "
                    "(set `pixel_size` in the config to choose)", first, size,
                    ", ".join(f"{n} {s}" for n, s in list(other.items())[:5])
                    + (", ..." if len(other) > 5 else ""), first)
