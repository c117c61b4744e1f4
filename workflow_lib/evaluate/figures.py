"""Report figures of one simulation's evaluation (matplotlib, Agg backend, PNG)."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from skimage.segmentation import find_boundaries

from workflow_lib.evaluate.views import Unit
from workflow_lib.plotting import orthogonal_views, pyplot, save_figure

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SOURCES = ("synthetic", "sketch", "real")
COLORS = {"real": "tab:green", "sketch": "tab:orange", "synthetic": "tab:blue"}


def save(fig: Figure, path: str | Path) -> None:
    """Write an evaluation figure as PNG atomically and free it."""
    save_figure(fig, path, dpi=110)


#: Panels show at most this many pixels per side (top-left), so 1-px outlines stay visible.
VIEW = 256


def _plane(array: np.ndarray) -> np.ndarray:
    """A 2D array cropped to VIEW x VIEW; a 3D one as orthogonal views of that crop."""
    return orthogonal_views(array, VIEW)


def _outlined(image: np.ndarray, labels: np.ndarray, color=(1.0, 0.2, 0.2)) -> np.ndarray:
    """Grey image as RGB with instance outlines painted in ``color``."""
    lo, hi = np.percentile(image, [1, 99.8])
    grey = np.clip((image - lo) / max(hi - lo, 1e-6), 0, 1)
    rgb = np.repeat(grey[..., None], 3, axis=-1)
    rgb[find_boundaries(labels, mode="inner")] = color
    return rgb


def sample_grid(
    real: Sequence[np.ndarray],
    sketches: Sequence[Unit],
    units: Sequence[Unit],
    preds: Sequence[np.ndarray],
    rows: int = 3,
) -> Figure:
    """Rows of: real test image | sketch | synthetic | synthetic + simulated mask | classical
    segmentation of the synthetic image. 3D shows orthogonal views (XY, YZ right, XZ below);
    large images their top-left 256 x 256 pixels."""
    plt = pyplot()
    rows = max(1, min(rows, len(units)))
    titles = ["real (tested on)", "sketch", "synthetic", "synthetic + mask", "classical segm."]
    fig, axes = plt.subplots(rows, 5, figsize=(15, 3.1 * rows), squeeze=False)
    for r in range(rows):
        unit = units[r]
        image, labels = _plane(unit.image), _plane(unit.labels)
        panels = [
            _plane(real[r % len(real)]) if real else None,
            _plane(sketches[r].image) if r < len(sketches) else None,
            image,
            _outlined(image, labels),
            _outlined(image, _plane(preds[r]), color=(1.0, 0.8, 0.0)),
        ]
        for c, panel in enumerate(panels):
            ax = axes[r, c]
            ax.axis("off")
            if panel is None:
                ax.text(0.5, 0.5, "n/a", ha="center", va="center")
            else:
                ax.imshow(panel, cmap="gray", interpolation="nearest")
            if r == 0:
                ax.set_title(titles[c])
    fig.tight_layout()
    return fig


def distributions(histograms: Mapping[str, Any], spectra: Mapping[str, Any]) -> Figure:
    """Intensity histograms and radial power spectra of real, sketch and synthetic images."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8))
    for name in ("real", "sketch", "synthetic"):
        hist, spec = histograms.get(name), spectra.get(name)
        if hist is not None:
            x = (np.arange(len(hist)) + 0.5) / len(hist)
            left.semilogy(x, np.maximum(hist, 1e-7), label=name, color=COLORS[name])
        if spec is not None:
            f = (np.arange(len(spec)) + 0.5) * 0.5 / len(spec)
            right.semilogy(f, spec, label=name, color=COLORS[name])
    left.set(xlabel="intensity", ylabel="fraction of pixels", title="intensity histogram")
    right.set(xlabel="frequency (cycles / pixel)", ylabel="power", title="radial power spectrum")
    left.legend()
    right.legend()
    fig.tight_layout()
    return fig


def realism_patches(classified: Mapping[str, Any], realism: Mapping[str, Any],
                    shown: int = 8) -> Figure:
    """The patches the realism classifier finds most synthetic (and most sketch-like) beside
    real patches tested on, all at the same scale and with one grey range, so what gives
    them away (texture, noise, edges) shows. The classifier saw each patch normalised to its
    own percentiles; shown here are the raw intensities."""
    plt = pyplot()
    rows = []
    fake = classified.get("synthetic") or {}
    if fake:
        order = np.argsort(-fake["p_fake"])[:shown]
        rows.append(("synthetic: most synthetic-looking", fake["fake"][order], fake["p_fake"][order]))
        pick = np.linspace(0, len(fake["real"]) - 1, min(shown, len(fake["real"]))).astype(int)
        rows.append(("real (tested on)", fake["real"][pick], fake["p_real"][pick]))
    sketch = classified.get("sketch") or {}
    if sketch:
        order = np.argsort(-sketch["p_fake"])[:shown]
        rows.append(("sketch: most sketch-like", sketch["fake"][order], sketch["p_fake"][order]))
    if not rows:
        fig = plt.figure(figsize=(6, 1.5))
        reason = (realism.get("synthetic") or {}).get("c2st", {}).get("reason") or (
            realism.get("synthetic") or {}).get("reason", "no patches")
        fig.text(0.5, 0.5, textwrap.fill(f"realism classifier not run: {reason}", 80), ha="center")
        return fig
    lo, hi = np.percentile(np.concatenate([r[1].ravel() for r in rows]), [0.5, 99.8])
    fig, axes = plt.subplots(len(rows), shown, figsize=(1.6 * shown, 1.9 * len(rows)),
                             squeeze=False)
    for ax_row, (title, patches, probs) in zip(axes, rows):
        for k, ax in enumerate(ax_row):
            ax.axis("off")
            if k < len(patches):
                ax.imshow(patches[k], cmap="gray", vmin=lo, vmax=hi, interpolation="nearest")
                ax.set_title(f"p(fake) {probs[k]:.2f}", fontsize=8)
        ax_row[0].text(-0.1, 0.5, title, transform=ax_row[0].transAxes, rotation=90,
                       ha="right", va="center", fontsize=8)
    acc = ((realism.get("synthetic") or {}).get("c2st") or {}).get("accuracy")
    fig.suptitle("realism classifier (held-out): accuracy "
                 + ("n/a" if acc is None else f"{acc:.2f}") + " on synthetic vs real; "
                 "same pixel scale and grey range in every panel", fontsize=10)
    fig.tight_layout()
    return fig


