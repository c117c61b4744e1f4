"""What an export wrote: counts per kind, skipped samples, and format facts (JSON-ready)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from workflow_lib.export.samples import ExportSample


class Tally:
    """Counts the files of an export as its writer makes them.

    ``file(sample)`` for every file a sample gets (``file(sample, n)``: ``n`` of them),
    ``pair(sample)`` for every image/label pair (a cellpose slice, an nnU-Net case, a CTC
    sequence, an OME-Zarr image...), ``skip`` for a sample left out, ``extra`` for format
    facts. Output names are checked to be unique.
    """

    def __init__(self, fmt: str, root: Path):
        self.fmt = fmt
        self.root = root
        self.kinds: dict[str, dict[str, int]] = {}
        self.skipped: list[dict[str, str]] = []
        self.shared_files = 0
        self.extra: dict[str, Any] = {}
        self._paths: set[Path] = set()

    def _counts(self, sample: ExportSample) -> dict[str, int]:
        return self.kinds.setdefault(sample.kind.name, {"samples": 0, "pairs": 0, "files": 0})

    def claim(self, path: Path) -> Path:
        """``path``, refused when an earlier sample or frame already wrote it."""
        if path in self._paths:
            raise ValueError(f"{self.fmt} export: two samples or frames would both write "
                             f"{path.relative_to(self.root)}; sample names must be unique")
        self._paths.add(path)
        return path

    def sample(self, sample: ExportSample) -> None:
        self._counts(sample)["samples"] += 1

    def pair(self, sample: ExportSample) -> None:
        self._counts(sample)["pairs"] += 1

    def file(self, sample: ExportSample | None, count: int = 1) -> None:
        if sample is None:
            self.shared_files += count
        else:
            self._counts(sample)["files"] += count

    def skip(self, sample: ExportSample, reason: str) -> None:
        self.skipped.append({"name": sample.name, "kind": sample.kind.name, "reason": reason})

    def summary(self, total: int) -> dict[str, Any]:
        kinds = {k: dict(v) for k, v in sorted(self.kinds.items())}
        return {
            "format": self.fmt,
            "samples": total,
            "exported": sum(v["samples"] for v in kinds.values()),
            "pairs": sum(v["pairs"] for v in kinds.values()),
            "files": sum(v["files"] for v in kinds.values()) + self.shared_files,
            "kinds": kinds,
            "skipped": list(self.skipped),
            **self.extra,
        }
