"""What every chunk job does around its samples: clear their stale files, then, last, write the
chunk's manifest (layout.SIMULATED, ...), the one file Snakemake tracks for the chunk."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from workflow_lib.errors import InputError
from workflow_lib.io import file_digest, write_json
from workflow_lib.workflow import chunks, layout

log = logging.getLogger("cellsynth")


def clear_stale(files: Mapping[str, list[str]], stage: str) -> None:
    """Remove the files this chunk's ``stage`` and the later stages wrote for its samples
    before (``files``: the job's param, by name): an image is never left beside labels or a
    sketch it was not made from, and a killed job leaves only whole, current samples (each file
    is written atomically)."""
    removed = 0
    for path in (p for name in layout.written_from(stage) for p in files.get(name, ())):
        target = Path(path)
        if target.is_file():
            target.unlink()
            removed += 1
    if removed:
        log.info("removed %d file(s) of these samples from an earlier run", removed)


def require(paths: Iterable[str], rule: str) -> None:
    """Refuse (one line naming the file) a sample file that rule ``rule`` made and someone
    removed since: Snakemake tracks the chunk's manifest, not each sample's file."""
    for path in paths:
        if not Path(path).is_file():
            raise InputError(path, f"file not found, though its chunk was made: redo that stage "
                             f"with `snakemake --cores all --forcerun {rule}` (or delete the "
                             f"chunk's manifest under chunks/)")


def write_manifest(path: str, chunk: str, records: list[dict[str, Any]],
                   written: Iterable[str]) -> None:
    """The chunk's manifest: its samples, in order, with what the job recorded of them, and
    the SHA-256 of every file it ``written``. The digests make a manifest change whenever a
    sample does: Snakemake reruns the next stage only when an input's content changed (it
    compares checksums of small files), and the manifest is that input."""
    digests = {str(p): file_digest(p) for p in written}
    write_json(path, {"chunk": chunk, "samples": chunks.samples(chunk), "records": records,
                      "sha256": digests})
