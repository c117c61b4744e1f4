"""The tiny two-data-set pipeline built through every stage, and snapshots of its files.

conftest.py builds it once per session (fixture ``built_pipeline``); the rerun, failure and
cluster tests work on copies (fixture ``pipeline_copy`` or :func:`copy_workdir`).
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

from helpers.configs import two_dataset_config
from helpers.snakemake import TARGETS, run_snakemake


def build_pipeline(root: Path) -> dict:
    """Build :func:`~helpers.configs.two_dataset_config` in ``root`` through every stage.

    Returns the config; checks that a dry-run afterwards has nothing left to do.
    """
    config = two_dataset_config(root)
    run_snakemake(root, config, *TARGETS)
    assert "Nothing to be done" in run_snakemake(root, config, "-n", *TARGETS).stdout
    return config


def copy_workdir(src: Path, dst: Path) -> Path:
    """Copy a workdir with mtimes and Snakemake's metadata, so the copy is just as up to date."""
    shutil.copytree(src, dst, symlinks=True)
    return dst


def snapshot(root: Path, under: str = "results") -> dict[str, tuple[int, str]]:
    """Relative path -> (mtime_ns, sha256) of every file under ``root/under``."""
    out = {}
    for path in sorted((root / under).rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = (
                path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest()
            )
    return out
