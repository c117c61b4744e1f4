"""Failure safety end to end: a SIGKILLed training resumes from its checkpoint, a bad input
fails only its own job under --keep-going, and a GPU the config demands but the node lacks
stops the job loudly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from helpers import (
    TARGETS,
    kill_snakemake_when,
    run_snakemake,
    snapshot,
    write_raw_images,
)

pytestmark = pytest.mark.e2e

MODEL = "results/a/model/model.pt"
CHECKPOINT = "results/a/model/checkpoints/last.pt"


def _checkpoint_step(path: Path) -> int:
    try:
        return int(torch.load(path, map_location="cpu", weights_only=True)["step"])
    except Exception:  # not there yet
        return -1


def test_killed_training_resumes_from_its_checkpoint(pipeline_copy):
    root, config = pipeline_copy
    train = config["datasets"]["a"]["model"]["train"]
    train.update(steps=30, checkpoint_every=2)
    # the build's checkpoint (another config) would be ignored; removed, any checkpoint is ours
    (root / CHECKPOINT).unlink()
    # With a lock, as users run it: the killed run leaves it behind for --unlock.
    kill_snakemake_when(root, config, MODEL, ready=lambda: _checkpoint_step(root / CHECKPOINT) >= 2,
                        what="a new checkpoint")
    killed_at = _checkpoint_step(root / CHECKPOINT)
    assert 2 <= killed_at < 30

    # No complete-looking model: either gone or one Snakemake calls incomplete.
    model = root / MODEL
    if model.exists():
        dry = run_snakemake(root, config, "-n", MODEL, check=False, lock=True).stdout
        assert "incomplete" in dry.lower(), "a killed job left a model.pt that looks complete"

    # The user's recipe: unlock, rerun with --rerun-incomplete.
    run_snakemake(root, config, "--unlock", lock=True)
    run_snakemake(root, config, MODEL, "--rerun-incomplete", lock=True)
    log = (root / "logs/a/train.log").read_text()
    assert "resumed at step" in log, log[-2000:]
    resumed_at = int(log.split("resumed at step")[1].split()[0].rstrip(",.:;"))
    assert resumed_at >= killed_at
    state = torch.load(model, map_location="cpu", weights_only=False)
    assert state, "model.pt is empty"
    assert _checkpoint_step(root / CHECKPOINT) == 30


def test_bad_input_fails_its_job_and_keep_going_finishes_the_rest(pipeline_copy):
    """Data set c holds a text file named .tif; a's changed synthesis still runs to the end."""
    root, config = pipeline_copy
    write_raw_images(root / "raw" / "c", n=1, seed=3)
    (root / "raw" / "c" / "broken.tif").write_text("this is not an image\n")
    config["datasets"]["c"] = {**config["datasets"]["a"], "images": "raw/c/*.tif"}
    config["datasets"]["a"]["synthesis"]["t_start"] += 2
    before = snapshot(root)
    proc = run_snakemake(root, config, "--keep-going", *TARGETS, check=False)
    assert proc.returncode != 0
    assert "raw/c/broken.tif: not a readable TIFF" in proc.stdout, proc.stdout[-4000:]
    assert not (root / "results/c/h5/broken.h5").exists()
    assert (root / "results/c/h5/img0.h5").is_file()  # its sibling converted
    after = snapshot(root)
    redone = {k for k in after if k.startswith("results/a/sim/images/") and after[k] != before.get(k)}
    assert redone, "a's synthesis did not finish beside the failing job"
    assert {k: v for k, v in after.items() if k.startswith("results/b/")} == {
        k: v for k, v in before.items() if k.startswith("results/b/")}


def test_require_gpu_without_gpu_fails_loudly(pipeline_copy):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    root, config = pipeline_copy
    config["require_gpu"] = True
    proc = run_snakemake(root, config, "results/b/model/model.pt", check=False)
    assert proc.returncode != 0
    assert "require_gpu" in proc.stdout and "no GPU" in proc.stdout, proc.stdout[-3000:]
    assert "torch.cuda.is_available()=False" in (root / "logs/b/train.log").read_text()
