"""The synthesis pipeline: model, sampler, tiling, annotation guard, edge keeping, texture step
and annotation check behind one object, built once and called for many samples.

As diffusers' pipelines own a model and a scheduler, :class:`SynthesisPipeline` owns the
trained network and everything synthesis does around it; the workflow stage only reads and
writes files, and the edge trial, bench scripts and tests call the same object::

    pipeline = SynthesisPipeline.from_file("model.pt", settings, get_kind("nuclei"),
                                           calibration, device)
    drawn = pipeline(sketches, labels, [(seed, i) for i in samples])

Every sample keeps its own noise seeds, so an image is the same whatever else is drawn with it
(to float rounding, ~1e-6, where samples share a network call).
"""

from __future__ import annotations

import logging
import math
import sys
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from workflow_lib.calibrate import stain_calibrations
from workflow_lib.calibrate.texture import match_texture
from workflow_lib.diffusion.guard import edge_band, guard_ceiling
from workflow_lib.diffusion.model_io import load_model, schedule_of
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.settings import SynthesisSettings
from workflow_lib.diffusion.synthesis import channel_batch, synthesize, tiles_per_image
from workflow_lib.diffusion.unet import UNet
from workflow_lib.errors import InputError
from workflow_lib.evaluate.completeness import completeness
from workflow_lib.evaluate.views import units
from workflow_lib.simulate import BLOBS, NUCLEUS_STAIN, Kind

log = logging.getLogger("cellsynth")

# The texture's noise is its own random stream of the sample's seed, so matching texture
# leaves the diffusion's noise (and images made before it) as they were.
TEXTURE_STREAM = 1
# Redraws of a flagged image: a stream of their own, apart from the first draw's and the
# texture's.
REDRAW_STREAM = 2
#: On the CPU, samples share a network call while it holds at most this many pixels: one call
#: of eight 128x128 images ran 1.0-1.2x as fast as eight calls, of two 256x256 images 1.0x, of
#: eight 256x256 0.85x, of eight 512x512 0.79x (2 cores, bench/bench_batching.py).
CPU_CALL_PIXELS = 2**17


def draw_seed(seeds: tuple[int, ...], attempt: int) -> tuple[int, ...]:
    """Noise seeds of draw ``attempt`` of a sample seeded ``seeds`` (``(synthesis seed, i)``):
    the first draw keeps the sample's own, redraws of a flagged image get derived streams."""
    return tuple(seeds) if attempt == 0 else (*seeds, REDRAW_STREAM, attempt)


@dataclass
class Drawn:
    """One synthesised sample: ``image`` float32 in [0, 1] in the labels' layout ((C, *S), or
    (T, C, *S) for time series) and ``report``, its
    annotation check (``flagged``, ``problems``, completeness), ``seeds`` of the delivered
    draw, ``redrawn`` (seeds and problems of each flagged draw) and ``texture``."""

    image: np.ndarray
    report: dict[str, Any]


class SynthesisPipeline:
    """Sketches of one simulation kind -> synthetic images, checked against their labels.

    ``net``/``schedule``: the trained model; ``settings``: :class:`SynthesisSettings`;
    ``kind``: the simulation kind (its stains, channels and evaluation methods);
    ``calibration``: the data set's measurements (``calibration.json``; needed when the guard
    or texture matching is on); ``calibration_source``: what log lines call it; ``meta``:
    what the model file records of its training (``ndim``, ``normalize``, ...).
    """

    def __init__(
        self,
        net: UNet,
        schedule: NoiseSchedule,
        settings: SynthesisSettings,
        kind: Kind,
        device: torch.device,
        calibration: Mapping[str, Any] | None = None,
        calibration_source: str = "the calibration",
        progress_every: float = 5.0,
        meta: Mapping[str, Any] | None = None,
    ):
        if settings.needs_calibration and calibration is None:
            raise ValueError("the guard and texture matching need the data set's calibration")
        self.net, self.schedule, self.settings, self.kind = net, schedule, settings, kind
        self.device = device
        self.calibration = dict(calibration or {})
        self.calibration_source = calibration_source
        self.progress_every = progress_every
        self.meta = dict(meta or {})

    @classmethod
    def from_file(
        cls, path: str | Path, settings: SynthesisSettings, kind: Kind, device: torch.device,
        calibration: Mapping[str, Any] | None = None, **options: Any,
    ) -> "SynthesisPipeline":
        """The pipeline of a saved ``model.pt`` (loaded once onto ``device``)."""
        net, meta = load_model(path, device)
        return cls(net, schedule_of(meta), settings, kind, device, calibration, meta=meta,
                   **options)

    @property
    def model_channels(self) -> int:
        return self.net.config["channels"]

    def __call__(
        self,
        sketches: Sequence[np.ndarray],
        labels: Sequence[np.ndarray],
        seeds: Sequence[tuple[int, ...]],
        names: Sequence[str] | None = None,
    ) -> list[Drawn]:
        """Sketches (T, C, *S) in [-1, 1] (T = 1 without a time axis) with their labels
        ((C, *S) or, for time series, (T, C, *S)) -> one checked :class:`Drawn` each.

        Samples of one size are drawn together, as many as fill a network call
        (:meth:`group_size`). A draw the annotation check flags is drawn again with
        :func:`draw_seed`'s derived seeds (same labels and sketch: they stay paired), at most
        ``check.redraws`` times. ``names`` (what log lines call the samples, e.g. their output
        files) default to their positions.
        """
        names = names or [f"sample {n}" for n in range(len(sketches))]
        return [drawn for _, drawn in self.stream(zip(sketches, labels, seeds, names, strict=True))]

    def stream(self, samples: Iterable[tuple[np.ndarray, np.ndarray, tuple[int, ...], str]]
               ) -> Iterator[tuple[str, Drawn]]:
        """:meth:`__call__` over ``(sketch, labels, seeds, name)`` as they come (e.g. read
        from files one by one): yields ``(name, drawn)`` in order, each group as soon as it is
        drawn, holding no more than one group in memory."""
        group: list[tuple[np.ndarray, np.ndarray, tuple[int, ...], str]] = []
        size = 0
        for item in samples:
            if group and (item[0].shape[2:] != group[0][0].shape[2:] or len(group) == size):
                yield from self._draw_checked(group)
                group = []
            if not group:
                size = self.group_size(item[0].shape)
            group.append(item)
        if group:
            yield from self._draw_checked(group)

    def sample(self, sketch: np.ndarray, labels: np.ndarray, seeds: tuple[int, ...],
               name: str = "sample") -> Drawn:
        """One sample of :meth:`__call__`."""
        return self([sketch], [labels], [seeds], [name])[0]

    def group_size(self, shape: Sequence[int]) -> int:
        """How many samples of sketch ``shape`` (T, C, *S) are drawn together: as many as
        their tiles fill one network call (``sampling.batch`` tiles), at least one; on the CPU
        no more than :data:`CPU_CALL_PIXELS` pixels in all, past which a larger call is slower
        there than several (docs/performance.md)."""
        sampling = self.settings.sampling
        rows = shape[0] * (shape[1] if self.model_channels == 1 else 1)
        tiles = tiles_per_image(shape[2:], sampling, self.net.multiple)
        size = max(1, sampling.batch // (rows * tiles))
        if self.device.type == "cpu":
            pixels = rows * tiles * math.prod(min(t, s) for t, s in zip(sampling.tile, shape[2:]))
            size = min(size, max(1, CPU_CALL_PIXELS // pixels))
        return size

    def _draw_checked(self, group: list[tuple[np.ndarray, np.ndarray, tuple[int, ...], str]]
                      ) -> Iterator[tuple[str, Drawn]]:
        """Draw a group together, then its flagged samples again together, at most
        ``check.redraws`` times; yields ``(name, drawn)`` in the group's order."""
        limits = self.settings.check
        checks: list[dict[str, Any] | None] = [None] * len(group)
        results: list[tuple[np.ndarray, Any, tuple[int, ...]] | None] = [None] * len(group)
        flagged: list[list[dict]] = [[] for _ in group]
        pending = list(range(len(group)))
        for attempt in range(limits.redraws + 1):
            seeds = [draw_seed(group[i][2], attempt) for i in pending]
            drawn = self.draw_batch([group[i][0] for i in pending], [group[i][1] for i in pending],
                                    seeds, [group[i][3] for i in pending])
            retry = []
            for i, seed, (out, texture) in zip(pending, seeds, drawn):
                image = out if self.kind.time else out[0]
                checks[i], results[i] = self.check(group[i][1], image), (image, texture, seed)
                if checks[i]["flagged"]:
                    flagged[i].append({"seeds": list(seed), "problems": checks[i]["problems"]})
                    log.info("%s: draw %d flagged (%s)", group[i][3], attempt,
                             "; ".join(checks[i]["problems"]))
                    retry.append(i)
            pending = retry
            if not pending:
                break
        for i, (_, _, _, name) in enumerate(group):
            check, (image, texture, seed) = checks[i], results[i]
            check["seeds"] = list(seed)
            check["redrawn"] = flagged[i][:-1] if check["flagged"] else flagged[i]
            if check["flagged"]:
                log.warning("%s: flagged after %d draws (synthesis.annotation_check.redraws: %d): "
                            "%s; left out of exports", name, len(flagged[i]), limits.redraws,
                            "; ".join(check["problems"]))
            elif flagged[i]:
                log.info("%s: draw %d passed the annotation check after %d flagged", name,
                         len(flagged[i]), len(flagged[i]))
            if texture is not None:
                check["texture"] = texture
            yield name, Drawn(image, check)

    def draw(self, sketch: np.ndarray, labels: np.ndarray, seeds: tuple[int, ...],
             name: str = "sample") -> tuple[np.ndarray, list[dict] | str | None]:
        """One unchecked draw: sketch (T, C, *S) in [-1, 1] -> (synthetic (T, C, *S) in [0, 1],
        texture record or None): SDEdit with the annotation guard, then texture matching."""
        return self.draw_batch([sketch], [labels], [seeds], [name])[0]

    def draw_batch(self, sketches: Sequence[np.ndarray], labels: Sequence[np.ndarray],
                   seeds: Sequence[tuple[int, ...]], names: Sequence[str]
                   ) -> list[tuple[np.ndarray, list[dict] | str | None]]:
        """:meth:`draw` for samples of one spatial size at once: their tiles share network
        calls, each keeps its own noise (``seeds``), guard and texture."""
        batches, ceilings, bands, objects = [], [], [], []
        guard = self.settings.guard
        for sketch, lab, name in zip(sketches, labels, names, strict=True):
            if sketch.min() < -1 or sketch.max() > 1:
                log.warning("%s: sketch values outside [-1, 1] are clipped", name)
                sketch = sketch.clip(-1, 1)
            batches.append(channel_batch(sketch.astype(np.float32, copy=False),
                                         self.model_channels, name))
            objects.append(self._objects(lab, sketch.shape, name))
            if guard.enabled:
                ceilings.append(self._batch(self._ceiling(objects[-1]), sketch.shape))
                if guard.edge_band > 0:
                    bands.append(self._batch(self._edge_band(objects[-1]), sketch.shape))
        rows = [len(b) for b in batches]
        out = synthesize(
            np.concatenate(batches), self.net, self.schedule, self.settings.sampling,
            self.device, progress=self._progress("denoise"),
            ceiling=np.concatenate(ceilings) if ceilings else None, guard_sigma=guard.sigma,
            edge_band=np.concatenate(bands) if bands else None,
            samples=list(zip(seeds, rows)),
        )
        drawn = []
        for part, sketch, obj, seed in zip(np.split(out, np.cumsum(rows)[:-1]), sketches,
                                           objects, seeds):
            image = part.reshape(sketch.shape)
            texture = self._match_texture(image, obj, seed) if self.settings.texture else None
            drawn.append((image, texture))
        return drawn

    def check(self, labels: np.ndarray, image: np.ndarray) -> dict[str, Any]:
        """Completeness of ``image`` (the labels' layout) against its labels (blob-like label channels); flagged when over the limits (``problems`` says
        how), so no such sample reaches a user silently."""
        blobs = [u for u in units(self.kind, labels, image) if u.method == BLOBS]
        if not blobs:
            return {"flagged": False, "reason": "no blob-like label channel: not checked"}
        limits = self.settings.check
        scores = completeness([u.image for u in blobs], [u.labels for u in blobs])
        problems = []
        if (scores["unannotated_pct"] or 0.0) > limits.max_unannotated_pct:
            problems.append(f"{scores['unannotated_pct']:.1f} % of its objects are in no mask "
                            f"(limit {limits.max_unannotated_pct} %)")
        offset = scores["boundary_offset_px"]
        if offset is not None and abs(offset) > limits.max_boundary_offset_px:
            problems.append(f"its object edges lie {offset:+.2f} px from the mask edges "
                            f"(limit {limits.max_boundary_offset_px} px)")
        return {"flagged": bool(problems), "problems": problems,
                "limits": {"max_unannotated_pct": limits.max_unannotated_pct,
                           "max_boundary_offset_px": limits.max_boundary_offset_px,
                           "redraws": limits.redraws},
                **scores}

    def check_sketch(self, sketch: np.ndarray, source: str) -> None:
        """Refuse (naming ``source``) a sketch (T, C, *S) whose channels the model cannot draw."""
        channel_batch(sketch, self.model_channels, source)

    def _progress(self, desc: str) -> Callable[[Iterable[int]], Iterable[int]]:
        return lambda it: tqdm(it, desc=desc, file=sys.stderr, mininterval=self.progress_every)

    def _batch(self, field: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        return channel_batch(np.broadcast_to(field, shape), self.model_channels)

    def _objects(self, labels: np.ndarray, shape: tuple[int, ...], name: str) -> np.ndarray:
        """Where the labels have an object, bool (T, 1 or C, *S) (T = 1 without a time axis),
        for a sketch of ``shape`` (T, C, *S)."""
        series = labels if self.kind.time else labels[None]
        objects = (series > 0).any(1, keepdims=True) if self.kind.layered else series > 0
        fits = (objects.shape[0] == shape[0] and objects.shape[2:] == tuple(shape[2:])
                and objects.shape[1] in (1, shape[1]))
        if not fits:
            raise InputError(name, f"labels {labels.shape} do not fit the sketch {shape}: "
                             "rerun the sketch stage")
        return objects

    def _measured(self, channel: int) -> Mapping[str, Any]:
        """The calibration of the stain label channel ``channel`` shows where it was measured,
        else of the (first) stain measured."""
        stain = self.kind.stains[min(channel, len(self.kind.stains) - 1)]
        return stain_calibrations(self.calibration).get(stain, self.calibration)

    def _ceiling(self, objects: np.ndarray) -> np.ndarray:
        """The annotation guard's ceiling (the objects' shape) from them and the real
        background of each channel's stain."""
        guard = self.settings.guard

        def one(part: np.ndarray, real: Mapping[str, Any]) -> np.ndarray:
            edge = real.get("edge_sigma_px") or 1.0
            return guard_ceiling(
                part, real["background"]["level"], real["background"]["noise_local_mean"],
                float(np.hypot(edge, guard.sigma)), guard.margin,
            )

        measured = [self._measured(c) for c in range(objects.shape[1])]
        if all(m is measured[0] for m in measured):
            return one(objects, measured[0])
        return np.concatenate([one(objects[:, c:c + 1], m) for c, m in enumerate(measured)], 1)

    def _edge_band(self, objects: np.ndarray) -> np.ndarray:
        """Edge keeping's weight (the objects' shape) around the blob-like label channels'
        objects; 0 on cell channels, whose sketch edge is a membrane, not an object's rim."""
        methods = self.kind.eval_methods[:objects.shape[1]]
        blobs = np.array([m == BLOBS for m in methods]).reshape((1, -1) + (1,) * (objects.ndim - 2))
        return edge_band(objects & blobs, self.settings.guard.edge_band)

    def _match_texture(self, out: np.ndarray, objects: np.ndarray,
                       seeds: tuple[int, ...]) -> list[dict] | str:
        """Match ``out`` (T, C, *S; changed in place) frame by frame to the real images' pixel
        noise and texture (:mod:`workflow_lib.calibrate.texture`); returns what was done per
        frame, or why not."""
        nuclei = stain_calibrations(self.calibration).get(NUCLEUS_STAIN)
        target = None if nuclei is None else nuclei.get("texture")
        if nuclei is not None and target is None:
            reason = (f"{self.calibration_source} predates texture measurements: rerun it with "
                      "`snakemake --forcerun calibrate_dataset`")
            log.warning("texture not matched: %s", reason)
            return reason
        # The texture is measured inside nuclei of the one channel the calibration measured:
        # it applies where a one-channel model (trained on that channel) drew a nucleus channel.
        channels = [c for c, stain in enumerate(self.kind.stains)
                    if stain == NUCLEUS_STAIN and c < out.shape[1]]
        if nuclei is None or not channels or self.model_channels != 1:
            reason = ("the calibration measures the texture of nuclei in one channel; this "
                      "simulation's images are not drawn by a single-channel model or show no "
                      "nuclei")
            log.info("texture not matched: %s", reason)
            return reason
        rng = np.random.default_rng(np.random.SeedSequence([*seeds, TEXTURE_STREAM]))
        done = []
        for t in range(out.shape[0]):
            for c in channels:
                out[t, c], frame = match_texture(out[t, c], objects[t, min(c, objects.shape[1] - 1)],
                                                 target, rng)
                done.append(frame)
        log.info("texture matched to the real images: %s", done)
        return done
