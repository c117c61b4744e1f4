"""Chunks: the samples one job simulates, sketches or synthesises (``synthesis.images_per_job``).

A simulation's ``count`` samples are cut into chunks of consecutive sample indices, named
``{first}-{last}`` (the ``{chunk}`` wildcard). Each sample keeps its own seeds, so a sample is
the same whatever the chunking; a job pays its interpreter, library and model start-up once per
chunk instead of once per sample.
"""

from __future__ import annotations

import functools
import math
import shutil
from collections.abc import Mapping
from typing import Any

#: ``images_per_job: auto`` sizes a job to about this much work on its device (seconds).
JOB_SECONDS = 60.0
# Seconds per network call per tile voxel per squared first-level feature count: a 16-feature
# 2D U-Net on 2 CPU threads (bench: 43 ms per 256x256 tile, 2.6e-9); a GPU does it a few
# hundred times faster (H100: docs/performance.md).
_NETWORK_S = {"cpu": 2.6e-9, "gpu": 1.0e-11}
# Seconds per pixel of what runs on the CPU around the network: simulation, sketch, guard
# fields, texture step, annotation check (2 CPU cores).
_AROUND_S_PER_PIXEL = 3e-6


def name(first: int, last: int) -> str:
    """The ``{chunk}`` wildcard of samples ``first``..``last`` (inclusive)."""
    return f"{first}-{last}"


def samples(chunk: str) -> list[int]:
    """The sample indices of a ``{chunk}`` wildcard (``"8-15"`` -> 8..15)."""
    first, last = (int(v) for v in chunk.split("-"))
    return list(range(first, last + 1))


def split(count: int, per_job: int) -> list[str]:
    """The chunks of ``count`` samples, ``per_job`` at most in each."""
    return [name(a, min(a + per_job, count) - 1) for a in range(0, count, max(per_job, 1))]


def covering(chunk_names: list[str], n: int) -> list[str]:
    """The chunks that hold any of samples 0..n-1."""
    return [c for c in chunk_names if samples(c)[0] < n]


@functools.cache  # asked for every chunk list while Snakemake builds the DAG
def gpu_expected(device: str) -> bool:
    """Whether jobs will find a GPU: ``device: cuda``, or ``auto`` on a machine with an NVIDIA
    driver (where Snakemake plans the run; a SLURM login node without one plans CPU-sized
    chunks: set ``images_per_job`` there)."""
    return device == "cuda" or (device == "auto" and shutil.which("nvidia-smi") is not None)


def seconds_per_sample(ds: Mapping[str, Any], sim: Mapping[str, Any], gpu: bool) -> float:
    """A rough estimate of one sample's simulate + sketch + synthesize time on the device."""
    synthesis, model = ds["synthesis"], ds["model"]
    frames = sim["shape"][0] if len(sim["shape"]) > ds["ndim"] else 1
    spatial = sim["shape"][-ds["ndim"]:]
    pixels = math.prod(spatial) * frames
    tile = [min(t, s) for t, s in zip(synthesis["tile"], spatial)]
    # tiles per image as diffusion.tiling lays them out (overlap at most half a tile)
    tiles = math.prod(
        1 if t >= s else math.ceil((s - t) / max(1, t - min(synthesis["overlap"], t // 2))) + 1
        for s, t in zip(spatial, tile)
    ) * frames * len(ds["channels"])
    # the samplers' network calls (diffusion.samplers.network_evaluations, whose torch the
    # simulate and sketch jobs' environment lacks)
    ddpm = synthesis["sampler"] == "ddpm"
    calls = synthesis["t_start"] if ddpm else min(synthesis["steps"], synthesis["t_start"])
    network = calls * tiles * math.prod(tile) * model["features"] ** 2
    return network * _NETWORK_S["gpu" if gpu else "cpu"] + pixels * _AROUND_S_PER_PIXEL


def images_per_job(ds: Mapping[str, Any], sim: Mapping[str, Any], gpu: bool) -> int:
    """``synthesis.images_per_job`` of one simulation: the number set, or for ``auto`` as many
    samples as make about :data:`JOB_SECONDS` of work (at least 1, at most ``count``)."""
    value = ds["synthesis"]["images_per_job"]
    if value != "auto":
        return int(value)
    per_sample = seconds_per_sample(ds, sim, gpu)
    return max(1, min(int(sim["count"]), int(JOB_SECONDS // per_sample)))


def simulation_chunks(config: Mapping[str, Any], dataset: str, sim: str) -> list[str]:
    """The chunks of one simulation of the validated config."""
    ds = config["datasets"][dataset]
    cfg = ds["simulations"][sim]
    gpu = gpu_expected(config.get("device", "auto"))
    return split(int(cfg["count"]), images_per_job(ds, cfg, gpu))
