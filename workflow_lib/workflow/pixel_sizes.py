"""The pixel size of a data set's outputs, from the config and its first image's metadata.

Read where Snakemake plans the run (rule simulate_chunk's param), never in a job: this module
reaches the readers of every input format (bioio and its plugins), which only the prepare
environment holds.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any


def pixel_size_um(ds: Mapping[str, Any], images: Mapping[str, str]) -> list[float] | None:
    """The pixel size of a data set's outputs, microns per spatial axis ``[Z,] Y, X``, or None.

    ``ds``: its schema-filled config; ``images``: image name -> input path. ``pixel_size``
    over the metadata of the first image by name (its header only, read once per run), divided
    by ``rescale``: what the conversion writes as that image's ``element_size_um``. Rule
    simulate_chunk's param, so a changed size reruns the simulations (and what follows them)
    and jobs read no image for it. None when unknown: outputs then carry no physical size.
    """
    first = images[min(images)] if images else None
    size = _pixel_size_um(first, ds["ndim"], ds["axes"], ds["h5_dataset"],
                          _frozen(ds.get("pixel_size")), _frozen(ds["rescale"]), ds.get("scene"))
    return None if size is None else list(size)


def _frozen(value: Any) -> Any:
    return tuple(value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=None)
def _pixel_size_um(path, ndim, axes, h5_dataset, override, rescale,
                   scene) -> tuple[float, ...] | None:
    from workflow_lib.prepare.convert import dataset_pixel_size  # scipy, bioio: when asked

    size = dataset_pixel_size(path, ndim, axes, h5_dataset, override, rescale, scene)
    return None if size is None else tuple(size)
