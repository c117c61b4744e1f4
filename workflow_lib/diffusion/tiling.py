"""Overlapping tiles blended with a smooth window at every denoising step (MultiDiffusion).

Each step, the network sees batches of tiles; their noise estimates are blended into one
estimate for the whole image, which the sampler then uses. Memory for the network grows with
the tile batch only.

Blending alone does not make tiles agree: the U-Net's InstanceNorm layers normalise each tile
by its own statistics, so a tile of bright tissue and a tile of background are denoised by
different functions and draw the background they share at different levels (a seam of 0.09
in the demo's ``tissue``). So the tiles of one image share one normalisation: at every call, a
first pass over up to :data:`STATISTICS_TILES` tiles spread over the image (each normalised by
itself) measures every norm layer's statistics, pooled over those tiles; the second pass
denoises all tiles with them. The statistics are measured anew at every call because they
depend on the timestep (the time embedding enters every block): statistics carried over from
the previous call brightened the images by a fifth. Cost: up to twice the network passes of
images of a few tiles, little more for volumes of hundreds; an image of one tile needs none.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Iterator, Sequence

import numpy as np
import torch

from workflow_lib.diffusion.unet import NormStatistics, has_norm_layers, norm_statistics


#: Tiles per image whose statistics make its shared normalisation (spread over the image).
STATISTICS_TILES = 16


def tile_starts(size: int, tile: int, overlap: int) -> list[int]:
    """Start offsets of tiles of length ``tile`` covering ``size`` with at least ``overlap``.

    The first tile starts at 0, the last ends at ``size``; the rest are spread evenly.
    """
    if tile >= size:
        return [0]
    stride = max(1, tile - overlap)
    n = math.ceil((size - tile) / stride) + 1
    return sorted(set(np.round(np.linspace(0, size - tile, n)).astype(int).tolist()))


def tile_layout(spatial_shape: Sequence[int], tile: Sequence[int], overlap: int) -> list[list[int]]:
    """Per axis, the starts of the tiles :class:`TiledDenoiser` cuts ``spatial_shape`` into:
    tiles of ``tile`` (at most the axis), overlapping by at least ``overlap`` but at most half
    a tile, so thin 3D tiles (few Z planes) still advance."""
    tiles = [min(t, s) for t, s in zip(tile, spatial_shape)]
    return [tile_starts(s, t, min(overlap, t // 2)) for s, t in zip(spatial_shape, tiles)]


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
    ``autocast`` when given a dtype; tiles of the N images share calls); a U-Net's tiles share
    their image's normalisation (see the module doc). Where one tile covers the image, the
    result equals a direct call of the network on the whole image.
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
        overlaps = [min(overlap, t // 2) for t in self.tile]
        starts = tile_layout(spatial_shape, tile, overlap)
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
        self.shared_normalisation = has_norm_layers(net) and len(self.slices) > 1
        count = min(STATISTICS_TILES, len(self.slices))
        self.statistics_tiles = sorted(set(
            np.round(np.linspace(0, len(self.slices) - 1, count)).astype(int).tolist()))

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
            return torch.cat([self._net(x[i : i + self.batch], t)
                              for i in range(0, x.shape[0], self.batch)])
        statistics = self._statistics(x, t) if self.shared_normalisation else None
        out = torch.zeros_like(x)
        for chunk, tiles in self._batches(x, range(len(self.slices))):
            if statistics is None:
                eps = self._net(tiles, t)
            else:
                shared = [tuple(torch.stack([statistics[n][layer][j] for n, _ in chunk])
                                for j in range(2))
                          for layer in range(len(statistics[0]))]
                with norm_statistics(self.net, shared):
                    eps = self._net(tiles, t)
            for (n, k), e in zip(chunk, eps):
                out[n][(slice(None), *self.slices[k])] += e * self.windows[k]
        return out * self.inv_weight

    def _batches(
        self, x: torch.Tensor, tiles: Sequence[int]
    ) -> Iterator[tuple[list[tuple[int, int]], torch.Tensor]]:
        """``(jobs, stacked tiles)`` of at most ``batch`` tiles: the tiles ``tiles`` (indices
        into :attr:`slices`) of every image of ``x``; a job is (image, tile)."""
        jobs = [(n, k) for n in range(x.shape[0]) for k in tiles]
        for i in range(0, len(jobs), self.batch):
            chunk = jobs[i : i + self.batch]
            yield chunk, torch.stack([x[n][(slice(None), *self.slices[k])] for n, k in chunk])

    def _statistics(self, x: torch.Tensor, t: int) -> list[NormStatistics]:
        """Per image of ``x``: every norm layer's (mean, variance) per channel, pooled over
        :attr:`statistics_tiles` (equal weights: the tiles have one size), each tile
        normalised by its own statistics."""
        sums: list[list[tuple[torch.Tensor, torch.Tensor]] | None] = [None] * x.shape[0]
        for chunk, tiles in self._batches(x, self.statistics_tiles):
            with norm_statistics(self.net) as recorded:
                self._net(tiles, t)
            for b, (n, _) in enumerate(chunk):
                moments = [(mean[b], var[b] + mean[b] ** 2) for mean, var in recorded]
                sums[n] = moments if sums[n] is None else [
                    (m + m2, s + s2) for (m, s), (m2, s2) in zip(sums[n], moments)]
        count = len(self.statistics_tiles)
        return [[(m / count, (s / count - (m / count) ** 2).clamp_min(0)) for m, s in image]
                for image in sums]
