"""The noise-predicting U-Net of the original method, for 2D and 3D images.

4 resolution levels with F, 2F, 4F, 8F channels; two 3x3 convolutions with InstanceNorm and
PReLU per block; a 4x4 stride-2 convolution down; a 1x1 convolution and pixel shuffle up; skip
concatenation; a sinusoidal time embedding through an MLP, added in every block; no attention.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

TIME_DIM = 128


def _conv(spatial_dims: int) -> type[nn.Module]:
    return nn.Conv2d if spatial_dims == 2 else nn.Conv3d


class _SharedStatistics:
    """InstanceNorm that can normalise with given statistics instead of its input's own, and
    record its input's statistics: so the tiles of one image share one normalisation.

    Each tile normalised by its own mean and variance is a different function of the same
    pixels: a tile of bright tissue and a tile of mostly background then disagree on the
    background they draw, and the image steps where they meet (docs/diffusion.md, "Seams").
    """

    shared: tuple[torch.Tensor, torch.Tensor] | None = None
    recorded: list[tuple[torch.Tensor, torch.Tensor]] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.recorded is not None:
            var, mean = torch.var_mean(x.float(), dim=tuple(range(2, x.ndim)), unbiased=False)
            self.recorded.append((mean, var))
            return self._normalize(x, mean, var)
        if self.shared is None:
            return super().forward(x)
        return self._normalize(x, *self.shared)

    def _normalize(self, x: torch.Tensor, mean: torch.Tensor, var: torch.Tensor) -> torch.Tensor:
        """``x`` (N, C, *S) normalised with ``mean`` and ``var`` (N, C), then scaled: what
        InstanceNorm does with its own statistics. As one sample of N * C channels through
        batch_norm's fused kernel, the statistics of every image and channel as its running
        statistics."""
        n, c = x.shape[:2]
        y = F.batch_norm(x.reshape(1, n * c, *x.shape[2:]), mean.reshape(-1).to(x.dtype),
                         var.reshape(-1).to(x.dtype), self.weight.repeat(n).to(x.dtype),
                         self.bias.repeat(n).to(x.dtype), training=False, eps=self.eps)
        return y.reshape(x.shape)


class InstanceNorm2d(_SharedStatistics, nn.InstanceNorm2d):
    pass


class InstanceNorm3d(_SharedStatistics, nn.InstanceNorm3d):
    pass


def _norm(spatial_dims: int, channels: int) -> nn.Module:
    # affine=True: the plain InstanceNorm has no scale/shift, which would cost the network
    # its ability to keep absolute intensity per block.
    cls = InstanceNorm2d if spatial_dims == 2 else InstanceNorm3d
    return cls(channels, affine=True)


NormStatistics = list[tuple[torch.Tensor, torch.Tensor]]


def has_norm_layers(net: object) -> bool:
    """Whether ``net`` is a module with InstanceNorm layers whose statistics can be shared."""
    return isinstance(net, nn.Module) and any(
        isinstance(m, _SharedStatistics) for m in net.modules())


@contextlib.contextmanager
def norm_statistics(
    net: nn.Module, shared: NormStatistics | None = None
) -> Iterator[NormStatistics]:
    """Within the block, ``net``'s InstanceNorm layers normalise with ``shared`` (one
    ``(mean, var)`` pair of shape (N, C) per norm layer, in :meth:`nn.Module.modules` order,
    for the N inputs of the next call) instead of each input's own statistics; without
    ``shared`` they record the statistics of their inputs: the yielded list holds them, in the
    same layout, once the block has made one call."""
    norms = [m for m in net.modules() if isinstance(m, _SharedStatistics)]
    if shared is not None and len(shared) != len(norms):
        raise ValueError(f"{len(shared)} statistics for {len(norms)} norm layers")
    recorded: NormStatistics = []
    for i, norm in enumerate(norms):
        norm.shared = None if shared is None else shared[i]
        norm.recorded = [] if shared is None else None
    try:
        yield recorded
        recorded.extend(norm.recorded[-1] for norm in norms if norm.recorded)
    finally:
        for norm in norms:
            norm.shared, norm.recorded = None, None


def timestep_embedding(t: torch.Tensor, dim: int = TIME_DIM) -> torch.Tensor:
    """Sinusoidal embedding of timesteps ``t`` (N,) -> (N, dim) float32."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def pixel_shuffle(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """N-d pixel shuffle: (N, C * f**d, *S) -> (N, C, *(s * f)); torch only has the 2D one."""
    n, c, *spatial = x.shape
    d = len(spatial)
    out_c = c // factor**d
    x = x.reshape(n, out_c, *([factor] * d), *spatial)
    # interleave each factor axis after its spatial axis: (N, C, s1, f1, s2, f2, ...)
    perm = [0, 1] + [i for k in range(d) for i in (2 + d + k, 2 + k)]
    return x.permute(*perm).reshape(n, out_c, *(s * factor for s in spatial))


class Block(nn.Module):
    """Two conv-norm-PReLU layers; the projected time embedding is added after the first."""

    def __init__(self, spatial_dims: int, c_in: int, c_out: int):
        super().__init__()
        conv = _conv(spatial_dims)
        self.conv1 = conv(c_in, c_out, 3, padding=1)
        self.norm1 = _norm(spatial_dims, c_out)
        self.act1 = nn.PReLU(c_out)
        self.time = nn.Linear(TIME_DIM, c_out)
        self.conv2 = conv(c_out, c_out, 3, padding=1)
        self.norm2 = _norm(spatial_dims, c_out)
        self.act2 = nn.PReLU(c_out)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.act1(self.norm1(self.conv1(x)))
        h = h + self.time(temb).view(*temb.shape[:1], -1, *([1] * (x.ndim - 2)))
        return self.act2(self.norm2(self.conv2(h)))


class UNet(nn.Module):
    """Predicts the noise in x_t.

    ``forward(x, t)``: ``x`` (N, C, Y, X) or (N, C, Z, Y, X) with every spatial size divisible
    by ``2 ** (levels - 1)``, ``t`` (N,) integer timesteps; returns the noise estimate, same
    shape as ``x``.
    """

    def __init__(self, spatial_dims: int, channels: int = 1, features: int = 16, levels: int = 4):
        super().__init__()
        if spatial_dims not in (2, 3):
            raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims}")
        self.config = {
            "spatial_dims": spatial_dims,
            "channels": channels,
            "features": features,
            "levels": levels,
        }
        conv = _conv(spatial_dims)
        widths = [features * 2**i for i in range(levels)]
        self.time_mlp = nn.Sequential(
            nn.Linear(TIME_DIM, TIME_DIM), nn.PReLU(), nn.Linear(TIME_DIM, TIME_DIM)
        )
        self.enc = nn.ModuleList()
        self.down = nn.ModuleList()
        c_prev = channels
        for i, w in enumerate(widths):
            self.enc.append(Block(spatial_dims, c_prev, w))
            if i < levels - 1:
                # the strided conv already widens to the next level, as in the original
                self.down.append(conv(w, widths[i + 1], 4, stride=2, padding=1))
            c_prev = widths[min(i + 1, levels - 1)]
        self.up = nn.ModuleList()
        self.dec = nn.ModuleList()
        for w_low, w in zip(widths[:0:-1], widths[-2::-1]):
            self.up.append(conv(w_low, w * 2**spatial_dims, 1))
            self.dec.append(Block(spatial_dims, 2 * w, w))
        self.out = conv(features, channels, 1)

    @property
    def multiple(self) -> int:
        """Every spatial input size must be a multiple of this."""
        return 2 ** (self.config["levels"] - 1)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t))
        skips = []
        h = x
        for i, block in enumerate(self.enc):
            h = block(h, temb)
            if i < len(self.down):
                skips.append(h)
                h = self.down[i](h)
        for up, block in zip(self.up, self.dec):
            h = pixel_shuffle(up(h))
            h = block(torch.cat([h, skips.pop()], dim=1), temb)
        return self.out(h)


def build_unet(config: dict[str, Any]) -> UNet:
    """A U-Net from the dict stored as ``UNet.config`` (and in model.pt)."""
    return UNet(
        spatial_dims=int(config["spatial_dims"]),
        channels=int(config["channels"]),
        features=int(config["features"]),
        levels=int(config["levels"]),
    )
