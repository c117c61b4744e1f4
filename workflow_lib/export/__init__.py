"""Export of a data set's synthetic pairs to the folder layouts training tools read.

``export(fmt, samples, folder)`` writes one layout of :data:`FORMATS` under ``folder`` and
returns a JSON-ready summary (also written to ``folder/cellsynth_export.json``):

- ``cellpose``: ``{name}.tif`` + ``{name}_masks.tif`` (:mod:`.cellpose`; 3D as Z slices)
- ``stardist``: ``images/{name}.tif`` + ``masks/{name}.tif``, channel last (:mod:`.stardist`)
- ``nnunet``: nnU-Net v2 raw data set, Tiff3DIO, semantic interior/boundary (:mod:`.nnunet`)
- ``ctc``: Cell Tracking Challenge sequences of the time series samples (:mod:`.ctc`)
- ``ome-zarr``: one OME-NGFF 0.4 image ``{name}.zarr`` per sample with its label images,
  multiscale, in microns; time series as T with ``{name}_tracks.csv`` (:mod:`.omezarr`)

Names: a sample's ``name`` (``{sim}_{i}``, unique across simulations); frames of a time series
are ``{name}_t{t:03d}`` in the formats without a time axis (all but CTC and OME-Zarr). What
each format gets of a sample's label channels: :func:`.samples.instances`.

The whole layout is built in a hidden folder beside ``folder`` and swapped in when complete,
so a re-export leaves no stale file of an earlier one and a failed export leaves the earlier
one in place. An existing ``folder`` is only replaced when it is empty or holds an earlier
export (its ``cellsynth_export.json``); anything else is refused, never deleted.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from workflow_lib.export import cellpose, ctc, nnunet, stardist
from workflow_lib.export.samples import ExportSample, instances
from workflow_lib.export.summary import Tally
from workflow_lib.io import OutputError, atomic_write_text

FORMATS = ("cellpose", "stardist", "nnunet", "ctc", "ome-zarr")
MARKER = "cellsynth_export.json"

def _write_ome_zarr(samples: list[ExportSample], root: Path, tally: Tally) -> None:
    # ome-zarr takes about a second to import, and Snakemake imports this package to plan
    # every run: only the export job pays for it.
    from workflow_lib.export import omezarr

    omezarr.write(samples, root, tally)


_WRITERS: dict[str, Callable[[list[ExportSample], Path, Tally], None]] = {
    "cellpose": cellpose.write,
    "stardist": stardist.write,
    "nnunet": nnunet.write,
    "ctc": ctc.write,
    "ome-zarr": _write_ome_zarr,
}


def export(fmt: str, samples: Sequence[ExportSample], folder: str | Path) -> dict[str, Any]:
    """Write ``samples`` in layout ``fmt`` to ``folder`` (replacing an earlier export there).

    Returns ``{"format", "samples", "exported", "pairs", "files", "kinds": {kind: {"samples",
    "pairs", "files"}}, "skipped": [{"name", "kind", "reason"}], ...format facts}``; ``pairs``
    counts image/label pairs (cellpose slices, stardist images, nnU-Net cases, CTC
    sequences, OME-Zarr images), ``files`` every file but the summary itself (zarr chunks
    included). ValueError for an unknown format, no samples, repeated names or samples an
    nnU-Net data set cannot hold together.
    """
    if fmt not in _WRITERS:
        raise ValueError(f"unknown export format {fmt!r}; one of {', '.join(FORMATS)}")
    samples = list(samples)
    if not samples:
        raise ValueError(f"{fmt} export: no samples to export")
    names = [s.name for s in samples]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"{fmt} export: sample names must be unique, repeated: {repeated}")

    def build(root: Path) -> dict[str, Any]:
        tally = Tally(fmt, root)
        _WRITERS[fmt](samples, root, tally)
        summary = tally.summary(len(samples))
        atomic_write_text(root / MARKER, json.dumps(summary, indent=2) + "\n")
        return summary

    return _replace_folder(Path(folder), build)


def _replace_folder(target: Path, build: Callable[[Path], dict[str, Any]]) -> dict[str, Any]:
    """Run ``build`` on a new hidden folder beside ``target``, then swap it into place."""
    if target.exists() and not _replaceable(target):
        raise OutputError(target, f"exists and is not an earlier export (no {MARKER}); "
                                  "refusing to replace it")
    target.parent.mkdir(parents=True, exist_ok=True)
    token = secrets.token_hex(6)
    staging = target.with_name(f".{target.name}.new-{token}")
    old = target.with_name(f".{target.name}.old-{token}")
    try:
        staging.mkdir()
        summary = build(staging)
        if target.exists():
            os.replace(target, old)
            try:
                os.replace(staging, target)
            except BaseException:
                os.replace(old, target)
                raise
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except OutputError:
        raise
    except OSError as exc:
        raise OutputError(target, str(exc)) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return summary


def _replaceable(target: Path) -> bool:
    return target.is_dir() and ((target / MARKER).is_file() or not any(target.iterdir()))


__all__ = ["FORMATS", "MARKER", "ExportSample", "export", "instances"]
