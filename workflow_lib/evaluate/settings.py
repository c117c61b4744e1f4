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
class C2STSettings:
    """The realism classifier (:mod:`.c2st`). ``patch``: side of the square patches (pixels;
    clipped to the smallest plane); ``max_patches``: patches per set at most; ``folds``:
    cross-validation folds; ``steps``, ``batch_size``, ``lr``, ``width``: the classifier's
    training budget and size; ``seed``: patch choice, folds, weights and batches."""

    patch: int = 32
    max_patches: int = 400
    folds: int = 5
    steps: int = 75
    batch_size: int = 32
    lr: float = 3e-3
    width: int = 8
    seed: int = 0


@dataclass(frozen=True)
class MemorisationSettings:
    """Nearest-training-patch distances (:func:`.c2st.memorisation`): ``patch`` side,
    training windows every ``stride`` pixels."""

    patch: int = 32
    stride: int = 4


@dataclass(frozen=True)
class EvaluationSettings:
    """Fidelity segmentation (``sigma``, ``min_distance``), annotation completeness
    (``completeness_*``, see :mod:`.completeness`), realism (the classifier ``c2st``,
    ``memorisation``; KID/FID: ``patch``, ``subsets``, ``width``, ``realism_seed``) and the
    downstream segmenter. ``device`` (a torch device name) trains and runs the realism classifier
    and the segmenters: a GPU where the job has one."""

    sigma: float = 1.0
    min_distance: int = 3
    completeness_sigma: float = 1.0
    completeness_k: float = 4.0
    completeness_min_size: int | None = None
    patch: int = 64
    subsets: int = 50
    width: int = 8
    realism_seed: int = 0
    c2st: C2STSettings = field(default_factory=C2STSettings)
    memorisation: MemorisationSettings = field(default_factory=MemorisationSettings)
    segmenter: SegmenterSettings = field(default_factory=SegmenterSettings)
    device: str = "cpu"
