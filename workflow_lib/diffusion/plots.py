"""Training figures: loss curves and an SDEdit sample grid (written atomically as PNG)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workflow_lib.diffusion.train import History
from workflow_lib.plotting import orthogonal_views, pyplot, save_figure


def plot_loss(history: History, path: str | Path) -> None:
    """Training loss (raw and smoothed) and validation loss over steps, log scale."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 4))
    loss = np.asarray(history.loss)
    steps = np.arange(1, len(loss) + 1)
    ax.plot(steps, loss, color="0.8", lw=0.5, label="train (per step)")
    k = max(1, len(loss) // 50)
    if len(loss) >= k:
        smooth = np.convolve(loss, np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, color="C0", label=f"train (mean of {k})")
    if history.val_loss:
        ax.plot(history.val_steps, history.val_loss, "o-", color="C1", label="validation (EMA)")
    ax.set(xlabel="step", ylabel="MSE of the noise", yscale="log")
    ax.legend()
    save_figure(fig, path)


def _view(x: np.ndarray) -> np.ndarray:
    """First channel, 3D as orthogonal views: (C, [Z,] Y, X) -> 2D."""
    return orthogonal_views(x[0])


def plot_samples(guides: np.ndarray, outputs: np.ndarray, path: str | Path, title: str) -> None:
    """Rows: validation patches (the SDEdit guides) and the model's images from them.

    ``guides`` and ``outputs``: (N, C, *spatial) in [0, 1]; 3D shows the middle Z slice and
    multi-channel the first channel.
    """
    plt = pyplot()
    n = len(guides)
    fig, axes = plt.subplots(2, n, figsize=(2.2 * n, 4.6), squeeze=False)
    for j in range(n):
        for row, (data, label) in enumerate(((guides, "real (guide)"), (outputs, "synthetic"))):
            ax = axes[row, j]
            ax.imshow(_view(data[j]), cmap="gray", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
            if j == 0:
                ax.set_ylabel(label)
    fig.suptitle(title)
    save_figure(fig, path)
