"""Downstream protocol: train the segmenter on one source, test it on real annotated images.

Sources compared side by side (same recipe and seeds, so only the training data differs):
``synthetic`` (diffusion images + simulated labels), ``sketch`` (the raw sketches + the
same labels) and ``real`` (the real training split with its masks). A source that cannot
be evaluated is reported as ``{"f1": null, ..., "reason": "..."}``, never as a number.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Sequence

import numpy as np

from workflow_lib.evaluate.matching import instance_scores
from workflow_lib.evaluate.segmenter import predict_instances, train_segmenter
from workflow_lib.evaluate.settings import SegmenterSettings

log = logging.getLogger("cellsynth")

SCORE_KEYS = ("precision", "recall", "f1", "ap", "mean_iou", "f1_50_95", "ap_50_95")


def not_applicable(reason: str, keys: Sequence[str] = SCORE_KEYS) -> dict[str, object]:
    """A result that does not exist: every score null, and why."""
    return {**{k: None for k in keys}, "reason": reason}


def train_and_test(
    train_images: Sequence[np.ndarray],
    train_labels: Sequence[np.ndarray],
    test_images: Sequence[np.ndarray],
    test_labels: Sequence[np.ndarray],
    settings: SegmenterSettings,
    device: str = "cpu",
) -> tuple[dict[str, object], list[float]]:
    """Train ``settings.repeats`` segmenters on the pairs (on ``device``), segment the test
    images, match.

    Images spatial ``(Y, X)`` / ``(Z, Y, X)`` of any range; labels integer instances.
    Segmenter k is seeded ``settings.seed + k``. Returns (the mean over segmenters of each
    :data:`SCORE_KEYS` score, ``f1_std`` / ``ap_50_95_std`` across them, ``n_true``,
    ``n_train``, ``n_test``, ``repeats`` and ``per_seed`` (seed, f1, ap_50_95, n_pred, tp
    of each); the mean training loss per step).
    """
    runs, curves = [], []
    for k in range(settings.repeats):
        seed = settings.seed + k
        model, losses = train_segmenter(
            train_images, train_labels, dataclasses.replace(settings, seed=seed), device
        )
        preds = [predict_instances(model, img) for img in test_images]
        runs.append({"seed": seed, **instance_scores(test_labels, preds)})
        curves.append(losses)
    scores: dict[str, object] = {k: float(np.mean([r[k] for r in runs])) for k in SCORE_KEYS}
    scores.update(
        f1_std=float(np.std([r["f1"] for r in runs])),
        ap_50_95_std=float(np.std([r["ap_50_95"] for r in runs])),
        n_true=runs[0]["n_true"],
        n_train=len(train_images),
        n_test=len(test_images),
        repeats=settings.repeats,
        per_seed=[{k: r[k] for k in ("seed", "f1", "ap_50_95", "n_pred", "tp")} for r in runs],
    )
    log.info("downstream: F1@0.5 %.3f +- %.3f, AP 0.5:0.95 %.3f +- %.3f (%d segmenters)",
             scores["f1"], scores["f1_std"], scores["ap_50_95"], scores["ap_50_95_std"],
             settings.repeats)
    return scores, np.mean(curves, axis=0).tolist()
