"""Training loop: random patches, noise prediction, EMA, checkpoints and resume after a kill.

Every step draws its patches, timesteps and noise from generators seeded by (seed, step), and
checkpoints hold the optimiser and EMA states, so a run resumed from a checkpoint continues
exactly as the uninterrupted run would have (on the same device). Nothing depends on the total
step count, so raising ``train.steps`` continues from the last checkpoint: its hash leaves out
the keys of :data:`RESUME_FREE`.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from workflow_lib.device import autocast_dtype
from workflow_lib.diffusion.data import PatchSampler
from workflow_lib.diffusion.model_io import load_tensors
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.settings import ModelSettings
from workflow_lib.diffusion.unet import UNet
from workflow_lib.errors import InputError
from workflow_lib.io import atomic_path

log = logging.getLogger("cellsynth")

CHECKPOINT = "last.pt"
#: ``model.train`` keys that do not change what the weights learn up to a given step: a
#: checkpoint resumes across changes of these (more steps continue training).
RESUME_FREE = ("steps", "checkpoint_every", "val_every", "val_batches")
# Seed stream tags, so training steps and validation never share random numbers.
_TRAIN, _VAL = 0, 1


@dataclass
class History:
    """Loss per training step and validation loss (EMA weights) at its steps."""

    loss: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)


def config_hash(meta: Mapping[str, Any]) -> str:
    """Fingerprint of a plain mapping (sorted JSON)."""
    return hashlib.sha256(json.dumps(meta, sort_keys=True).encode()).hexdigest()[:16]


def resume_hash(meta: Mapping[str, Any]) -> str:
    """Fingerprint of what shapes the weights learnt so far: ``meta`` without the
    :data:`RESUME_FREE` keys of ``meta["model"]["train"]``. A checkpoint resumes only on a match."""
    learnt = dict(meta)
    model = learnt.get("model")
    if isinstance(model, Mapping) and isinstance(model.get("train"), Mapping):
        train = {k: v for k, v in model["train"].items() if k not in RESUME_FREE}
        learnt["model"] = {**model, "train": train}
    return config_hash(learnt)


def _batch(
    sampler: PatchSampler, schedule: NoiseSchedule, n: int, seeds: Sequence[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(x_t, t, noise) on the CPU for one step, fully determined by ``seeds``."""
    x0 = torch.from_numpy(sampler.batch(np.random.default_rng(list(seeds)), n))
    gen = torch.Generator().manual_seed(
        int(np.random.SeedSequence(list(seeds)).generate_state(1)[0])
    )
    t = torch.randint(0, schedule.timesteps, (n,), generator=gen)
    noise = torch.randn(x0.shape, generator=gen)
    return schedule.q_sample(x0, t, noise), t, noise


