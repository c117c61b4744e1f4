"""Config-level helpers of the simulate and sketch rules: target files and rule inputs.

Kept out of the ``.smk`` files so they stay lint-clean and can be tested without Snakemake.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from workflow_lib.errors import ConfigError
from workflow_lib.simulate.mask_files import mask_files

Config = Mapping[str, Any]


def simulations(config: Config) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(data set, simulation name, its config) for every simulation, sorted."""
    return [
        (ds, name, sim)
        for ds in sorted(config["datasets"])
        for name, sim in sorted(config["datasets"][ds].get("simulations", {}).items())
    ]


def sim_config(config: Config, dataset: str, sim: str) -> Mapping[str, Any]:
    return config["datasets"][dataset]["simulations"][sim]


def sim_key(dataset: str, sim: str) -> str:
    """Config key of a simulation, for error messages."""
    return f"datasets.{dataset}.simulations.{sim}"


def sim_masks(config: Config, dataset: str, sim: str, i: int, known_files: Iterable[str] = ()) -> dict[str, str]:
    """Rule input: kind ``masks`` reads mask file ``i mod n`` of the sorted glob ``params.masks``."""
    cfg = sim_config(config, dataset, sim)
    if cfg["kind"] != "masks":
        return {}
    key = sim_key(dataset, sim) + ".params.masks"
    pattern = cfg.get("params", {}).get("masks")
    if not isinstance(pattern, str) or not pattern:
        raise ConfigError(key, "kind 'masks' needs a glob of label images")
    files = mask_files(pattern, key, known_files=known_files)
    return {"mask": files[i % len(files)]}


def simulate_outputs(config: Config) -> list[str]:
    """Every label image (and CTC track file of time series) of every simulation."""
    out = []
    for ds, name, sim in simulations(config):
        for i in range(sim["count"]):
            out.append(f"results/{ds}/{name}/labels/{i}.tif")
            if sim["kind"] == "timeseries":
                out.append(f"results/{ds}/{name}/tracks/{i}/res_track.txt")
    return out


def sketch_outputs(config: Config) -> list[str]:
    """Sketch, annotation HDF5 and preview of every simulated sample."""
    return [
        f"results/{ds}/{name}/{folder}/{i}.{ext}"
        for ds, name, sim in simulations(config)
        for i in range(sim["count"])
        for folder, ext in (("sketches", "tif"), ("annotations", "h5"), ("previews", "png"))
    ]
