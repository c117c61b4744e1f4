"""Shared test helpers: simulations and settings built the way the workflow builds them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from snakemake.utils import validate

from workflow_lib.simulate import Simulation, read_params, sample_rng, simulate
from workflow_lib.sketch import SketchParams
from workflow_lib.workflow import config as cfg

REPO = Path(__file__).resolve().parents[2]
SCHEMA = str(REPO / "config" / "config.schema.yaml")


def simulated(
    kind: str, shape, params: Mapping[str, Any] | None = None, seed: int = 0, i: int = 0,
    mask: np.ndarray | None = None,
) -> Simulation:
    """Sample ``i`` of a simulation seeded ``seed``, exactly as rule simulate_sample makes it."""
    settings = read_params(kind, params, len(shape))
    return simulate(kind, shape, settings, sample_rng(seed, i), mask=mask)


def sketch_settings(ndim: int = 2, **raw: Any) -> SketchParams:
    """Sketch settings from a partial ``sketch:`` mapping, defaults filled by the schema."""
    config = {"datasets": {"d": {"images": "x", "simulations": {"s": {"kind": "nuclei", "sketch": raw}}}}}
    validate(config, SCHEMA)
    return cfg.sketch_settings(config["datasets"]["d"]["simulations"]["s"]["sketch"], ndim, "sketch")
