"""Classifier two-sample test (C2ST) and memorisation: can real and candidate patches be told apart?

KID with a fixed feature network rates a noiseless sketch about as "real" as a micrograph: its
features were never asked to tell them apart. A C2ST asks exactly that (Lopez-Paz & Oquab,
ICLR 2017): a small CNN learns to separate real patches from candidate patches, and its
accuracy on patches it did not train on is the score. 0.5: it cannot tell them apart (as for
two draws of one distribution); 1.0: every patch gives itself away.

Each patch is normalised to its own 1st/99.8th percentiles before the classifier sees it, so
brightness alone cannot decide: what is left is texture, noise, edges and shape. Patches are
non-overlapping tiles of 2D planes (3D volumes and time series by their planes/frames), the
two sets are balanced by a seeded subsample of the larger one, and every patch is held out
once in ``folds``-fold cross-validation. The 95 % interval is Wilson's for the pooled held-out
predictions.

Memorisation compares distances in raw intensity: the median distance of candidate patches to
their nearest training patch over that of held-out real patches. Diffusion models trained on a
handful of images can reproduce them; a ratio far below 1 says the candidates sit closer to the
training images than new real data does.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence

import numpy as np
import torch
from scipy import ndimage
from torch import nn

from workflow_lib.evaluate.realism import patch_size_for, patches
from workflow_lib.evaluate.settings import C2STSettings

#: Wilson interval's z for 95 %.
Z95 = 1.959964
#: Patches are halved while the smaller set gives fewer than this many per fold...
ENOUGH_PER_FOLD = 10
#: ...but never below this side (pixels).
MIN_PATCH = 16


def normalise_patches(tiles: np.ndarray, lower: float = 1.0, upper: float = 99.8) -> np.ndarray:
    """Each patch ``(N, H, W)`` mapped so its ``lower``/``upper`` percentiles become 0 and 1,
    clipped to [-1, 2]: in a patch of background clipped to one grey level (8-bit cameras) the
    percentiles coincide, and its few brighter pixels would otherwise reach thousands and
    derail the classifier's training (every patch then scores 0.5)."""
    flat = tiles.reshape(len(tiles), -1)
    lo, hi = np.percentile(flat, [lower, upper], axis=1)
    scale = np.maximum(hi - lo, 1e-6)
    return np.clip((tiles - lo[:, None, None]) / scale[:, None, None], -1, 2).astype(np.float32)


def _classifier(width: int) -> nn.Module:
    """Three stages of two 3x3 convolutions (batch-normalised, ReLU; stages 2 and 3 at half
    the resolution of the one before); the mean and standard deviation of every stage's
    responses over the patch -> one logit. Pooled statistics, not positions, so a patch is
    judged by its texture at 1-8 px scales wherever its objects sit."""

    def stage(cin: int, cout: int, stride: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
            nn.Conv2d(cout, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(),
        )

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stages = nn.ModuleList(
                [stage(1, width, 1), stage(width, 2 * width, 2), stage(2 * width, 4 * width, 2)])
            self.head = nn.Linear(2 * 7 * width, 1)

        def forward(self, x):
            stats = []
            for block in self.stages:
                x = block(x)
                stats += [x.mean(dim=(2, 3)), x.std(dim=(2, 3))]
            return self.head(torch.cat(stats, dim=1))[:, 0]

    return Net()


def _dihedral(x: torch.Tensor, k: int) -> torch.Tensor:
    """One of the 8 flips/rotations of a batch ``(N, 1, H, W)``: microscopy has no up."""
    x = torch.rot90(x, k % 4, dims=(2, 3))
    return torch.flip(x, dims=(3,)) if k >= 4 else x


def _train(x: torch.Tensor, y: torch.Tensor, s: C2STSettings, generator: torch.Generator,
           device: torch.device) -> nn.Module:
    torch.manual_seed(int(torch.randint(2**31 - 1, (1,), generator=generator)))
    net = _classifier(s.width).to(device)
    opt = torch.optim.Adam(net.parameters(), lr=s.lr)
    # a decaying rate settles the short training, so the held-out accuracy varies less
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, s.steps)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(s.steps):
        idx = torch.randint(len(x), (min(s.batch_size, len(x)),), generator=generator)
        k = int(torch.randint(8, (1,), generator=generator))
        batch = _dihedral(x[idx], k).to(device)
        loss = loss_fn(net(batch), y[idx].to(device))
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
    return net.eval()


def wilson_interval(correct: int, n: int) -> list[float]:
    """95 % Wilson score interval of a proportion ``correct / n``."""
    if n == 0:
        return [0.0, 1.0]
    p = correct / n
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n**2)) / (1 + Z95**2 / n)
    return [max(0.0, centre - half), min(1.0, centre + half)]


