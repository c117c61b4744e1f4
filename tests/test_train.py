"""Training: patch streaming, loss going down, checkpoint/resume (also after SIGKILL)."""

from __future__ import annotations

import copy
import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from helpers import write_h5_images
from workflow_lib.dataset import index_files
from workflow_lib.diffusion.data import PatchSampler
from workflow_lib.diffusion.train import _VAL, CHECKPOINT, Trainer, _batch
from workflow_lib.errors import InputError
from workflow_lib.workflow.config import model_settings

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]
CPU = torch.device("cpu")
MODEL = {
    "patch_size": [16, 16], "features": 4, "levels": 4, "timesteps": 1000, "schedule": "cosine",
    "train": {"steps": 6, "batch_size": 2, "lr": 1e-3, "seed": 0, "ema": 0.9, "augment": True,
              "checkpoint_every": 2, "val_every": 2, "val_batches": 1},
}



def _cfg(**train) -> dict:
    cfg = copy.deepcopy(MODEL)
    cfg["train"].update(train)
    return cfg


def _train(tmp_path: Path, cfg: dict, files: list[Path], ckpt_dir: str = "ckpt") -> Trainer:
    trainer = Trainer(model_settings(cfg), 2, 1, {"model": cfg}, CPU)
    with PatchSampler(files, cfg["patch_size"], 1, True) as train, \
            PatchSampler(files, cfg["patch_size"], 1, False) as val:
        trainer.run(train, val, tmp_path / ckpt_dir / CHECKPOINT)
    return trainer


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))


def test_patches_stream_with_padding_and_range(tmp_path):
    files = write_h5_images(tmp_path, n=1, shape=(1, 12, 40))
    with PatchSampler(files, [16, 16], 1, augment=True) as s:
        batch = s.batch(np.random.default_rng(0), 3)
    assert batch.shape == (3, 1, 16, 16) and batch.dtype == np.float32
    assert batch.min() >= -1 and batch.max() <= 1


def test_patch_sampler_errors(tmp_path):
    files = write_h5_images(tmp_path, n=1, shape=(2, 20, 20))
    with pytest.raises(InputError, match=r"img0.h5: 'data/image' has shape \(2, 20, 20\)"):
        PatchSampler(files, [16, 16], 1, augment=False)
    with pytest.raises(InputError, match="train split of the index is empty"):
        PatchSampler([], [16, 16], 1, augment=False)


def test_read_index(tmp_path):
    (tmp_path / "index").mkdir()
    (tmp_path / "index/train.csv").write_text("path,shape\n../h5/a.h5,1x8x8\n")
    assert index_files(tmp_path / "index/train.csv") == {"a": tmp_path / "index/../h5/a.h5"}
    (tmp_path / "index/bad.csv").write_text("file\nx\n")
    with pytest.raises(InputError, match="bad.csv: has no 'path' column"):
        index_files(tmp_path / "index/bad.csv")


def test_training_lowers_the_loss(tmp_path):
    files = write_h5_images(tmp_path)
    cfg = _cfg(steps=40, batch_size=4, lr=3e-3, ema=0.0, val_every=40, val_batches=2, checkpoint_every=40)
    cfg["features"] = 8
    trainer = Trainer(model_settings(cfg), 2, 1, {"model": cfg}, CPU)
    with PatchSampler(files, cfg["patch_size"], 1, True) as train, \
            PatchSampler(files, cfg["patch_size"], 1, False) as val:
        batches = [_batch(val, trainer.schedule, 4, (0, _VAL, i)) for i in range(2)]
        before = trainer.validate(batches)
        trainer.run(train, val, tmp_path / "ckpt" / CHECKPOINT)
    assert trainer.history.val_loss[-1] < 0.7 * before
    assert len(trainer.history.loss) == 40


def test_resume_gives_the_same_weights_as_an_uninterrupted_run(tmp_path, monkeypatch):
    files = write_h5_images(tmp_path)
    full = _train(tmp_path, MODEL, files, "full")

    original = Trainer.save_checkpoint

    def crash_after_step_4(self, path):
        original(self, path)
        if self.step == 4:
            raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "save_checkpoint", crash_after_step_4)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path, MODEL, files, "split")
    monkeypatch.setattr(Trainer, "save_checkpoint", original)
    resumed = _train(tmp_path, MODEL, files, "split")
    assert _same_weights(full.net, resumed.net) and _same_weights(full.ema, resumed.ema)
    assert full.history == resumed.history


def test_checkpoint_of_another_config_is_not_resumed(tmp_path, caplog):
    files = write_h5_images(tmp_path)
    _train(tmp_path, _cfg(steps=2), files)
    with caplog.at_level(logging.WARNING, logger="cellsynth"):
        other = _train(tmp_path, _cfg(steps=2, lr=5e-4), files)
    assert "made with another config" in caplog.text
    assert len(other.history.loss) == 2  # trained from step 0


KILLABLE = textwrap.dedent(
    """
    import json, logging, sys, time
    import torch
    from pathlib import Path
    sys.path.insert(0, {repo!r})
    from workflow_lib.diffusion.data import PatchSampler
    from workflow_lib.diffusion.train import CHECKPOINT, Trainer
    from workflow_lib.workflow.config import model_settings
    CPU = torch.device("cpu")
    logging.basicConfig(level=logging.INFO)
    torch.set_num_threads(1)
    cfg = json.loads({cfg!r})
    files = sorted(Path({data!r}).glob("*.h5"))
    trainer = Trainer(model_settings(cfg), 2, 1, {{"model": cfg}}, CPU)
    slow = sys.argv[2] == "slow"  # stretch the run so the test can kill it mid-way
    with PatchSampler(files, cfg["patch_size"], 1, True) as tr, PatchSampler(files, cfg["patch_size"], 1, False) as va:
        trainer.run(tr, va, Path(sys.argv[1]) / CHECKPOINT,
                    lambda it: (time.sleep(0.5 * slow) or s for s in it))
    torch.save(trainer.ema.state_dict(), Path(sys.argv[1]) / "final.pt")
    """
)


def test_sigkill_during_training_then_resume(tmp_path):
    write_h5_images(tmp_path / "data")
    script = tmp_path / "killable.py"
    cfg = json.dumps(_cfg(steps=12, checkpoint_every=3))
    script.write_text(KILLABLE.format(repo=str(REPO), cfg=cfg, data=str(tmp_path / "data")))
    run = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, str(script), str(run), "slow"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    deadline = time.time() + 120
    while not (run / CHECKPOINT).exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    resumed = subprocess.run([sys.executable, str(script), str(run), "fast"],
                             capture_output=True, text=True, check=True)
    assert re.search(r"resumed at step [1-9]", resumed.stderr), resumed.stderr[-2000:]
    subprocess.run([sys.executable, str(script), str(tmp_path / "ref"), "fast"], check=True,
                   capture_output=True)
    a = torch.load(run / "final.pt", weights_only=True)
    b = torch.load(tmp_path / "ref" / "final.pt", weights_only=True)
    assert all(torch.equal(a[k], b[k]) for k in a)
