"""The one way the tests run Snakemake, and a parser of its dry-run plans."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from helpers import REPO

SNAKEFILE = REPO / "Snakefile"
SLURM_PROFILE = REPO / "profiles" / "slurm"
LOCAL_PROFILE = REPO / "profiles" / "local"
# Rules that ask for a GPU.
GPU_RULES = ("train_model", "calibrate_edges", "synthesize_chunk", "evaluate_reference",
             "evaluate_simulation")
# GPU rules whose runtime (and memory) the rule sizes to the job, not the profile.
SIZED_BY_RULE = {"synthesize_chunk": ("runtime",), "evaluate_reference": ("mem_mb", "runtime"),
                 "evaluate_simulation": ("mem_mb", "runtime")}
# Every target rule.
TARGETS = ("all", "prepare", "train", "simulate", "sketch", "synthesize", "evaluate")


def write_config(workdir: Path, config: dict, name: str = "config.yaml") -> Path:
    """``config`` as ``workdir/name``, keys in the dict's own order (tests reorder them)."""
    path = workdir / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def snakemake_command(
    workdir: Path,
    config: dict | None,
    *args: str,
    cores: int | None = 2,
    profile: Path | None = None,
    snakefile: Path = SNAKEFILE,
    lock: bool = False,
) -> list[str]:
    """The command line that runs ``snakefile`` (the repo's by default) in ``workdir``.

    ``config`` is written to ``workdir/config.yaml`` and passed as ``--configfile``, last:
    options that take several values (--configfile, --forcerun, --allowed-rules) end only at
    the next option, so the caller's targets and options come first. ``cores`` None leaves
    ``--cores`` out (a profile's ``jobs`` decides); ``lock`` False adds ``--nolock``.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "snakemake", *args, "-s", str(snakefile),
           "--directory", str(workdir)]
    if cores is not None:
        cmd += ["--cores", str(cores)]
    if not lock:
        cmd.append("--nolock")
    if profile is not None:
        cmd += ["--profile", str(profile)]
    if config is not None:
        cmd += ["--configfile", str(write_config(workdir, config))]
    return cmd


def kill_snakemake_when(
    workdir: Path, config: dict | None, *args: str, ready: Callable[[], bool], what: str,
    timeout: float = 300,
) -> None:
    """Run Snakemake (with its lock, as users do) until ``ready()``, then SIGKILL it and its
    jobs together, like a node failure: its own session, the whole process group.

    Fails when Snakemake ends first or ``what`` does not happen within ``timeout`` seconds.
    """
    proc = subprocess.Popen(
        snakemake_command(workdir, config, *args, lock=True),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not ready():
            assert proc.poll() is None, f"snakemake ended before {what}"
            assert time.monotonic() < deadline, f"{what}: not within {timeout} s"
            time.sleep(0.02)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def run_snakemake(
    workdir: Path,
    config: dict | None,
    *args: str,
    check: bool = True,
    timeout: float = 600,
    cores: int | None = 2,
    profile: Path | None = None,
    snakefile: Path = SNAKEFILE,
    lock: bool = False,
) -> subprocess.CompletedProcess:
    """Run Snakemake (:func:`snakemake_command`) in ``workdir``, stdin from /dev/null.

    Returns the completed process with stdout and stderr merged into ``stdout``; ``check``
    raises with the tail of the output when Snakemake fails; ``timeout`` in seconds.
    """
    cmd = snakemake_command(workdir, config, *args, cores=cores, profile=profile,
                            snakefile=snakefile, lock=lock)
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{proc.stdout[-6000:]}")
    return proc


# A job in a dry-run: "rule NAME:" then indented "key: value" lines.
_JOB_RE = re.compile(r"^(?:local)?(?:rule|checkpoint) (\w+):\n((?:[ \t]+\S.*\n?)*)", re.M)


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