def c2st(
    real: Sequence[np.ndarray],
    fake: Sequence[np.ndarray],
    s: C2STSettings = C2STSettings(),
    device: torch.device | str = "cpu",
    masks: tuple[Sequence[np.ndarray], Sequence[np.ndarray]] | None = None,
) -> tuple[dict, dict]:
    """Held-out accuracy of a classifier telling real from candidate 2D planes ``(Y, X)``.

    ``masks``: the real and the candidate planes' instance labels, one per plane, when known;
    the result then has ``layout`` (:func:`layout_split`), which tells a layout the real
    images do not have from a texture they do not have.

    Patches are ``s.patch`` pixels a side, halved (down to :data:`MIN_PATCH`) while the smaller
    set gives fewer than :data:`ENOUGH_PER_FOLD` per fold. Returns (``{accuracy, ci95, n_real, n_fake, patch, folds}``; or nulls with a ``reason``
    when a set gives fewer than ``folds`` patches), and the figure data: the patches and their
    held-out probability of being candidates (``real``, ``fake``, ``p_real``, ``p_fake``).
    Same settings and inputs, same result.
    """
    if masks is not None and [len(m) for m in masks] != [len(real), len(fake)]:
        raise ValueError("c2st: one label plane per image plane is needed for the layout split")
    size = patch_size_for(real, fake, largest=s.patch)
    sets = [patches(planes, size) for planes in (real, fake)]
    # Small images give few patches: smaller patches (down to MIN_PATCH) before too few.
    while min(map(len, sets)) < ENOUGH_PER_FOLD * s.folds and size // 2 >= MIN_PATCH:
        size //= 2
        sets = [patches(planes, size) for planes in (real, fake)]
    rng = np.random.default_rng(s.seed)
    n = min(len(sets[0]), len(sets[1]), s.max_patches)
    result = {"accuracy": None, "ci95": None, "n_real": n, "n_fake": n, "patch": size,
              "folds": s.folds}
    if n < s.folds:
        result["reason"] = (f"{min(len(t) for t in sets)} patches of {size} px in the smaller "
                            f"set; the test needs at least {s.folds} per set")
        return result, {}
    picked = [np.sort(rng.choice(len(t), n, replace=False)) for t in sets]
    chosen = [t[i] for t, i in zip(sets, picked)]
    x = torch.from_numpy(normalise_patches(np.concatenate(chosen)))[:, None]
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    fold = np.concatenate([rng.permutation(n) % s.folds, rng.permutation(n) % s.folds])
    prob = np.zeros(2 * n)
    generator = torch.Generator().manual_seed(s.seed)
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        for k in range(s.folds):
            held = torch.from_numpy(fold == k)
            net = _train(x[~held], y[~held], s, generator, device)
            with torch.no_grad():
                logits = torch.stack([net(_dihedral(x[held], d).to(device)) for d in range(8)])
            prob[held.numpy()] = torch.sigmoid(logits).mean(0).cpu().numpy()
    correct = int(((prob > 0.5) == y.numpy().astype(bool)).sum())
    result.update(accuracy=correct / (2 * n), ci95=wilson_interval(correct, 2 * n))
    if masks is not None:
        distance = [patches([_object_distance(m) for m in planes], size)[i].min((1, 2))
                    for planes, i in zip(masks, picked)]
        result["layout"] = layout_split(*distance, prob[:n], prob[n:])
    return result, {"real": chosen[0], "fake": chosen[1], "p_real": prob[:n], "p_fake": prob[n:]}


def _object_distance(labels: np.ndarray) -> np.ndarray:
    """Per pixel, the distance (px) to the nearest object pixel; inf in a plane without one."""
    objects = np.asarray(labels) > 0
    if not objects.any():
        return np.full(objects.shape, np.inf, np.float32)
    return ndimage.distance_transform_edt(~objects).astype(np.float32)


def layout_split(
    real_distance: np.ndarray, fake_distance: np.ndarray, p_real: np.ndarray, p_fake: np.ndarray
) -> dict:
    """The classifier's held-out verdicts split by how far a patch lies from any object.

    ``*_distance``: per patch, the distance (px) from its nearest pixel to an object;
    ``p_*``: the held-out probabilities of being a candidate. A simulation asked for another
    layout (clusters with empty space between them, where the real objects are spread) gives
    patches farther from any object than every real patch is: those are told apart by the
    layout alone. Returns ``real_reach_px`` (the farthest real patch), ``beyond_pct`` (the
    candidate patches beyond it, in %), and ``accuracy_within_reach``: the balanced accuracy
    on the real patches and the candidate patches within reach (None when none is), what the
    classifier makes of texture where the layouts agree.
    """
    reach = float(np.max(real_distance))
    within = fake_distance <= reach
    accuracy = (None if not within.any() else
                float((np.mean(p_real <= 0.5) + np.mean(p_fake[within] > 0.5)) / 2))
    return {"real_reach_px": reach, "beyond_pct": float(100 * np.mean(~within)),
            "accuracy_within_reach": accuracy}