def loss_curves(losses: Mapping[str, Sequence[float] | None]) -> Figure:
    """Downstream segmenter training loss per training source."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.8))
    for name in SOURCES:
        values = losses.get(name)
        if values:
            ax.plot(np.arange(1, len(values) + 1), values, label=f"trained on {name}",
                    color=COLORS[name], alpha=0.8)
    if not any(losses.get(n) for n in SOURCES):
        ax.text(0.5, 0.5, "no segmenter trained (no real masks)", ha="center",
                transform=ax.transAxes)
    ax.set(xlabel="step", ylabel="weighted cross-entropy",
           title="downstream segmenter loss (mean over seeds)")
    if ax.lines:
        ax.legend(loc="upper right")
    fig.tight_layout()
    return fig


def _bars(
    ax: Axes,
    names: Sequence[str],
    values: Sequence[float | None],
    title: str,
    errors: Sequence[float | None] | None = None,
) -> None:
    """Bars with their values written on top; ``errors``: +- whiskers (the seeds' spread)."""
    shown = [0.0 if v is None else v for v in values]  # NaN bars break the axis limits
    spread = None if errors is None else [e or 0.0 for e in errors]
    bars = ax.bar(names, shown, yerr=spread, capsize=4,
                  color=[COLORS.get(n, "grey") for n in names])
    for bar, v, e in zip(bars, values, spread or [0.0] * len(values)):
        label = "n/a" if v is None else f"{v:.3f}"
        ax.text(bar.get_x() + bar.get_width() / 2, 0 if v is None else v + e, label,
                ha="center", va="bottom")
    ax.set_title(title)


def _completeness_line(complete: Mapping[str, Any]) -> str:
    """'unannotated 3.1 % (real 0.8 %), missed ..., edge offset ...' for the summary title."""

    def fmt(block, key, unit):
        value = (block or {}).get(key)
        return "n/a" if value is None else f"{value:.1f}{unit}"

    synth, real = complete.get("synthetic"), complete.get("real_floor")
    walls = complete.get("walls") or {}
    if "synthetic" in walls:
        # Membranes: the sketches are the floor (no real membrane image is compared).
        return ", ".join(
            f"walls {name} {fmt(walls['synthetic'], key, unit)} "
            f"(sketch {fmt(walls['sketch'], key, unit)})"
            for name, key, unit in (("unannotated", "unannotated_walls_pct", " %"),
                                    ("missed", "missed_walls_pct", " %"),
                                    ("offset", "wall_offset_px", " px")))
    return ", ".join(
        f"{name} {fmt(synth, key, unit)} (real {fmt(real, key, unit)})"
        for name, key, unit in (("unannotated", "unannotated_pct", " %"),
                                ("missed", "missed_pct", " %"),
                                ("edge offset", "boundary_offset_px", " px"))
    )


def summary(metrics: Mapping[str, Any]) -> Figure:
    """At a glance: downstream F1/AP per training source, realism distances, fidelity F1."""
    plt = pyplot()
    down, real = metrics["downstream"], metrics["realism"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 3.8))
    for ax, key, title in ((axes[0], "f1", "downstream F1@0.5 on real"),
                           (axes[1], "ap_50_95", "downstream AP 0.5:0.95")):
        _bars(ax, SOURCES, [down[n].get(key) for n in SOURCES], title,
              errors=[down[n].get(f"{key}_std") for n in SOURCES])
    names = ["sketch", "synthetic", "real"]
    refs = [real["sketch"], real["synthetic"], real.get("real_train_vs_test") or {}]
    tests = [r.get("c2st") or {} for r in refs]
    _bars(axes[2], names, [t.get("accuracy") for t in tests],
          "realism: classifier accuracy (0.5 = cannot tell)")
    for x, t in enumerate(tests):
        if t.get("ci95"):
            axes[2].plot([x, x], t["ci95"], color="black", lw=1.5)
    axes[2].axhline(0.5, color="grey", ls="--", lw=1)
    axes[2].set_ylim(0, 1.15)
    _bars(axes[3], names, [r.get("kid") for r in refs], "KID to real test (lower = closer)")
    for ax in axes[2:]:
        ax.set_xticks(range(3), ["sketch", "synthetic", "real train"])
    for ax in axes[:2]:
        ax.set_ylim(0, 1.1)
    reasons = sorted({down[n]["reason"] for n in SOURCES if down[n].get("reason")})
    fid = ", ".join(f"ch{c} F1 {v['f1']:.2f}" for c, v in metrics["fidelity"].items())
    title = f"{metrics['kind']}: {_completeness_line(metrics.get('completeness', {}))}; fidelity {fid}"
    if reasons:
        title += "\n" + textwrap.fill("not applicable: " + "; ".join(reasons), 120)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig
