"""Which torch device train/synthesize run on: config ``device`` (auto|cpu|cuda|mps), ``require_gpu``."""

from __future__ import annotations

import logging

import numpy as np
import torch

from workflow_lib.errors import ConfigError

log = logging.getLogger("cellsynth")


def _mps_available() -> bool:
    return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()


def pick_device(choice: str = "auto", require_gpu: bool = False) -> torch.device:
    """Return the device for ``choice``; auto prefers CUDA, then MPS, then the CPU.

    Logs the pick with ``torch.cuda.is_available()`` and the GPU name. Raises
    :class:`ConfigError` when the requested device is missing, or when ``require_gpu`` is set
    and the pick is the CPU.
    """
    cuda = torch.cuda.is_available()
    mps = _mps_available()
    if choice == "auto":
        device = torch.device("cuda" if cuda else "mps" if mps else "cpu")
    elif choice in ("cuda", "mps", "cpu"):
        if (choice == "cuda" and not cuda) or (choice == "mps" and not mps):
            raise ConfigError("device", f"'{choice}' was requested but is not available here")
        device = torch.device(choice)
    else:
        raise ConfigError("device", f"unknown device '{choice}' (auto, cpu, cuda, mps)")
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else device.type
    log.info(
        "device: %s (%s; torch %s, torch.cuda.is_available()=%s)",
        device, name, torch.__version__, cuda,
    )
    if require_gpu and device.type == "cpu":
        raise ConfigError(
            "require_gpu",
            "is true but no GPU was found (torch.cuda.is_available() is False); "
            "check the node's GPU and that torch was installed with CUDA support",
        )
    return device


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """Mixed-precision type for ``device``: bf16 (or fp16) on CUDA, None (fp32) elsewhere."""
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def generator(device: torch.device, *seeds: int) -> torch.Generator:
    """A torch generator on ``device`` seeded from several integers (e.g. seed, sample index)."""
    state = int(np.random.SeedSequence(list(seeds)).generate_state(1, dtype=np.uint64)[0])
    return torch.Generator(device=device).manual_seed(state & (2**63 - 1))
