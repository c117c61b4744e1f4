"""Helpers for the rerun, failure and cluster tests: a tiny config over every stage, a Snakemake
runner, a dry-run parser and file snapshots. Imported by tests/test_reruns.py,
tests/test_failure*.py and tests/test_cluster*.py as ``cluster.tiny_pipeline``."""

from __future__ import annotations

import copy
import hashlib
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tifffile
import yaml

REPO = Path(__file__).resolve().parents[2]
SNAKEFILE = REPO / "Snakefile"
SLURM_PROFILE = REPO / "profiles" / "slurm"
GPU_RULES = ("train_model", "synthesize_image")
# A job in a dry-run: "rule NAME:" then indented "key: value" lines.
# Every target rule.
TARGETS = ("all", "prepare", "train", "simulate", "sketch", "synthesize", "evaluate")
_JOB_RE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:[ \t]+\S.*\n?)*)", re.M)


def write_images(folder: Path, n: int = 2, shape: tuple[int, int] = (64, 64), seed: int = 0) -> None:
    """``n`` uint16 images of bright blobs on a dim background (something worth normalising)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[: shape[0], : shape[1]]
    for i in range(n):
        img = rng.normal(200, 20, shape)
        for cy, cx in rng.uniform(8, min(shape) - 8, (6, 2)):
            img += 2000 * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * 4.0**2))
        tifffile.imwrite(folder / f"img{i}.tif", np.clip(img, 0, 65535).astype(np.uint16))


def tiny_dataset(images: str) -> dict:
    """A data set config over ``images`` small enough to run every stage in seconds on a CPU."""
    return {
        "images": images,
        "ndim": 2,
        "split": {"val": 0.0, "test": 0.5, "seed": 0},
        "model": {
            "patch_size": [32, 32],
            "features": 4,
            "timesteps": 20,
            "train": {"steps": 4, "batch_size": 1, "seed": 0},
        },
        "simulations": {"sim": {"kind": "nuclei", "count": 1, "shape": [48, 48], "seed": 0,
                                "params": {"cells": [3, 4], "radius": [5, 7]}}},
        "synthesis": {"t_start": 8, "sampler": "ddim", "steps": 2, "tile": [32, 32],
                      "overlap": 8, "seed": 0},
        "evaluation": {
            "realism": {"patch": 16, "subsets": 2, "width": 4},
            "segmenter": {"features": 4, "patch": 16, "batch_size": 2, "steps": 2},
        },
    }


def tiny_config(root: Path, names: tuple[str, ...] = ("a", "b")) -> dict:
    """Config with one tiny data set per name; writes their images under ``root/raw/<name>``."""
    for k, name in enumerate(names):
        write_images(root / "raw" / name, seed=k)
    return {"datasets": {name: tiny_dataset(f"raw/{name}/*.tif") for name in names}}


def two_dataset_config(root: Path) -> dict:
    """Data set a with every stage; b a model only (no simulations), to keep the build short."""
    config = tiny_config(root, ("a", "b"))
    config["datasets"]["b"]["simulations"] = {}
    return config


_BUILT: dict[str, tuple[Path, dict]] = {}


def built_pipeline(tmp_path_factory) -> tuple[Path, dict]:
    """Workdir with :func:`two_dataset_config` built through every stage, and its config.

    Built once per pytest session and shared by the rerun, failure and cluster tests, which
    must work on copies (:func:`copy_workdir`).
    """
    if "two" not in _BUILT:
        root = tmp_path_factory.mktemp("built")
        config = two_dataset_config(root)
        snakemake(root, *TARGETS, config=config)
        assert "Nothing to be done" in snakemake(root, "-n", *TARGETS, config=config).stdout
        _BUILT["two"] = root, config
    root, config = _BUILT["two"]
    return root, copy.deepcopy(config)


def copy_workdir(src: Path, dst: Path) -> Path:
    """Copy a workdir with mtimes and Snakemake's metadata, so the copy is just as up to date."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def write_config(workdir: Path, config: dict, name: str = "config.yaml") -> Path:
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake(
    workdir: Path,
    *args: str,
    config: dict | None = None,
    check: bool = True,
    timeout: float = 600,
    cores: int | None = 2,
    env: dict | None = None,
) -> subprocess.CompletedProcess:
    """Run the workflow in ``workdir`` (config written to workdir/config.yaml when given).

    stdout and stderr are merged into ``stdout``; ``check`` raises with the tail of the output.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(SNAKEFILE), "--directory", str(workdir)]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    cmd += list(args)
    if config is not None:
        # last: --configfile takes several values and would swallow targets after it
        cmd += ["--configfile", str(write_config(workdir, config))]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL, env=None if env is None else {**os.environ, **env},
    )
    proc.stdout = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


@dataclass(frozen=True)
class Job:
    rule: str
    wildcards: dict
    resources: dict
    reason: str


def _pairs(line: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in line.split(", ") if "=" in item)


def planned_jobs(output: str) -> list[Job]:
    """Every job a dry-run (``-n``) plans, with wildcards, resources and reason."""
    jobs = []
    for rule, body in _JOB_RE.findall(output):
        fields = dict(re.findall(r"^\s+(\w+): (.*)$", body, re.M))
        jobs.append(Job(rule, _pairs(fields.get("wildcards", "")),
                        _pairs(fields.get("resources", "")), fields.get("reason", "")))
    return jobs


def job_keys(jobs: list[Job]) -> set[tuple[str, str]]:
    """(rule, dataset) of each job that has a dataset wildcard."""
    return {(j.rule, j.wildcards["dataset"]) for j in jobs if "dataset" in j.wildcards}


def snapshot(root: Path, under: str = "results") -> dict[str, tuple[int, str]]:
    """Relative path -> (mtime_ns, sha256) of every file under ``root/under``."""
    base = root / under
    out = {}
    for path in sorted(base.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = (
                path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()
            )
    return out
