"""Shared test helpers: simulations and settings built the way the workflow builds them, toy
data made from them, the tiny test configs (tests/configs/*.yaml) and the one Snakemake runner.

Tests import everything from here (``from helpers import ...``), never from another test file.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from snakemake.utils import validate

from workflow_lib.simulate import Simulation, read_params, sample_rng, simulate
from workflow_lib.sketch import SketchParams
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow import layout

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "config" / "config.schema.yaml")


def simulated(
    kind: str, shape, params: Mapping[str, Any] | None = None, seed: int = 0, i: int = 0,
    mask: np.ndarray | None = None,
) -> Simulation:
    """Sample ``i`` of a simulation seeded ``seed``, exactly as rule simulate_chunk makes it."""
    settings = read_params(kind, params, len(shape))
    return simulate(kind, shape, settings, sample_rng(seed, i), mask=mask)


def sketch_settings(ndim: int = 2, **raw: Any) -> SketchParams:
    """Sketch settings from a partial ``sketch:`` mapping, defaults filled by the schema."""
    config = {"datasets": {"d": {"images": "x", "simulations": {"s": {"kind": "nuclei", "sketch": raw}}}}}
    validate(config, SCHEMA)
    return cfg.sketch_settings(config["datasets"]["d"]["simulations"]["s"]["sketch"], ndim, "sketch")


def chunk_files(folder: Path, samples) -> dict[str, list[str]]:
    """The ``files`` param of a chunk job over ``samples`` (rules/common.smk chunk_paths) with
    ``folder`` in place of the simulation's folder under results/; the folders made."""
    prefix = layout.SIMULATION + "/"
    files = {name: [str(folder / template.removeprefix(prefix).format(i=i)) for i in samples]
             for name, template in layout.SAMPLE_FILES.items()}
    for paths in files.values():
        for path in paths:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
    return files


def stand_in_chunk(sim_folder: Path, count: int, *stages: str) -> None:
    """The chunk manifests (results/{ds}/{sim}/chunks/{stage}-0-{count-1}.json) of stand-in
    per-sample files a test wrote itself, so only later stages' rules run. One chunk: what
    ``images_per_job: auto`` makes of a tiny simulation."""
    import json

    (sim_folder / "chunks").mkdir(parents=True, exist_ok=True)
    chunk = f"0-{count - 1}"
    for stage in stages:
        (sim_folder / "chunks" / f"{stage}-{chunk}.json").write_text(json.dumps(
            {"chunk": chunk, "samples": list(range(count)), "records": []}))


# The submodules use simulated/sketch_settings/REPO above: imported after them.
from helpers.configs import (  # noqa: E402
    CONFIGS, load_config, tiny_config, tiny_dataset, two_dataset_config,
)
from helpers.data import (  # noqa: E402
    discs, membrane_tissue, sketched_membranes, toy_labels, toy_pair, toy_sketch, two_stain_tissue,
    write_h5_images, write_ome_zarr, write_raw_images, write_split_index,
)
from helpers.pipeline import build_pipeline, copy_workdir, snapshot  # noqa: E402
from helpers.snakemake import (  # noqa: E402
    GPU_RULES, LOCAL_PROFILE, SIZED_BY_RULE, SLURM_PROFILE, SNAKEFILE, TARGETS, Job, job_keys,
    kill_snakemake_when, planned_jobs, run_snakemake, snakemake_command, write_config,
)

__all__ = [
    "CONFIGS", "GPU_RULES", "LOCAL_PROFILE", "REPO", "SCHEMA", "SIZED_BY_RULE", "SLURM_PROFILE",
    "SNAKEFILE", "chunk_files", "stand_in_chunk",
    "TARGETS", "Job", "build_pipeline", "copy_workdir", "discs", "job_keys", "kill_snakemake_when", "load_config",
    "membrane_tissue", "planned_jobs", "run_snakemake", "simulated", "sketch_settings", "sketched_membranes", "snakemake_command",
    "snapshot", "tiny_config", "tiny_dataset", "toy_labels", "toy_pair", "toy_sketch",
    "two_dataset_config", "two_stain_tissue", "write_config", "write_h5_images", "write_ome_zarr", "write_raw_images",
    "write_split_index",
]
