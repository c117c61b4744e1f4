"""Export samples as the workflow stores them, for the export tests of every format."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from helpers import simulated
from workflow_lib.export import ExportSample
from workflow_lib.simulate import get_kind

NUCLEI = {"cells": [3, 4], "radius": [4, 6]}
SERIES = {"cells": [3, 4], "radius": [4, 6], "frames": 3, "division": 0.5}


def export_sample(kind: str, shape, params, name: str, spacing=None, seed: int = 0) -> ExportSample:
    """A sample as the workflow stores it: labels from the simulator, image = bright instances
    plus noise, one image channel for layered kinds."""
    sim = simulated(kind, shape, params, seed=seed)
    spec = get_kind(kind)
    foreground = sim.labels > 0
    if spec.layered:
        foreground = foreground.any(axis=-len(shape) - 1, keepdims=True)
    noise = np.random.default_rng(seed).normal(0, 0.05, foreground.shape)
    image = np.clip(foreground * 0.8 + 0.1 + noise, 0, 1).astype(np.float32)
    return ExportSample(name, spec, image, sim.labels, sim.tracks, spacing)


def files(folder: Path) -> set[str]:
    """Every file under ``folder``, as paths relative to it."""
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}
