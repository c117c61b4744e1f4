"""Small PyTorch U-Net segmenter for the downstream protocol (train on X, test on real).

Fixed recipe, seeded, CPU-friendly: a 2-level U-Net (2D or 3D) classifies each pixel as
background, cell interior or cell boundary; instances are the connected interiors grown
by a watershed over the foreground. Inputs are normalised per image (1st/99.8th
percentile), so images of any intensity range work, sketches included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy import ndimage as ndi
from skimage.segmentation import find_boundaries, watershed
from torch import nn
from tqdm import tqdm

from workflow_lib.evaluate.settings import SegmenterSettings

BACKGROUND, INTERIOR, BOUNDARY = 0, 1, 2
#: Boundary pixels are rare but decide whether touching cells separate: weigh them up.
CLASS_WEIGHTS = (1.0, 1.0, 3.0)


def _block(conv: type[nn.Module], cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(
        conv(cin, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.ReLU(inplace=True),
        conv(cout, cout, 3, padding=1), nn.GroupNorm(4, cout), nn.ReLU(inplace=True),
    )


class UNet(nn.Module):
    """2-level U-Net: (N, 1, *S) -> (N, 3, *S) class logits; S divisible by 4, ndim 2 or 3."""

    LEVELS = 2

    def __init__(self, ndim: int = 2, features: int = 16):
        super().__init__()
        conv = {2: nn.Conv2d, 3: nn.Conv3d}[ndim]
        up = {2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[ndim]
        pool = {2: nn.MaxPool2d, 3: nn.MaxPool3d}[ndim]
        f = features
        self.enc = nn.ModuleList([_block(conv, 1, f), _block(conv, f, 2 * f)])
        self.bottom = _block(conv, 2 * f, 4 * f)
        self.pool = pool(2)
        self.up = nn.ModuleList([up(4 * f, 2 * f, 2, stride=2), up(2 * f, f, 2, stride=2)])
        self.dec = nn.ModuleList([_block(conv, 4 * f, 2 * f), _block(conv, 2 * f, f)])
        self.head = conv(f, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for enc in self.enc:
            x = enc(x)
            skips.append(x)
            x = self.pool(x)
        x = self.bottom(x)
        for up, dec, skip in zip(self.up, self.dec, reversed(skips)):
            x = dec(torch.cat([up(x), skip], dim=1))
        return self.head(x)


def normalize_image(image: np.ndarray, lower: float = 1.0, upper: float = 99.8) -> np.ndarray:
    """Percentile normalisation: the ``lower`` / ``upper`` percentiles map to 0 / 1 (float32)."""
    image = np.asarray(image, np.float32)
    lo, hi = np.percentile(image, [lower, upper])
    return ((image - lo) / max(float(hi - lo), 1e-6)).astype(np.float32)


def class_targets(labels: np.ndarray) -> np.ndarray:
    """Instance labels ``(*S)`` -> int64 classes: 0 background, 1 interior, 2 boundary.

    Boundary = each instance's own outermost pixels, so touching instances stay apart.
    """
    labels = np.asarray(labels)
    target = (labels > 0).astype(np.int64)
    target[find_boundaries(labels, mode="inner") & (labels > 0)] = BOUNDARY
    return target


def _random_crops(
    images: Sequence[np.ndarray],
    targets: Sequence[np.ndarray],
    size: tuple[int, ...],
    batch: int,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """A batch of random crops (reflect-padded where an image is smaller) with flips/rot90."""
    xs, ys = [], []
    for k in rng.integers(0, len(images), size=batch):
        img, tgt = images[k], targets[k]
        pad = [(0, max(0, s - d)) for s, d in zip(size, img.shape)]
        if any(p for _, p in pad):
            img, tgt = np.pad(img, pad, mode="reflect"), np.pad(tgt, pad, mode="reflect")
        start = [rng.integers(0, d - s + 1) for s, d in zip(size, img.shape)]
        window = tuple(slice(a, a + s) for a, s in zip(start, size))
        img, tgt = img[window], tgt[window]
        for axis in range(img.ndim):
            if rng.random() < 0.5:
                img, tgt = np.flip(img, axis), np.flip(tgt, axis)
        if size[-1] == size[-2]:
            turns = int(rng.integers(0, 4))
            img, tgt = np.rot90(img, turns, axes=(-2, -1)), np.rot90(tgt, turns, axes=(-2, -1))
        xs.append(img)
        ys.append(tgt)
    return np.stack(xs)[:, None].astype(np.float32), np.stack(ys).astype(np.int64)


def crop_size(shapes: Sequence[tuple[int, ...]], patch: int) -> tuple[int, ...]:
    """Crop side per axis: ``patch`` clipped to the largest image, rounded down to x4 (>= 4)."""
    largest = np.max(np.array(shapes), axis=0)
    return tuple(max(4, int(min(patch, d)) // 4 * 4) for d in largest)


def train_segmenter(
    images: Sequence[np.ndarray],
    labels: Sequence[np.ndarray],
    settings: SegmenterSettings = SegmenterSettings(),
    device: str = "cpu",
) -> tuple[UNet, list[float]]:
    """Train a :class:`UNet` on image/instance-label pairs on ``device``; return it and the
    loss per step.

    ``images[k]``: spatial ``(Y, X)`` or ``(Z, Y, X)``, any range (normalised here);
    ``labels[k]``: integer instances of the same shape. Same inputs and seed -> same model.
    """
    if not images or len(images) != len(labels):
        raise ValueError(f"need matching image/label lists, got {len(images)} and {len(labels)}")
    ndim = images[0].ndim
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    norm = [normalize_image(img) for img in images]
    targets = [class_targets(lbl) for lbl in labels]
    size = crop_size([img.shape for img in norm], settings.patch)
    model = UNet(ndim=ndim, features=settings.features).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    loss_fn = nn.CrossEntropyLoss(weight=torch.tensor(CLASS_WEIGHTS).to(device))
    losses: list[float] = []
    model.train()
    for _ in tqdm(range(settings.steps), desc="segmenter", mininterval=5):
        x, y = _random_crops(norm, targets, size, settings.batch_size, rng)
        loss = loss_fn(model(torch.from_numpy(x).to(device)), torch.from_numpy(y).to(device))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return model, losses


@torch.no_grad()
def predict_instances(model: UNet, image: np.ndarray, min_size: int = 4) -> np.ndarray:
    """Segment one spatial image ``(Y, X)`` / ``(Z, Y, X)`` -> int32 instance labels.

    Seeds are connected regions where interior is the most likely class (smaller than
    ``min_size`` pixels dropped); a watershed over the boundary probability grows them
    through the foreground (background probability < 0.5).
    """
    norm = normalize_image(image)
    multiple = 2**UNet.LEVELS
    pad = [(0, (-d) % multiple) for d in norm.shape]
    device = next(model.parameters()).device
    x = torch.from_numpy(np.pad(norm, pad, mode="reflect")[None, None]).to(device)
    probs = torch.softmax(model(x), dim=1)[0].cpu().numpy()
    probs = probs[(slice(None),) + tuple(slice(0, d) for d in norm.shape)]
    seeds = probs.argmax(0) == INTERIOR
    seeds, _ = ndi.label(seeds)
    sizes = np.bincount(seeds.ravel())
    seeds[sizes[seeds] < min_size] = 0
    foreground = probs[BACKGROUND] < 0.5
    return watershed(probs[BOUNDARY], seeds, mask=foreground | (seeds > 0)).astype(np.int32)
