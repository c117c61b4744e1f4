"""Downstream protocol: train the segmenter on one source, test it on real annotated images.

Sources compared side by side (same recipe and seed, so only the training data differs):
``synthetic`` (diffusion images + simulated labels), ``sketch`` (the raw sketches + the
same labels) and ``real`` (the real training split with its masks). A source that cannot
be evaluated is reported as ``{"f1": null, ..., "reason": "..."}``, never as a number.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np

from workflow_lib.evaluate.matching import instance_scores
from workflow_lib.evaluate.segmenter import (
    SegmenterSettings,
    predict_instances,
    train_segmenter,
)

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
) -> tuple[dict[str, object], list[float]]:
    """Train on the pairs, segment the test images, match to their labels.

    Images spatial ``(Y, X)`` / ``(Z, Y, X)`` of any range; labels integer instances.
    Returns (scores of :func:`instance_scores` plus ``n_train`` / ``n_test``, loss per step).
    """
    model, losses = train_segmenter(train_images, train_labels, settings)
    preds = [predict_instances(model, img) for img in test_images]
    scores: dict[str, object] = dict(instance_scores(test_labels, preds))
    scores.update(n_train=len(train_images), n_test=len(test_images))
    log.info("downstream: F1@0.5 %.3f, AP 0.5:0.95 %.3f", scores["f1"], scores["ap_50_95"])
    return scores, losses
