"""PNG preview of one sample for the report: label panels above sketch panels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workflow_lib.plotting import orthogonal_views, pyplot, save_figure


def _label_colours(labels: np.ndarray) -> np.ndarray:
    """RGB float image: each id a fixed pseudo-random colour, background black."""
    rng = np.random.default_rng(12345)
    lut = rng.uniform(0.25, 1.0, size=(int(labels.max()) + 1, 3))
    lut[0] = 0
    return lut[labels]


def write_preview(
    path: str | Path, labels: np.ndarray, sketch: np.ndarray, title: str, time: bool = False
) -> None:
    """Write a PNG: top row label channels/layers, bottom row sketch channels.

    labels (C, *S) / sketch (C', *S), or with ``time`` (T, C, *S): then the first, middle and
    last frames of channel 0 are shown. 3D data show orthogonal views (XY, YZ right, XZ below).
    """
    plt = pyplot()
    if time:
        frames = sorted({0, labels.shape[0] // 2, labels.shape[0] - 1})
        top = [(f"labels t={t}", labels[t, 0]) for t in frames]
        bottom = [(f"sketch t={t}", sketch[t, 0]) for t in frames]
    else:
        top = [(f"labels {c}", labels[c]) for c in range(labels.shape[0])]
        bottom = [(f"sketch {c}", sketch[c]) for c in range(sketch.shape[0])]
    cols = max(len(top), len(bottom))
    fig, axes = plt.subplots(2, cols, figsize=(max(3.2 * cols, 4.8), 6.6), squeeze=False)
    for ax in axes.ravel():
        ax.axis("off")
    for k, (name, arr) in enumerate(top):
        axes[0, k].imshow(_label_colours(orthogonal_views(arr)), interpolation="nearest")
        axes[0, k].set_title(f"{name} ({int(arr.max())} ids)", fontsize=9)
    for k, (name, arr) in enumerate(bottom):
        axes[1, k].imshow(orthogonal_views(arr), cmap="gray", vmin=-1, vmax=1, interpolation="nearest")
        axes[1, k].set_title(name, fontsize=9)
    fig.suptitle(title, fontsize=10)
    # fixed margins: tight_layout measures every title's extent, 30-40 % of the time of a
    # preview, which every sample draws
    fig.subplots_adjust(left=0.01, right=0.99, bottom=0.01, top=0.9, wspace=0.04, hspace=0.12)
    save_figure(fig, path, dpi=80, tight=False)
