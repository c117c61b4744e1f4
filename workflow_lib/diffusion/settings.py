"""Typed settings of synthesis (built from the config by ``workflow.config.synthesis_settings``)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SamplingSettings:
    """How one SDEdit run samples: start step, sampler, tiling.

    ``t_start``: SDEdit start step (<= the schedule's timesteps); ``sampler``: ddpm | ddim |
    dpmpp; ``steps``: network evaluations of ddim/dpmpp; ``tile``: tile size per spatial axis
    (pixels, multiples of the network's size multiple); ``overlap``: minimum overlap of tiles
    (pixels); ``batch``: tiles per network call; ``blur``: Gaussian sigma of the sketch
    (pixels); ``clip``: clamp every clean-image estimate to [-1, 1].
    """

    t_start: int
    sampler: str
    steps: int
    tile: tuple[int, ...]
    overlap: int
    batch: int
    blur: float
    clip: bool = True


@dataclass(frozen=True)
class GuardSettings:
    """The annotation guard (:mod:`.guard`): ``margin`` (SDs of the real background's local
    mean), ``sigma`` (pixels of the capped local mean), ``edge_band`` (pixels; 0: no edge
    keeping)."""

    enabled: bool = True
    margin: float = 2.0
    sigma: float = 1.0
    edge_band: float = 2.0


@dataclass(frozen=True)
class CheckLimits:
    """The annotation check: an image over a limit is flagged and drawn again with derived
    seeds, at most ``redraws`` times."""

    max_unannotated_pct: float = 2.0
    max_boundary_offset_px: float = 0.5
    redraws: int = 3


@dataclass(frozen=True)
class SynthesisSettings:
    """Everything :class:`~workflow_lib.diffusion.pipeline.SynthesisPipeline` does besides the
    model: sampling, the noise ``seed``, the guard, texture matching, the annotation check."""

    sampling: SamplingSettings
    seed: int = 0
    guard: GuardSettings = GuardSettings()
    texture: bool = True
    check: CheckLimits = CheckLimits()

    @property
    def needs_calibration(self) -> bool:
        """The guard and texture matching read the real images' measurements."""
        return self.guard.enabled or self.texture


@dataclass(frozen=True)
class TrainSettings:
    """One training run: ``steps`` optimiser steps of ``batch_size`` patches at rate ``lr``
    (RAdam), weights averaged with decay ``ema``, a checkpoint every ``checkpoint_every``
    steps, the validation loss over ``val_batches`` fixed batches every ``val_every`` steps,
    ``augment``: random flips (and 90-degree turns where Y and X agree)."""

    steps: int
    batch_size: int = 4
    lr: float = 1e-3
    seed: int = 0
    ema: float = 0.999
    checkpoint_every: int = 1000
    val_every: int = 1000
    val_batches: int = 4
    augment: bool = True


@dataclass(frozen=True)
class ModelSettings:
    """The network and its schedule: a U-Net of ``features`` channels at its first of
    ``levels`` levels, trained on patches of ``patch_size`` pixels per spatial axis under a
    ``schedule`` (cosine | linear) of ``timesteps`` steps, as ``train`` says."""

    patch_size: tuple[int, ...]
    features: int
    levels: int
    timesteps: int
    schedule: str
    train: TrainSettings
