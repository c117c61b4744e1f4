"""Stages of envs/prepare.yaml: demo data, conversion, split index."""

from __future__ import annotations

import logging

from workflow_lib.dataset import SPLITS, write_index
from workflow_lib.errors import InputError
from workflow_lib.prepare.convert import convert_image as convert
from workflow_lib.prepare.demo import write_demo
from workflow_lib.workflow.runner import Job

log = logging.getLogger("cellsynth")


def demo_data(job: Job) -> None:
    write_demo(job.output.images, job.output.masks)


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
