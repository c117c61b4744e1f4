"""What the bench scripts that run the whole workflow on a data set of their own share."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def arguments(description: str) -> argparse.Namespace:
    """``--workdir``, ``--steps`` (diffusion training steps, 500) and ``--cores`` (2)."""
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=500, help="diffusion training steps")
    ap.add_argument("--cores", default="2")
    return ap.parse_args()


def run_workflow(root: Path, config: dict, cores: str, target: str = "evaluate") -> None:
    """Write ``config`` to ``root/config.yaml`` and run the workflow's ``target`` there."""
    (root / "config.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    subprocess.run(
        [sys.executable, "-m", "snakemake", target, "-s", str(REPO / "Snakefile"),
         "--directory", str(root), "--cores", cores, "--configfile", str(root / "config.yaml")],
        check=True,
    )
