"""Realism: distances between sets of real and synthetic images, computed offline.

KID and FID (torchmetrics) need a feature network. ImageNet Inception weights would need a
download and describe natural photographs, not fluorescence micrographs. We use
:class:`RandomTextureFeatures`: a fixed, seeded, randomly initialised 3-scale CNN whose
per-channel means and standard deviations of filter responses form the embedding. Statistics
of random filter banks are texture descriptors (random shallow networks synthesise natural
textures about as well as trained ones, Ustyuzhaninov et al., ICLR 2017), and random
embeddings give FID/KID rankings that agree with trained ones (Naeem et al., ICML 2020).
They cover what matters here: intensity levels, noise, blur and edge statistics at 1-8 px
scales. Seeded weights make the numbers comparable across runs, data sets and machines.
Values are only comparable with values from the same network (``seed``, ``width``).

Images are compared as sets of equal-sized 2D patches (3D volumes and time series as their
2D slices / frames), so a handful of images still gives enough samples for KID.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

HIST_BINS = 256
SPECTRUM_BINS = 32


class RandomTextureFeatures(nn.Module):
    """Fixed random CNN embedding: (N, 1, H, W) in [0, 1] -> (N, num_features) float32.

    Three stride-2 blocks (3x3 conv + ReLU) with ``width``, 2 ``width``, 4 ``width`` channels;
    the embedding concatenates the spatial mean and standard deviation of every block's
    channels, so ``num_features = 14 * width``. Weights come from ``seed`` and never train.
    """

    def __init__(self, width: int = 8, seed: int = 0):
        super().__init__()
        generator = torch.Generator().manual_seed(seed)
        channels = [1, width, 2 * width, 4 * width]
        self.blocks = nn.ModuleList(
            nn.Conv2d(cin, cout, 3, stride=2, padding=1) for cin, cout in zip(channels, channels[1:])
        )
        with torch.no_grad():
            for conv in self.blocks:
                # He-normal weights keep activations of the same order through the blocks.
                fan_in = conv.in_channels * 9
                conv.weight.copy_(
                    torch.randn(conv.weight.shape, generator=generator) * math.sqrt(2 / fan_in)
                )
                conv.bias.copy_(0.1 * torch.randn(conv.bias.shape, generator=generator))
        self.requires_grad_(False)
        self.eval()
        self.num_features = 2 * sum(channels[1:])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float() * 2 - 1
        stats = []
        for conv in self.blocks:
            x = torch.relu(conv(x))
            stats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
        return torch.cat(stats, dim=1)


def slices_2d(array: np.ndarray) -> list[np.ndarray]:
    """All 2D ``(Y, X)`` planes of an array ``(..., Y, X)`` (channels, z, frames flattened)."""
    array = np.asarray(array, np.float32)
    return list(array.reshape(-1, *array.shape[-2:]))


def patches(images: Sequence[np.ndarray], size: int) -> np.ndarray:
    """Non-overlapping ``size`` x ``size`` tiles of 2D images -> ``(N, size, size)`` float32.

    Images smaller than ``size`` along an axis give no tile; pick ``size`` with
    :func:`patch_size_for`.
    """
    tiles = []
    for img in images:
        ny, nx = img.shape[0] // size, img.shape[1] // size
        if ny and nx:
            grid = img[: ny * size, : nx * size].reshape(ny, size, nx, size)
            tiles.append(grid.transpose(0, 2, 1, 3).reshape(-1, size, size))
    if not tiles:
        return np.zeros((0, size, size), np.float32)
    return np.concatenate(tiles).astype(np.float32, copy=False)


def patch_size_for(*image_sets: Sequence[np.ndarray], largest: int = 64) -> int:
    """Largest tile side <= ``largest`` that fits into every 2D image of every set."""
    smallest = min(min(img.shape) for images in image_sets for img in images)
    return int(min(largest, smallest))


def kid_fid(
    real: np.ndarray,
    fake: np.ndarray,
    net: nn.Module,
    subsets: int = 50,
    seed: int = 0,
) -> dict[str, float | int | None]:
    """KID (mean and std over random subsets) and FID between patch sets ``(N, H, W)`` in [0, 1].

    Subsets hold ``min(N_real, N_fake, 1000)`` patches. Returns ``kid``, ``kid_std``, ``fid``
    and the patch counts; KID/FID are None (with a ``reason``) when a set has fewer than 2
    patches.
    """
    out: dict[str, float | int | None] = {
        "kid": None, "kid_std": None, "fid": None, "n_real": len(real), "n_fake": len(fake)
    }
    if min(len(real), len(fake)) < 2:
        out["reason"] = "KID/FID need at least 2 patches per set; lower realism.patch"
        return out
    with warnings.catch_warnings():
        # Its warning about keeping all features in memory: ours are ~100 numbers per patch.
        warnings.filterwarnings("ignore", message=".*save all extracted features")
        kid = KernelInceptionDistance(
            feature=net, subsets=subsets, subset_size=min(len(real), len(fake), 1000)
        )
    fid = FrechetInceptionDistance(feature=net)
    for metric in (kid, fid):
        for batch, is_real in ((real, True), (fake, False)):
            for start in range(0, len(batch), 256):
                metric.update(torch.from_numpy(batch[start : start + 256, None]), real=is_real)
    # KID draws its subsets from torch's global generator.
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        kid_mean, kid_std = kid.compute()
    out.update(kid=float(kid_mean), kid_std=float(kid_std), fid=float(fid.compute()))
    return out


def intensity_histogram(images: Sequence[np.ndarray], bins: int = HIST_BINS) -> np.ndarray:
    """Normalised histogram (sums to 1) of all pixels in [0, 1], ``bins`` equal bins."""
    counts = sum(
        np.histogram(np.clip(img, 0, 1), bins=bins, range=(0.0, 1.0))[0] for img in images
    )
    counts = np.asarray(counts, np.float64)
    return counts / max(counts.sum(), 1.0)


def histogram_distance(hist_a: np.ndarray, hist_b: np.ndarray) -> float:
    """Earth mover's (Wasserstein-1) distance of two histograms over [0, 1], in intensity units.

    0 for identical distributions; 1 for all mass at 0 versus all mass at 1.
    """
    width = 1.0 / len(hist_a)
    return float(np.abs(np.cumsum(hist_a) - np.cumsum(hist_b)).sum() * width)


def radial_power_spectrum(images: Sequence[np.ndarray], bins: int = SPECTRUM_BINS) -> np.ndarray:
    """Mean radially averaged power spectrum of 2D images -> ``(bins,)``.

    Frequencies in cycles per pixel, ``bins`` equal rings over (0, 0.5], so images of
    different sizes are comparable. Each image's mean is removed first (the DC term only says
    how bright an image is; the histogram distance covers that). Power per pixel, averaged
    over images.
    """
    total = np.zeros(bins)
    for img in images:
        img = np.asarray(img, np.float64)
        power = np.abs(np.fft.fft2(img - img.mean())) ** 2 / img.size
        fy = np.fft.fftfreq(img.shape[0])[:, None]
        fx = np.fft.fftfreq(img.shape[1])[None, :]
        radius = np.sqrt(fy**2 + fx**2).ravel()
        # Ring k holds radii in (k, k + 1] * 0.5 / bins: the DC term (radius 0) and the
        # corners beyond Nyquist fall outside every ring.
        ring = np.ceil(radius / 0.5 * bins).astype(int) - 1
        keep = (ring >= 0) & (ring < bins)
        sums = np.bincount(ring[keep], weights=power.ravel()[keep], minlength=bins)
        counts = np.bincount(ring[keep], minlength=bins)
        total += sums / np.maximum(counts, 1)
    return total / max(len(images), 1)


def spectrum_distance(spec_a: np.ndarray, spec_b: np.ndarray) -> float:
    """RMS difference of two power spectra in decades (log10); 0 for identical spectra."""
    tiny = 1e-12
    diff = np.log10(spec_a + tiny) - np.log10(spec_b + tiny)
    return float(np.sqrt(np.mean(diff**2)))


def realism_scores(
    real: Sequence[np.ndarray],
    fake: Sequence[np.ndarray],
    patch: int = 64,
    subsets: int = 50,
    seed: int = 0,
    width: int = 8,
) -> dict[str, float | int | None]:
    """All realism distances between two sets of 2D images ``(Y, X)`` in [0, 1].

    Returns ``kid``, ``kid_std``, ``fid`` (random texture features, see the module doc),
    ``histogram_w1`` (intensity earth mover's distance) and ``spectrum_rmse`` (log10 radial
    power spectrum), plus ``patch`` and patch counts. Lower is closer to real everywhere.
    """
    size = patch_size_for(real, fake, largest=patch)
    net = RandomTextureFeatures(width=width, seed=seed)
    scores = kid_fid(patches(real, size), patches(fake, size), net, subsets=subsets, seed=seed)
    scores["patch"] = size
    scores["histogram_w1"] = histogram_distance(intensity_histogram(real), intensity_histogram(fake))
    scores["spectrum_rmse"] = spectrum_distance(radial_power_spectrum(real), radial_power_spectrum(fake))
    return scores
