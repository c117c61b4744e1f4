"""Stages of envs/simulate.yaml: calibration, simulated labels, their CTC tracks, sketches."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from workflow_lib import calibrate
from workflow_lib.calibrate.check import unsupervised_vs_masks
from workflow_lib.calibrate.figures import calibration_figure
from workflow_lib.dataset import index_files, read_image
from workflow_lib.errors import ConfigError
from workflow_lib.io import (
    atomic_write_text, axes_for, read_json, read_tiff, write_h5, write_json, write_tiff,
)
from workflow_lib.simulate import NUCLEUS_STAIN, Kind, get_kind, sample_rng, simulate, track_text
from workflow_lib.sketch import annotations, make_sketch
from workflow_lib.sketch.preview import write_preview
from workflow_lib.workflow import chunks, config
from workflow_lib.workflow.stages.chunk import clear_stale, require, write_manifest
from workflow_lib.plotting import save_figure
from workflow_lib.workflow.inputs import read_mask, read_real_mask
from workflow_lib.workflow.runner import Job

log = logging.getLogger("cellsynth")


def calibrate_dataset(job: Job) -> None:
    """The train split's real images -> calibration.json (measurements of each stain, on its
    channel) and calibration.png (per stain: the objects found in the first image, and the
    distributions)."""
    p, dataset = job.params.calibration, job.wildcards.dataset
    masks = {Path(m).stem: m for m in job.input.masks}
    measured = config.calibration_channels(p)
    names, images = [], {stain: [] for stain in measured}
    for name, path in sorted(index_files(job.input.train).items()):
        array = read_image(path)
        names.append(name)
        for stain, channel in measured.items():
            if not 0 <= channel < array.shape[0]:
                raise ConfigError(config.key(dataset, "calibration", "channel"),
                                  f"channel {channel} does not exist in {path} ({array.shape[0]} channels)")
            images[stain].append(array[channel])
    # the masks outline the objects of the first stain (nuclei, or the cells of a membrane stain)
    first = next(iter(measured))
    given = [read_real_mask(masks[name], images[first][k].shape) if name in masks else None
             for k, name in enumerate(names)]
    settings = config.measure_settings(p)
    results = {}
    for stain in measured:
        stain_masks = given if stain == first else [None] * len(names)
        results[stain] = _measure_stain(dataset, stain, images[stain], stain_masks, settings, names)
    rows = []
    for stain, result in results.items():
        _, find = calibrate.MEASUREMENTS[stain]
        mask = given[0] if stain == first else None
        found = mask if mask is not None else find(images[stain][0], settings)
        rows.append((result, images[stain][0], found))
    save_figure(calibration_figure(rows), job.output.figure, dpi=90)
    write_json(job.output.json, calibrate.with_other_stains(results))


def _measure_stain(dataset: str, stain: str, images: list[np.ndarray],
                   given: list[np.ndarray | None], settings: calibrate.MeasureSettings,
                   names: list[str]) -> dict:
    """One stain's calibration of the train images (``given``: masks where known), logged and
    checked for whole objects."""
    measure, _ = calibrate.MEASUREMENTS[stain]
    result = measure(images, given, settings)
    result["train_images"] = names
    check = unsupervised_vs_masks(measure, images, given, settings, names)
    if check is not None:
        result["unsupervised_vs_masks"] = check
        _say_how_far(dataset, stain, check)
    _check_whole_objects(dataset, stain, result["objects"], names)
    log.info("calibration of %s (%s stain): %d objects in %d images, density %s, radius %s",
             dataset, stain, result["objects"], len(images), result["density"].get("median"),
             (result["properties"]["radius"]["summary"] or {}).get("median"))
    return result


def _say_how_far(dataset: str, stain: str, check: dict) -> None:
    """Log how far the unsupervised measurement is from the masks; a warning beyond target."""
    thing = calibrate.OBJECT_NAME[stain]
    density, radius = check["density"]["ratio"], check["radius"]["ratio"]
    text = (f"on the {len(check['images'])} train image(s) with a mask, the unsupervised "
            f"measurement finds {check['objects']['unsupervised']} {thing}(s) where the masks "
            f"hold {check['objects']['masks']}: density x{density:.2f}, median radius "
            f"x{radius:.2f}" if density is not None and radius is not None else
            f"on the train images with a mask, the unsupervised measurement could not be "
            f"compared with the masks ({check['objects']})")
    if all(check["holds"].values()):
        log.info("calibration of %s: %s (calibration.json, unsupervised_vs_masks)", dataset, text)
    else:
        log.warning("calibration of %s: %s, beyond 10 %% density or 5 %% radius: the train images "
                    "without a mask are measured as badly; give masks of more of them or tune "
                    "calibration.sigma/h (calibration.json, unsupervised_vs_masks)", dataset, text)


def _check_whole_objects(dataset: str, stain: str, whole: int, images: list[str]) -> None:
    """Refuses a calibration without a whole object to measure; warns when it has few."""
    thing = calibrate.OBJECT_NAME[stain]
    listed = ", ".join(images)
    if whole == 0:
        raise ConfigError(
            config.key(dataset, "calibration"),
            f"no {thing} lies wholly inside the train images ({listed}): none was found, or every "
            f"one found touches the image border, so sizes and shapes cannot be measured; "
            f"calibrate from larger images, give masks of some of them (calibration.masks), or "
            f"set the simulations' params instead of `calibrate: true`")
    if whole < calibrate.FEW_OBJECTS:
        log.warning("the calibration rests on %d whole %s(s) in the train images (%s): its size, "
                    "shape and brightness distributions are rough; larger or more train images, "
                    "or calibration.masks, make them reliable", whole, thing, listed)


def simulate_chunk(job: Job) -> None:
    """A chunk of simulated label images, each with its metadata JSON (and, for time series,
    its CTC ``res_track.txt``); the chunk's manifest last."""
    p, wc, files = job.params, job.wildcards, job.params.files
    samples = chunks.samples(wc.chunk)
    clear_stale(files, "simulate")
    shape = list(p.shape)
    params = p.params
    if p.calibrate:
        with config.keyed(config.sim_key(wc.dataset, wc.sim)):
            params = calibrate.simulation_params(read_json(job.input.calibration), get_kind(p.kind), shape, params)
    kind, settings = config.simulation_params(wc.dataset, wc.sim, p.kind, params, len(shape))
    masks = list(getattr(job.input, "masks", None) or []) if kind.needs_mask else []
    layout = axes_for(len(shape), time=kind.time)
    spacing = _sample_spacing(job.params.pixel_size, params, len(shape))
    records = []
    for n, i in enumerate(samples):
        mask_path = masks[n] if masks else None
        mask = read_mask(mask_path, len(shape)) if mask_path else None
        with config.keyed(config.sim_key(wc.dataset, wc.sim, "params")):
            sim = simulate(kind.name, shape, settings, sample_rng(p.seed, i), mask=mask)
        if sim.count == 0:
            log.warning("%s sample %d has no instance (an empty label image)",
                        config.sim_key(wc.dataset, wc.sim), i)
        write_tiff(files["labels"][n], sim.labels, layout, spacing=spacing)
        write_json(files["meta"][n], {
            "kind": kind.name,
            "sample": i,
            "seed": p.seed,
            "shape": shape,
            "layout": layout,
            "array_shape": list(sim.labels.shape),
            "instances": sim.count,
            "params": params,
            "calibrated": bool(p.calibrate),
            "source_mask": str(mask_path) if mask_path else None,
            "tracks": sim.tracks.tolist() if sim.tracks is not None else None,
            "spacing_um": spacing,
        })
        if kind.time:
            tracks = np.asarray(sim.tracks if sim.tracks is not None else [], np.int64).reshape(-1, 4)
            Path(files["tracks"][n]).parent.mkdir(parents=True, exist_ok=True)
            atomic_write_text(files["tracks"][n], track_text(tracks))
        log.info("%s sample %d: %d instances, labels %s", kind.name, i, sim.count, sim.labels.shape)
        records.append({"sample": i, "instances": sim.count})
    log.info("pixel size %s", f"{spacing} um ([Z,] Y, X)" if spacing else
             "unknown (no `pixel_size` in the config, none in the image metadata): none written")
    written = files["labels"] + files["meta"] + (files["tracks"] if kind.time else [])
    write_manifest(job.output[0], wc.chunk, records, written)


