"""The workflow on a real (single-node, local) SLURM with profiles/slurm.

tests/cluster/slurm_up.sh starts the cluster (CI runs it before pytest; the fixture runs it
too, a no-op when it is up). Without accounting `sacct` has nothing to say, so the runs here
ask the executor to poll `squeue`; the profile itself keeps the plugin's defaults.
"""

from __future__ import annotations

import copy
import re
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import torch
import yaml

from helpers import (
    GPU_RULES,
    REPO,
    SLURM_PROFILE,
    TARGETS,
    run_snakemake,
    snakemake_command,
)

pytestmark = [pytest.mark.cluster, pytest.mark.e2e]

SLURM_UP = REPO / "tests" / "cluster" / "slurm_up.sh"
# Test-only executor settings: poll squeue (no accounting here), first poll after 2 s.
SLURM_TEST_ARGS = (
    "--slurm-status-command", "squeue",
    "--slurm-init-seconds-before-status-checks", "2",
    "--slurm-keep-successful-logs",
)


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running local SLURM; skips (with slurm_up.sh's reason) where this machine cannot run one.

    Session-scoped, and first in the tests' arguments, so it runs (and skips) before the
    session's built_pipeline is built."""
    try:
        proc = subprocess.run(["bash", str(SLURM_UP)], capture_output=True, text=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail("tests/cluster/slurm_up.sh did not finish in 15 min")
    if proc.returncode == 2:
        pytest.skip(f"no local SLURM: {proc.stderr.strip().splitlines()[-1]}")
    assert proc.returncode == 0, f"slurm_up.sh failed:\n{proc.stderr[-3000:]}"


def slurm_jobs(workdir: Path) -> list[dict[str, str]]:
    """``scontrol`` fields of the SLURM jobs run in ``workdir`` (still known to slurmctld).

    The executor sets each job's Comment to ``rule_<rule>_wildcards_<values>``.
    """
    ids = subprocess.run(
        ["squeue", "--states=all", "--noheader", "--format=%i"],
        capture_output=True, text=True, timeout=30, check=True,
    ).stdout.split()
    jobs = []
    for job_id in ids:
        line = subprocess.run(
            ["scontrol", "show", "job", "--oneliner", job_id],
            capture_output=True, text=True, timeout=30,
        ).stdout
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("WorkDir") == str(workdir):
            jobs.append(fields)
    return jobs


def _rule(comment: str) -> str:
    return re.match(r"rule_(.+?)(_wildcards_.*)?$", comment).group(1)


def _load(path: Path):
    """A comparable form of an output: an array, a dict of arrays/tensors, or bytes."""
    if path.suffix in (".tif", ".tiff"):
        return tifffile.imread(path)
    if path.suffix == ".h5":
        arrays = {}
        with h5py.File(path, "r") as f:
            f.visititems(lambda n, o: arrays.__setitem__(n, o[()])
                         if isinstance(o, h5py.Dataset) else None)
        return arrays
    if path.suffix == ".pt":
        state = torch.load(path, map_location="cpu", weights_only=False)
        return {k: v for k, v in _flatten(state) if isinstance(v, torch.Tensor)}
    return path.read_bytes()


def _flatten(obj, prefix=""):
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _flatten(v, f"{prefix}{k}.")
    else:
        yield prefix.rstrip("."), obj


def _assert_close(a, b, what: str) -> None:
    if isinstance(a, torch.Tensor):
        torch.testing.assert_close(b, a, atol=1e-3, rtol=1e-3, msg=what)
    elif a.dtype.kind == "f":
        assert a.shape == b.shape and a.dtype == b.dtype, what
        np.testing.assert_allclose(b, a, atol=1e-3, err_msg=what)
    else:
        np.testing.assert_array_equal(b, a, err_msg=what)
        assert a.dtype == b.dtype, what


def assert_same_outputs(ref: Path, got: Path, dataset: str) -> None:
    """Arrays equal (float outputs of the network to 1e-3: thread counts differ), CSVs equal."""
    compared = 0
    for path in sorted((ref / "results" / dataset).rglob("*")):
        if path.suffix not in (".tif", ".h5", ".csv", ".pt") or "checkpoints" in path.parts:
            continue
        rel = path.relative_to(ref)
        assert (got / rel).is_file(), f"{rel} missing from the SLURM run"
        a, b = _load(path), _load(got / rel)
        if isinstance(a, dict):
            assert a.keys() == b.keys(), rel
            for k in a:
                _assert_close(a[k], b[k], f"{rel}: {k}")
        elif isinstance(a, np.ndarray):
            _assert_close(a, b, str(rel))
        else:
            assert a == b, rel
        compared += 1
    assert compared >= 5, f"only {compared} outputs compared"


def test_tiny_pipeline_on_slurm_matches_local_run(slurm, tmp_path, built_pipeline):
    ref_root, ref_config = built_pipeline
    config = {"datasets": {"a": copy.deepcopy(ref_config["datasets"]["a"])}}
    (tmp_path / "raw").mkdir()
    subprocess.run(["cp", "-r", str(ref_root / "raw" / "a"), str(tmp_path / "raw")], check=True)

    proc = run_snakemake(tmp_path, config, *TARGETS, *SLURM_TEST_ARGS, "--jobs", "4",
                         profile=SLURM_PROFILE, cores=None, timeout=1200)
    assert "has been submitted with SLURM jobid" in proc.stdout

    jobs = slurm_jobs(tmp_path)
    rules = {_rule(f["Comment"]) for f in jobs}
    # the tiny pipeline calibrates nothing, so it has no edge trial (its SLURM resources: the
    # dry-run of tests/test_profiles.py)
    gpu_rules = [rule for rule in GPU_RULES if rule != "calibrate_edges"]
    assert {*gpu_rules, "convert_image", "index_dataset", "simulate_chunk"} <= rules, rules
    for fields in jobs:
        comment = fields["Comment"]
        rule = _rule(comment)
        assert fields["JobState"] == "COMPLETED", (comment, fields["JobState"])
        if rule in GPU_RULES:
            assert fields.get("TresPerJob") == "gres:gpu:1", (comment, fields)
            assert fields.get("CpusPerTres", "").startswith("gres:gpu:"), (comment, fields)
        else:
            assert "gpu" not in fields.get("TresPerJob", "") + fields.get("TresPerNode", ""), (
                comment, fields)
    for rule in gpu_rules:
        logs = list((tmp_path / ".snakemake" / "slurm_logs" / f"rule_{rule}").rglob("*.log"))
        assert logs, f"no SLURM log of {rule}"
    # Each GPU job says which device it got.
    for log in ("logs/a/train.log", "logs/a/sim/synthesize/0-0.log", "logs/a/sim/evaluate.log"):
        assert "torch.cuda.is_available()=" in (tmp_path / log).read_text(), log

    assert_same_outputs(ref_root, tmp_path, "a")


GRES_SNAKEFILE = """
rule all:
    input: "gpu.txt"

rule gpu_job:
    output: "gpu.txt"
    resources: gpu=1
    shell: "echo done > {output}"
"""


def test_gres_switch_of_the_docs(slurm, tmp_path):
    """docs/cluster.md: `gpu: 0` + `gres: "gpu:1"` in set-resources submits with --gres."""
    profile = yaml.safe_load((SLURM_PROFILE / "config.yaml").read_text())
    profile["set-resources"] = {"gpu_job": {"gpu": 0, "gres": "gpu:1", "mem_mb": 1000}}
    (tmp_path / "profile").mkdir()
    (tmp_path / "profile" / "config.yaml").write_text(yaml.safe_dump(profile))
    (tmp_path / "Snakefile").write_text(GRES_SNAKEFILE)
    proc = run_snakemake(tmp_path, None, *SLURM_TEST_ARGS, snakefile=tmp_path / "Snakefile",
                         profile=tmp_path / "profile", cores=None, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-4000:]
    (fields,) = [f for f in slurm_jobs(tmp_path) if f["Comment"].startswith("rule_gpu_job")]
    assert fields["JobState"] == "COMPLETED"
    assert "gres:gpu:1" in fields.get("TresPerNode", ""), fields


def test_cancelled_training_is_resubmitted_and_resumes(slurm, pipeline_copy):
    """A training job killed by SLURM (scancel, as at a time limit or preemption) is resubmitted
    by the profile's `retries` and continues from its last checkpoint."""
    root, config = pipeline_copy
    config["datasets"]["a"]["model"]["train"].update(steps=30, checkpoint_every=2)
    checkpoint = root / "results/a/model/checkpoints/last.pt"
    checkpoint.unlink()  # the build's (another config): any checkpoint now is this run's
    cmd = snakemake_command(root, config, "results/a/model/model.pt", *SLURM_TEST_ARGS,
                            profile=SLURM_PROFILE, cores=None, lock=True)
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 600
        while _step(checkpoint) < 2:
            assert proc.poll() is None, proc.stdout.read()[-4000:]
            assert time.monotonic() < deadline, "no checkpoint within 600 s"
            time.sleep(0.1)
        job_id = next(f["JobId"] for f in slurm_jobs(root)
                      if f["Comment"].startswith("rule_train_model_wildcards_a")
                      and f["JobState"] == "RUNNING")
        subprocess.run(["scancel", job_id], check=True, timeout=30)
        out, _ = proc.communicate(timeout=900)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out[-4000:]
    assert "resumed at step" in (root / "logs/a/train.log").read_text()
    assert _step(checkpoint) == 30
    states = sorted(f["JobState"] for f in slurm_jobs(root)
                    if f["Comment"].startswith("rule_train_model_wildcards_a"))
    assert states == ["CANCELLED", "COMPLETED"], states


def _step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except Exception:  # not written yet
        return -1
