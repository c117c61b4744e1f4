"""DDPM noise schedules and the forward process q(x_t | x_0)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

BETA_MIN, BETA_MAX = 1e-4, 0.9999


def cosine_betas(timesteps: int, s: float = 0.008) -> torch.Tensor:
    """Betas of the cosine schedule (Nichol & Dhariwal 2021), clipped to [1e-4, 0.9999], float64."""
    t = torch.arange(timesteps + 1, dtype=torch.float64) / timesteps
    f = torch.cos((t + s) / (1 + s) * math.pi / 2) ** 2
    alpha_bar = f / f[0]
    betas = 1 - alpha_bar[1:] / alpha_bar[:-1]
    return betas.clamp(BETA_MIN, BETA_MAX)


def linear_betas(timesteps: int) -> torch.Tensor:
    """Betas of the linear schedule of Ho et al. (1e-4 .. 0.02 over 1000 steps), float64.

    Rescaled for other step counts so that the total noise added stays that of 1000 steps.
    """
    scale = 1000 / timesteps
    return torch.linspace(scale * 1e-4, min(scale * 0.02, BETA_MAX), timesteps, dtype=torch.float64)


@dataclass(frozen=True)
class NoiseSchedule:
    """Per-step constants of a discrete DDPM, indexed by t in [0, timesteps).

    Kept in float64 on the CPU; callers take the Python floats they need, so the schedule
    never limits the precision or the device of the samples.
    """

    betas: torch.Tensor

    @classmethod
    def create(cls, kind: str, timesteps: int) -> NoiseSchedule:
        """``kind`` is 'cosine' or 'linear'."""
        if kind == "cosine":
            return cls(cosine_betas(timesteps))
        if kind == "linear":
            return cls(linear_betas(timesteps))
        raise ValueError(f"unknown noise schedule '{kind}' (cosine, linear)")

    @property
    def timesteps(self) -> int:
        return len(self.betas)

    @property
    def alpha_bar(self) -> torch.Tensor:
        """Cumulative product of (1 - beta): the signal share left at each t, float64 (T,)."""
        return torch.cumprod(1 - self.betas, dim=0)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """Sample x_t ~ q(x_t | x_0) = N(sqrt(ab_t) x_0, (1 - ab_t) I).

        ``x0`` and ``noise`` are (N, C, ...) tensors, ``t`` an (N,) integer tensor.
        """
        # index on the CPU and cast before moving: MPS has no float64
        ab = self.alpha_bar[t.cpu()].to(x0.dtype).to(x0.device)
        ab = ab.view(-1, *([1] * (x0.ndim - 1)))
        return ab.sqrt() * x0 + (1 - ab).sqrt() * noise
