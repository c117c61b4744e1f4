"""Typed evaluation settings (config ``evaluation``, see config/evaluation.schema.yaml).

Kept apart from the protocol so the workflow can check a config without importing torch.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class SegmenterSettings:
    """Training recipe of the downstream segmenter. ``patch``: side of the training crops
    (clipped to each image); ``repeats``: segmenters trained per source, with seeds ``seed``,
    ``seed + 1``, ..."""

    features: int = 16
    patch: int = 64
    batch_size: int = 8
    steps: int = 300
    lr: float = 2e-3
    seed: int = 0
    repeats: int = 3


@dataclass(frozen=True)
class EvaluationSettings:
    """Fidelity segmentation (``sigma``, ``min_distance``), annotation completeness
    (``completeness_*``, see :mod:`.completeness`), realism (``patch``, ``subsets``, ``width``,
    ``realism_seed``) and the downstream segmenter."""

    sigma: float = 1.0
    min_distance: int = 3
    completeness_sigma: float = 1.0
    completeness_k: float = 4.0
    completeness_min_size: int = 20
    patch: int = 64
    subsets: int = 50
    width: int = 8
    realism_seed: int = 0
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)