def c2st_text(block: dict | None) -> str:
    """'0.62 [0.56, 0.68]': the ``c2st`` of a realism block (metrics.json), or 'n/a'."""
    test = (block or {}).get("c2st") or {}
    if test.get("accuracy") is None:
        return "n/a"
    low, high = test["ci95"]
    text = f"{test['accuracy']:.2f} [{low:.2f}, {high:.2f}]"
    layout = test.get("layout") or {}
    if layout.get("accuracy_within_reach") is not None and layout["beyond_pct"] > 0:
        text += (f" ({layout['beyond_pct']:.0f} % of patches farther from any object than every "
                 f"real patch; {layout['accuracy_within_reach']:.2f} on the rest)")
    return text


def _window_blocks(
    planes: Sequence[np.ndarray], size: int, stride: int, block: int
) -> Iterator[np.ndarray]:
    """Every ``size`` x ``size`` window of 2D planes at ``stride``, as ``(n, size * size)``
    blocks of at most about ``block`` windows (one row of windows at least), so the training
    windows are searched all without being held all."""
    for plane in planes:
        plane = np.asarray(plane, np.float32)
        if min(plane.shape) < size:
            continue
        grid = np.lib.stride_tricks.sliding_window_view(plane, (size, size))[::stride, ::stride]
        rows = max(1, block // grid.shape[1])
        for start in range(0, grid.shape[0], rows):
            yield grid[start : start + rows].reshape(-1, size * size)


def _nearest_distances(
    query_sets: Sequence[np.ndarray], blocks: Iterable[np.ndarray]
) -> list[np.ndarray]:
    """Per set of query rows, the Euclidean distance of each row to its nearest row of all
    ``blocks`` (one pass over the blocks for every set)."""
    qs = [torch.from_numpy(q) for q in query_sets]
    q_sq = [(q**2).sum(1, keepdim=True) for q in qs]
    best = [torch.full((len(q),), float("inf")) for q in qs]
    for block in blocks:
        ref = torch.from_numpy(block)
        ref_sq = (ref**2).sum(1)[None]
        for k, q in enumerate(qs):
            best[k] = torch.minimum(best[k], (q_sq[k] + ref_sq - 2 * q @ ref.T).min(1).values)
    return [b.clamp_min(0).sqrt().numpy() for b in best]


def memorisation(
    train: Sequence[np.ndarray],
    held_out: Sequence[np.ndarray],
    fake: Sequence[np.ndarray],
    patch: int = 32,
    stride: int = 4,
    max_patches: int = 400,
    block: int = 8192,
    seed: int = 0,
) -> dict:
    """Median nearest-training-patch distance of candidates over that of held-out real patches.

    ``train``, ``held_out``, ``fake``: 2D planes in the same intensity units (the normalised
    [0, 1] images). Every training window at ``stride`` pixels is searched (so a copy shifted
    by a few pixels is still found, however many training images there are; ``block``
    windows at a time), queries are non-overlapping tiles (at most ``max_patches`` per set,
    seeded). Returns ``{ratio, fake_median, real_median, patch, n_fake, n_real, n_train}``:
    ratio 1 = as novel as new real data, 0 = copies; nulls with a ``reason`` when a set gives
    no patch.
    """
    size = patch_size_for(train, held_out, fake, largest=patch)
    rng = np.random.default_rng(seed)
    queries = []
    for planes in (fake, held_out):
        tiles = patches(planes, size).reshape(-1, size * size)
        if len(tiles) > max_patches:
            tiles = tiles[np.sort(rng.choice(len(tiles), max_patches, replace=False))]
        queries.append(tiles)
    n_train = sum(((p.shape[0] - size) // stride + 1) * ((p.shape[1] - size) // stride + 1)
                  for p in train if min(p.shape) >= size)
    out = {"ratio": None, "fake_median": None, "real_median": None, "patch": size,
           "n_fake": len(queries[0]), "n_real": len(queries[1]), "n_train": n_train}
    if not (n_train and len(queries[0]) and len(queries[1])):
        out["reason"] = "the training, held-out or candidate planes give no patch"
        return out
    windows = _window_blocks(train, size, stride, block)
    fake_median, real_median = (float(np.median(d)) for d in _nearest_distances(queries, windows))
    out.update(ratio=fake_median / max(real_median, 1e-12), fake_median=fake_median,
               real_median=real_median)
    return out
