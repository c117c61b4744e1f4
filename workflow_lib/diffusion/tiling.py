"""Overlapping tiles blended with a smooth window at every denoising step (MultiDiffusion).

Each step, the network sees batches of tiles; their noise estimates are blended into one
estimate for the whole image, which the sampler then uses. Because the tiles agree on one
state at every step, no seams form; memory for the network grows with the tile batch only.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
import torch


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap``.

    The first tile starts at 0, the last ends at ``size``; the rest are spread evenly.
    """
    if tile >= size:
        return [0]
    stride = max(1, tile - overlap)
    n = math.ceil((size - tile) / stride) + 1
    return sorted(set(np.round(np.linspace(0, size - tile, n)).astype(int).tolist()))


def _ramp(length: int, overlap: int, rise: bool, fall: bool) -> np.ndarray:
    """1D window: raised-cosine ramps of ``overlap`` samples on the sides that meet a neighbour.

    The ramp values never reach 0, so every pixel keeps a positive total weight.
    """
    w = np.ones(length)
    n = min(overlap, length // 2)
    if n > 0:
        ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(n) + 0.5) / n)
        if rise:
            w[:n] = ramp
        if fall:
            w[length - n :] = ramp[::-1]
    return w


class TiledDenoiser:
    """``denoise(x, t)`` for states ``x`` of shape (N, C, *spatial) through tiles of ``tile``.

    ``net(x_tiles, t_tensor) -> eps`` is the network (called in batches of ``batch`` tiles, under
    ``autocast`` when given a dtype). Where one tile covers the image, the result equals a
    direct call of the network on the whole image.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        spatial_shape: Sequence[int],
        tile: Sequence[int],
        overlap: int,
        batch: int,
        device: torch.device,
        autocast_dtype: torch.dtype | None = None,
    ):
        if len(tile) != len(spatial_shape):
            raise ValueError(f"tile {tuple(tile)} does not fit spatial shape {tuple(spatial_shape)}")
        self.net = net
        self.batch = batch
        self.device = device
        self.autocast_dtype = autocast_dtype
        self.tile = [min(t, s) for t, s in zip(tile, spatial_shape)]
        # per axis at most half a tile, so thin 3D tiles (few Z planes) still advance
        overlaps = [min(overlap, t // 2) for t in self.tile]
        starts = [tile_starts(s, t, o) for s, t, o in zip(spatial_shape, self.tile, overlaps)]
        self.slices: list[tuple[slice, ...]] = []
        self.windows: list[torch.Tensor] = []
        weight_sum = torch.zeros(tuple(spatial_shape), dtype=torch.float32, device=device)
        for corner in itertools.product(*starts):
            sl = tuple(slice(c, c + t) for c, t in zip(corner, self.tile))
            axes = [
                _ramp(t, o, rise=c > 0, fall=c + t < s)
                for c, t, s, o in zip(corner, self.tile, spatial_shape, overlaps)
            ]
            window = torch.from_numpy(functools.reduce(np.multiply.outer, axes)).float().to(device)
            weight_sum[sl] += window
            self.slices.append(sl)
            self.windows.append(window)
        self.inv_weight = 1.0 / weight_sum

    @property
    def tiles_per_image(self) -> int:
        return len(self.slices)

    def _net(self, x: torch.Tensor, t: int) -> torch.Tensor:
        tt = torch.full((x.shape[0],), t, dtype=torch.long, device=x.device)
        if self.autocast_dtype is None:
            return self.net(x, tt)
        with torch.autocast(self.device.type, dtype=self.autocast_dtype):
            return self.net(x, tt).float()

    def __call__(self, x: torch.Tensor, t: int) -> torch.Tensor:
        if len(self.slices) == 1:
            return self._net(x, t)
        out = torch.zeros_like(x)
        jobs = [(n, k) for n in range(x.shape[0]) for k in range(len(self.slices))]
        for i in range(0, len(jobs), self.batch):
            chunk = jobs[i : i + self.batch]
            tiles = torch.stack([x[n][(slice(None), *self.slices[k])] for n, k in chunk])
            eps = self._net(tiles, t)
            for (n, k), e in zip(chunk, eps):
                out[n][(slice(None), *self.slices[k])] += e * self.windows[k]
        return out * self.inv_weight

