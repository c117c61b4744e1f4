"""The workflow's JSON files (metadata, calibration, metrics): written atomically, read with
one clear error."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from workflow_lib.errors import InputError
from workflow_lib.io.atomic import atomic_write_text


def write_json(path: str | Path, value: Any, indent: int = 1) -> None:
    """``value`` as JSON text at ``path``, atomically."""
    atomic_write_text(path, json.dumps(value, indent=indent) + "\n")


def read_json(path: str | Path) -> Any:
    """The JSON value in ``path``. Raises :class:`InputError` naming the file."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(path, f"not a readable JSON file ({exc})") from exc