def _sample_spacing(
    pixel_size: list[float] | None, params: dict[str, Any] | None, ndim: int
) -> list[float] | None:
    """Microns per axis (``[Z,] Y, X``) of a simulated sample: the data set's ``pixel_size``
    (rule param: :func:`workflow_lib.workflow.config.pixel_size_um`; None when unknown), with
    the Z step of a 3D simulation that sets ``z_scale`` (given or calibrated) = ``z_scale`` x
    the Y/X pixel size (the mean of Y and X), since it draws Z ``z_scale`` times coarser.
    Simulations without ``z_scale`` keep the data set's own Z step."""
    if pixel_size is None:
        return None
    spacing = [float(v) for v in pixel_size][-ndim:]
    z_scale = (params or {}).get("z_scale")
    if ndim == 3 and z_scale is not None:
        spacing[0] = float(z_scale) * (spacing[1] + spacing[2]) / 2
    return spacing


def _read_labels(path: str, kind: Kind, spatial: int) -> np.ndarray:
    labels, _ = read_tiff(path, axes=axes_for(spatial, time=kind.time))
    return labels


def sketch_chunk(job: Job) -> None:
    """A chunk of labels -> sketch TIFFs in [-1, 1], annotation HDF5 files and PNG previews;
    the chunk's manifest last."""
    wc, files = job.wildcards, job.params.files
    require(files["labels"] + files["meta"], "simulate_chunk")
    clear_stale(files, "sketch")
    prefix = config.sim_key(wc.dataset, wc.sim, "sketch")
    raw = job.params.sketch
    measured_raw: dict[str, dict] = {}
    if job.params.calibrate:
        # the label channels showing a calibrated stain take its measurements; the others
        # (multichannel's cells beside nuclei calibrated alone) keep their own sketch settings
        real = read_json(job.input.calibration)
        measured_raw = {stain: calibrate.sketch_params(m, raw, job.params.sketch_explicit)
                        for stain, m in calibrate.stain_calibrations(real).items()}
        edges = getattr(job.input, "edges", None)   # the edge trial (absent: the user set one)
        if edges:
            shift = read_json(edges)["shift_px"]
            measured_raw[NUCLEUS_STAIN]["edge_shift"] = shift
            log.info("calibrated nucleus channels: edges shifted %+.3f px (edge trial, %s)",
                     shift, edges)
    records = []
    for n, i in enumerate(chunks.samples(wc.chunk)):
        meta = read_json(files["meta"][n])
        kind = get_kind(meta["kind"])
        spatial = len(meta["shape"])
        labels = _read_labels(files["labels"][n], kind, spatial)
        params = config.sketch_settings(raw, spatial, prefix)
        if measured_raw:
            measured = {stain: config.sketch_settings(m, spatial, prefix)
                        for stain, m in measured_raw.items()}
            params = [measured.get(stain, params) for stain in kind.stains]
        with config.keyed(prefix):
            sketch = make_sketch(labels, kind, params, sample_rng(job.params.seed, i, stream=1))
        layout = axes_for(spatial, time=kind.time)
        spacing = meta.get("spacing_um")  # the labels' pixel size (simulate_chunk)
        write_tiff(files["sketch"][n], sketch, layout, spacing=spacing)
        write_h5(
            files["annotations"][n],
            annotations(labels, sketch, time=kind.time),
            {"kind": kind.name, "layout": layout, "sample": i,
             "element_size_um": None if spacing is None else np.asarray(spacing, np.float64)},
        )
        title = f"{wc.sim} #{i}: {kind.name}, {meta['instances']} ids"
        write_preview(files["preview"][n], labels, sketch, title, time=kind.time)
        log.info("sketch %s sample %d: %s in [%.3f, %.3f]",
                 config.sim_key(wc.dataset, wc.sim), i, sketch.shape, sketch.min(), sketch.max())
        records.append({"sample": i, "min": float(sketch.min()), "max": float(sketch.max())})
    write_manifest(job.output[0], wc.chunk, records, files["sketch"] + files["annotations"])
