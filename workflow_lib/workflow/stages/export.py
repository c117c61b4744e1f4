"""Stage of envs/simulate.yaml: a data set's synthetic pairs in a training tool's layout."""

from __future__ import annotations

import logging

import numpy as np

from workflow_lib.export import ExportSample, export
from workflow_lib.io import axes_for, read_json, read_tiff
from workflow_lib.simulate import get_kind
from workflow_lib.workflow.runner import Job
from workflow_lib.workflow.stages.chunk import require

log = logging.getLogger("cellsynth")


def export_dataset(job: Job) -> None:
    """All samples of every simulation (names ``{sim}_{i}``) -> ``results/{ds}/export/{format}``."""
    samples, flagged = [], []
    files = job.params.files   # the samples' files, made by the synthesis chunks (input)
    require(files["labels"] + files["meta"], "simulate_chunk")
    require(files["image"] + files["check"], "synthesize_chunk")
    for (sim, i, kind_name), labels, image, meta, check in zip(
        job.params.samples, files["labels"], files["image"], files["meta"], files["check"],
        strict=True,
    ):
        if read_json(check).get("flagged"):
            flagged.append(f"{sim}_{i}")
            continue
        kind = get_kind(kind_name)
        axes = axes_for(job.params.ndim, time=kind.time)
        recorded = read_json(meta)
        tracks = None
        if kind.time:
            tracks = np.asarray(recorded["tracks"] or [], np.int64).reshape(-1, 4)
        samples.append(ExportSample(
            f"{sim}_{i}", kind, read_tiff(image, axes=axes)[0], read_tiff(labels, axes=axes)[0],
            tracks, spacing=recorded.get("spacing_um"),  # the labels' pixel size, or None
        ))
    if flagged:
        log.warning("left out of the %s export: %s (their synthetic images failed the annotation "
                    "check, see images/<i>.json)", job.wildcards.format, ", ".join(flagged))
    summary = export(job.wildcards.format, samples, job.output[0])
    log.info("%s export: %d of %d samples, %d files; skipped: %s", summary["format"],
             summary["exported"], summary["samples"], summary["files"],
             [s["name"] for s in summary["skipped"]] or "none")
