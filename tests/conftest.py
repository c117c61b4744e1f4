"""Shared fixtures: run the workflow with Snakemake in a temporary directory."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SNAKEFILE = REPO / "Snakefile"


def run_snakemake(
    workdir: Path,
    config: dict | None,
    *args: str,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    """Run ``snakemake`` on the repo's Snakefile in ``workdir`` with ``config`` as --configfile.

    Returns the completed process (stdout and stderr merged into ``stdout``).
    """
    workdir.mkdir(parents=True, exist_ok=True)
    # Options that take several values (--configfile, --forcerun) end at the next option,
    # so the caller's targets and options come first and --configfile last.
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(SNAKEFILE),
           "--directory", str(workdir), "--cores", "2", "--nolock"]
    if config is not None:
        config_path = workdir / "config.yaml"
        config_path.write_text(yaml.safe_dump(config))
        cmd += ["--configfile", str(config_path)]
    proc = subprocess.run(
        cmd, capture_output=True, text=True, timeout=timeout,
        stdin=subprocess.DEVNULL,
    )
    proc.stdout = proc.stdout + proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


@pytest.fixture
def snakemake_run():
    """The :func:`run_snakemake` function, as a fixture."""
    return run_snakemake


@pytest.fixture
def one_torch_thread():
    """Tiny tensors run faster on one thread than on OpenMP threads fighting for 2 busy cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