class Trainer:
    """Trains a :class:`UNet` on patches from ``sampler``; see :meth:`run`.

    ``model``: the network, schedule and training settings (:class:`.settings.ModelSettings`);
    ``meta`` a plain dict of everything that shapes what is learnt
    (:func:`resume_hash` of it decides whether a checkpoint may be resumed; ``also_resume``:
    further hashes accepted, e.g. of checkpoints written before the hash left out the step
    count). ``init``: a state dict to start from (fine-tuning) instead of random weights.
    """

    def __init__(
        self,
        model: ModelSettings,
        spatial_dims: int,
        channels: int,
        meta: Mapping[str, Any],
        device: torch.device,
        init: Mapping[str, torch.Tensor] | None = None,
        also_resume: Sequence[str] = (),
    ):
        self.model = model
        self.train_settings = model.train
        self.meta = dict(meta)
        self.hash = resume_hash(self.meta)
        self.also_resume = tuple(also_resume)
        self.device = device
        self.schedule = NoiseSchedule.create(model.schedule, model.timesteps)
        torch.manual_seed(model.train.seed)
        self.net = UNet(spatial_dims, channels, model.features, model.levels)
        if init is not None:
            self.net.load_state_dict(init)
        self.net.to(device)
        self.ema = copy.deepcopy(self.net).requires_grad_(False)
        self.opt = torch.optim.RAdam(self.net.parameters(), lr=model.train.lr)
        self.amp = autocast_dtype(device)
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp == torch.float16)
        self.history = History()
        self.step = 0

    def state(self) -> dict[str, Any]:
        return {
            "hash": self.hash,
            "step": self.step,
            "net": self.net.state_dict(),
            "ema": self.ema.state_dict(),
            "opt": self.opt.state_dict(),
            "scaler": self.scaler.state_dict(),
            "history": asdict(self.history),
        }

    def save_checkpoint(self, path: Path) -> None:
        with atomic_path(path) as tmp:
            torch.save(self.state(), tmp)

    def try_resume(self, path: Path) -> bool:
        """Load ``path`` when it exists and was made with the same config; True if resumed."""
        if not path.is_file():
            return False
        try:
            state = load_tensors(path, self.device)
        except InputError as exc:  # a half-written or foreign file: start over, say why
            log.warning("checkpoint %s; training from scratch", exc)
            return False
        found = state.get("hash") if isinstance(state, dict) else None
        if found != self.hash and found not in self.also_resume:
            log.warning(
                "checkpoint %s was made with another config (hash %s, now %s); training from scratch",
                path, found, self.hash,
            )
            return False
        self.net.load_state_dict(state["net"])
        self.ema.load_state_dict(state["ema"])
        self.opt.load_state_dict(state["opt"])
        self.scaler.load_state_dict(state["scaler"])
        self.history = History(**state["history"])
        self.step = int(state["step"])
        log.info("resumed at step %d from %s", self.step, path)
        return True

    def _loss(self, net: UNet, xt: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        xt, t, noise = (v.to(self.device, non_blocking=True) for v in (xt, t, noise))
        with torch.autocast(self.device.type, dtype=self.amp, enabled=self.amp is not None):
            pred = net(xt, t)
        return torch.nn.functional.mse_loss(pred.float(), noise)

    def _ema_update(self) -> None:
        # warm-up: early weights change fast, so a short effective horizon at the start
        decay = min(self.train_settings.ema, (1 + self.step) / (10 + self.step))
        ema_p = list(self.ema.parameters())
        torch._foreach_lerp_(ema_p, [p.detach() for p in self.net.parameters()], 1 - decay)

    def validate(self, batches: list[tuple[torch.Tensor, ...]]) -> float:
        with torch.inference_mode():
            return float(np.mean([self._loss(self.ema, *b).item() for b in batches]))

    def run(
        self,
        train: PatchSampler,
        val: PatchSampler | None,
        checkpoint: Path,
        progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
        refresh: Callable[["Trainer"], None] | None = None,
    ) -> None:
        """Train up to ``train.steps``, resuming from ``checkpoint`` where possible.

        Validation loss (EMA weights, fixed patches/timesteps/noise from ``val``) every
        ``val_every`` steps and at the end; a checkpoint every ``checkpoint_every`` steps.
        ``refresh(trainer)`` (e.g. redraw the figures) every ``val_every`` steps before the end.
        A checkpoint at or past ``train.steps`` ends the run at once with its weights.
        """
        cfg = self.train_settings
        seed, n = cfg.seed, cfg.batch_size
        if self.try_resume(checkpoint) and self.step >= cfg.steps:
            if self.step > cfg.steps:
                log.info(
                    "train.steps (%d) is below the checkpoint's step %d: finishing at once with "
                    "the checkpoint's weights (%d steps trained)",
                    cfg.steps, self.step, self.step,
                )
            else:
                log.info("training had already reached train.steps (%d)", self.step)
            return
        val_batches = [
            _batch(val, self.schedule, n, (seed, _VAL, i)) for i in range(cfg.val_batches)
        ] if val is not None else []
        self.net.train()
        for step in progress(range(self.step, cfg.steps)):
            loss = self._loss(self.net, *_batch(train, self.schedule, n, (seed, _TRAIN, step)))
            self.opt.zero_grad(set_to_none=True)
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            self.step = step + 1
            self._ema_update()
            self.history.loss.append(loss.item())
            last = self.step == cfg.steps
            if val_batches and (self.step % cfg.val_every == 0 or last):
                self.history.val_steps.append(self.step)
                self.history.val_loss.append(self.validate(val_batches))
                log.info(
                    "step %d: train loss %.4f, val loss %.4f",
                    self.step, np.mean(self.history.loss[-cfg.val_every:]), self.history.val_loss[-1],
                )
            if self.step % cfg.checkpoint_every == 0 or last:
                self.save_checkpoint(checkpoint)
            if refresh is not None and self.step % cfg.val_every == 0 and not last:
                refresh(self)
                self.net.train()
