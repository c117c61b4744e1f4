"""Instance matching metrics: a thin wrapper over :func:`stardist.matching.matching_dataset`.

Ground-truth and predicted instances are paired one-to-one (Hungarian assignment on IoU); a
pair counts as a true positive when its IoU reaches the threshold. Conventions follow
StarDist / the Data Science Bowl 2018: ``ap`` is TP / (TP + FP + FN) ("accuracy" in StarDist),
and every score of a set with no true positive is 0.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from stardist.matching import matching_dataset

#: IoU thresholds of the averaged scores, 0.5:0.05:0.95 as in COCO / the DSB 2018.
IOU_THRESHOLDS: tuple[float, ...] = tuple(np.round(np.arange(0.5, 0.951, 0.05), 2).tolist())


def instance_scores(
    truths: Sequence[np.ndarray], preds: Sequence[np.ndarray]
) -> dict[str, float | int]:
    """Match instance label images pairwise and pool the counts over the whole set.

    ``truths[k]`` and ``preds[k]`` are integer label images of equal shape (any ndim, 0 =
    background). Returns at IoU 0.5: ``precision``, ``recall``, ``f1``, ``ap``, ``mean_iou``
    (mean IoU of the matched pairs), ``n_true``, ``n_pred``, ``tp``; and averaged over
    :data:`IOU_THRESHOLDS`: ``f1_50_95`` and ``ap_50_95``. All scores lie in [0, 1].
    """
    if len(truths) != len(preds):
        raise ValueError(f"{len(truths)} ground-truth images but {len(preds)} predictions")
    if not truths:
        raise ValueError("no images to match")
    pairs = [(_labels(t), _labels(p)) for t, p in zip(truths, preds)]
    for t, p in pairs:
        if t.shape != p.shape:
            raise ValueError(f"label images differ in shape: {t.shape} vs {p.shape}")
    stats = matching_dataset(
        [t for t, _ in pairs], [p for _, p in pairs], thresh=IOU_THRESHOLDS, show_progress=False
    )
    at50 = stats[0]
    return {
        "precision": float(at50.precision),
        "recall": float(at50.recall),
        "f1": float(at50.f1),
        "ap": float(at50.accuracy),
        "mean_iou": float(at50.mean_matched_score),
        "f1_50_95": float(np.mean([s.f1 for s in stats])),
        "ap_50_95": float(np.mean([s.accuracy for s in stats])),
        "n_true": int(at50.n_true),
        "n_pred": int(at50.n_pred),
        "tp": int(at50.tp),
    }


def _labels(array: np.ndarray) -> np.ndarray:
    """Label image as a non-negative integer array (StarDist rejects floats and negatives)."""
    array = np.asarray(array)
    if not np.issubdtype(array.dtype, np.integer):
        raise TypeError(f"label images must be integer, got {array.dtype}")
    if array.size and array.min() < 0:
        raise ValueError("label images must not contain negative ids")
    return array.astype(np.int64, copy=False)
