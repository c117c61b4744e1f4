"""Reverse-process samplers that start at t_start (SDEdit) and end at a clean image.

A sampler sees the network only as ``denoise(x, t) -> eps``: the noise estimate for the whole
state ``x`` at integer step ``t``. Tiled synthesis plugs its blended estimate in there, so every
sampler blends tiles at every step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
import torch

from workflow_lib.diffusion.schedule import NoiseSchedule

Denoiser = Callable[[torch.Tensor, int], torch.Tensor]
#: The noise source of a batch: one generator for all of it, or one per sample drawn together,
#: as (generator, rows) pairs splitting the batch's first axis in order.
Generators = torch.Generator | Sequence[tuple[torch.Generator, int]]
SAMPLERS = ("ddpm", "ddim", "dpmpp")


def randn_like(x: torch.Tensor, generator: Generators | None) -> torch.Tensor:
    """Standard normal noise of ``x``'s shape, device and dtype. Per-sample generators give
    each sample the noise it would get drawn alone, whatever is batched with it."""
    if generator is None or isinstance(generator, torch.Generator):
        return torch.randn(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    rows = [n for _, n in generator]
    if sum(rows) != x.shape[0]:
        raise ValueError(f"generators cover {sum(rows)} rows of a batch of {x.shape[0]}")
    return torch.cat([torch.randn((n, *x.shape[1:]), generator=g, device=x.device, dtype=x.dtype)
                      for g, n in generator])


def network_evaluations(sampler: str, t_start: int, steps: int) -> int:
    """Number of network calls a sampler makes from ``t_start``."""
    return t_start if sampler == "ddpm" else len(fast_timesteps(t_start, steps))


def fast_timesteps(t_start: int, steps: int) -> list[int]:
    """``steps`` evenly spaced steps from t_start - 1 down (fewer if t_start is small).

    The grid stops one spacing short of 0: the last evaluation's x_0 estimate is the result,
    as a step to sigma = 0 is exactly that (no extra network call at t = 0).
    """
    steps = max(1, min(steps, t_start))
    ts = np.round(np.linspace(t_start, 0, steps + 1)[:-1]).astype(int) - 1
    return sorted(set(ts.tolist()), reverse=True)


def sdedit_start(
    x0: torch.Tensor, schedule: NoiseSchedule, t_start: int, generator: Generators
) -> torch.Tensor:
    """Noise a guide image ``x0`` in [-1, 1] with q(x_t | x_0) to t = t_start - 1."""
    noise = randn_like(x0, generator)
    t = torch.full((x0.shape[0],), t_start - 1, dtype=torch.long)
    return schedule.q_sample(x0, t, noise)


def _x0(x: torch.Tensor, eps: torch.Tensor, ab: float, clip: bool) -> torch.Tensor:
    x0 = (x - (1 - ab) ** 0.5 * eps) / ab**0.5
    return x0.clamp(-1, 1) if clip else x0


def sample(
    denoise: Denoiser,
    x: torch.Tensor,
    schedule: NoiseSchedule,
    t_start: int,
    sampler: str = "dpmpp",
    steps: int = 20,
    generator: Generators | None = None,
    clip: bool = True,
    progress: Callable[[Iterable[int]], Iterable[int]] = lambda it: it,
) -> torch.Tensor:
    """Denoise ``x`` (the state at t_start - 1, any shape) to a clean sample in [-1, 1].

    ``sampler``: 'ddpm' (ancestral, every step, "fixedlarge" variance: the reference of the
    original method), 'ddim' (deterministic, eta = 0) or 'dpmpp' (DPM-Solver++(2M), Lu et al.
    2022, deterministic); the last two take ``steps`` network evaluations. ``generator`` feeds
    the ddpm noise (one for the batch, or one per sample: :data:`Generators`). ``clip`` clamps
    every x_0 estimate to [-1, 1]. ``progress`` wraps the step iterator (e.g. tqdm).
    """
    if not 1 <= t_start <= schedule.timesteps:
        raise ValueError(f"t_start must be in [1, {schedule.timesteps}], got {t_start}")
    if sampler == "ddpm":
        out = _ddpm(denoise, x, schedule, t_start, generator, clip, progress)
    elif sampler == "ddim":
        out = _ddim(denoise, x, schedule, fast_timesteps(t_start, steps), clip, progress)
    elif sampler == "dpmpp":
        out = _dpmpp(denoise, x, schedule, fast_timesteps(t_start, steps), clip, progress)
    else:
        raise ValueError(f"unknown sampler '{sampler}' ({', '.join(SAMPLERS)})")
    return out.clamp(-1, 1)


def _ddpm(denoise, x, schedule, t_start, generator, clip, progress):
    betas = schedule.betas.tolist()
    ab = schedule.alpha_bar.tolist()
    for t in progress(range(t_start - 1, -1, -1)):
        x0 = _x0(x, denoise(x, t), ab[t], clip)
        ab_prev = ab[t - 1] if t > 0 else 1.0
        # posterior mean of q(x_{t-1} | x_t, x_0) with the estimated x_0
        mean = (ab_prev**0.5 * betas[t] * x0 + (1 - betas[t]) ** 0.5 * (1 - ab_prev) * x) / (
            1 - ab[t]
        )
        if t == 0:
            x = mean
            continue
        # "fixedlarge": variance beta_t, except the posterior variance at t = 1, as in DDPM
        var = betas[t] if t > 1 else betas[1] * (1 - ab[0]) / (1 - ab[1])
        x = mean + var**0.5 * randn_like(x, generator)
    return x


def _ddim(denoise, x, schedule, timesteps, clip, progress):
    ab = schedule.alpha_bar.tolist()
    for i in progress(range(len(timesteps))):
        t = timesteps[i]
        eps = denoise(x, t)
        x0 = _x0(x, eps, ab[t], clip)
        ab_next = ab[timesteps[i + 1]] if i + 1 < len(timesteps) else 1.0
        x = ab_next**0.5 * x0 + (1 - ab_next) ** 0.5 * eps
    return x


def _dpmpp(denoise, x, schedule, timesteps, clip, progress):
    """DPM-Solver++(2M) in the data-prediction form; first order on the first and last step."""
    ab = schedule.alpha_bar.double()
    alpha, sigma = ab.sqrt().tolist(), (1 - ab).sqrt().tolist()
    lam = (ab.sqrt() / (1 - ab).sqrt()).log().tolist()
    x0_prev, h_prev = None, None
    for i in progress(range(len(timesteps))):
        t = timesteps[i]
        x0 = _x0(x, denoise(x, t), ab[t].item(), clip)
        if i + 1 == len(timesteps):
            # the last step goes to sigma = 0, where the first-order solution is x_0 itself
            # (a second-order step there would extrapolate over a huge log-SNR jump)
            return x0
        s = timesteps[i + 1]
        h = lam[s] - lam[t]
        if x0_prev is None:
            d = x0
        else:
            r = h_prev / h
            d = (1 + 1 / (2 * r)) * x0 - (1 / (2 * r)) * x0_prev
        x = (sigma[s] / sigma[t]) * x - alpha[s] * np.expm1(-h) * d
        x0_prev, h_prev = x0, h
    return x
