"""Config-level logic the Snakefile needs at parse time: input discovery and cross-key checks.

Kept out of the `.smk` files so it can be unit-tested without Snakemake.
"""

from __future__ import annotations

import fnmatch
import glob
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workflow_lib.diffusion.checks import check_diffusion_config
from workflow_lib.errors import ConfigError

SPLITS = ("train", "val", "test")
IMAGE_SUFFIXES = (".tif", ".tiff", ".png", ".h5", ".hdf5")
# Folders under results/{dataset}/ that simulation names must not shadow.
RESERVED_FOLDERS = ("h5", "index", "model")


def dataset_images(
    dataset: str, pattern: str, known_files: Iterable[str] = ()
) -> dict[str, str]:
    """Map image name (file stem) -> path for every file matching the glob ``pattern``.

    ``known_files`` are paths that a rule of the workflow will create (the demo data); those
    matching ``pattern`` count even before they exist, so a fresh clone plans the whole DAG.
    Raises :class:`ConfigError` when nothing matches, a match has an unsupported suffix, or two
    files share a stem (their HDF5 outputs would collide).
    """
    key = f"datasets.{dataset}.images"
    paths = set(glob.glob(pattern, recursive=True))
    paths |= {f for f in known_files if fnmatch.fnmatch(f, pattern)}
    paths = {p for p in paths if Path(p).is_file() or p in known_files}
    if not paths:
        raise ConfigError(key, f"the glob '{pattern}' matches no file")
    images: dict[str, str] = {}
    for path in sorted(paths):
        p = Path(path)
        if p.suffix.lower() not in IMAGE_SUFFIXES:
            raise ConfigError(
                key, f"'{path}' is not a supported image ({', '.join(IMAGE_SUFFIXES)})"
            )
        name = p.stem
        if name in images:
            raise ConfigError(key, f"'{images[name]}' and '{path}' share the name '{name}'")
        images[name] = path
    return images


def sorted_keys(obj: Any) -> Any:
    """``obj`` with every mapping's keys sorted, recursively.

    Snakemake compares a job's params by their text, so reordering keys in a YAML file
    would otherwise rerun jobs whose settings did not change.
    """
    if isinstance(obj, Mapping):
        return {key: sorted_keys(obj[key]) for key in sorted(obj)}
    if isinstance(obj, list):
        return [sorted_keys(value) for value in obj]
    return obj


def check_config(config: Mapping[str, Any]) -> None:
    """Checks across keys that the JSON schema cannot express. Raises :class:`ConfigError`."""
    for name, ds in config["datasets"].items():
        ndim = ds["ndim"]
        check_diffusion_config(name, ds)
        split = ds["split"]
        if split["val"] + split["test"] >= 1:
            raise ConfigError(
                f"datasets.{name}.split", "val + test must leave a share for training (< 1)"
            )
        lower, upper = ds["normalize"]["lower"], ds["normalize"]["upper"]
        if lower >= upper:
            raise ConfigError(f"datasets.{name}.normalize", f"lower ({lower}) must be < upper ({upper})")
        rescale = ds["rescale"]
        if isinstance(rescale, list) and len(rescale) != ndim:
            raise ConfigError(
                f"datasets.{name}.rescale", f"has {len(rescale)} factors but ndim is {ndim}"
            )
        for sim_name, sim in ds["simulations"].items():
            if sim_name in RESERVED_FOLDERS:
                raise ConfigError(
                    f"datasets.{name}.simulations.{sim_name}",
                    f"the name is taken by a stage folder ({', '.join(RESERVED_FOLDERS)})",
                )
            if len(sim["shape"]) != ndim:
                raise ConfigError(
                    f"datasets.{name}.simulations.{sim_name}.shape",
                    f"has {len(sim['shape'])} axes but ndim is {ndim}",
                )
