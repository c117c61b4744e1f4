"""Atomic file writes: write to a temporary file beside the target, then rename.

A job killed in the middle then leaves at most a ``.tmp-*`` file, never a complete-looking
but truncated output.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from workflow_lib.errors import CellsynthError

# Below this many free bytes, a write failure without an errno (torch.save's RuntimeError)
# is most likely a full disk: a writer's buffer would not fit.
_NEARLY_FULL = 64 << 20


class OutputError(CellsynthError, OSError):
    """An output could not be written. The message names the file and the cause."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: cannot write ({problem})")

    def __reduce__(self):
        return (type(self), (self.path, self.problem))


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` on success.

    The temporary file keeps the target's suffix so libraries that dispatch on it
    (tifffile, h5py, matplotlib) behave, and gets the mode a plain ``open()`` would give
    (0666 less the umask). On any exception the temporary file is removed; an ``OSError`` or
    ``RuntimeError`` (torch.save's I/O errors) becomes an :class:`OutputError` naming ``path``.
    """
    target = Path(path)
    tmp = None
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = _create_temporary(target)
        yield tmp
        os.replace(tmp, target)
    except OutputError:
        _remove(tmp)
        raise
    except (OSError, RuntimeError) as exc:
        problem = _describe_failure(exc, target.parent)
        _remove(tmp)
        raise OutputError(target, problem) from exc
    except BaseException:
        _remove(tmp)
        raise


def _remove(tmp: Path | None) -> None:
    if tmp is not None:
        tmp.unlink(missing_ok=True)


def _create_temporary(target: Path) -> Path:
    """Create an empty, uniquely named file beside ``target``.

    Not ``mkstemp``: its 0600 mode would survive the rename. Creating with 0666 lets the kernel
    apply the umask (and default ACLs) at that moment, exactly as for ``open()``, without
    reading the umask, which cannot be done race-free across threads.
    """
    tmp = target.with_name(f".tmp-{target.stem}-{secrets.token_hex(8)}{target.suffix}")
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
    return tmp


def _describe_failure(exc: OSError | RuntimeError, folder: Path) -> str:
    """One line: the cause of a failed write, and the free space when the disk is full.

    Measured before the temporary file is removed, while the disk is as full as the writer
    found it. Errors without an errno (torch.save's RuntimeError, some h5py errors) count as
    a full disk when little space is left.
    """
    code = getattr(exc, "errno", None)
    cause = " ".join(str(getattr(exc, "strerror", None) or exc).split())
    if code is None:
        cause = f"{type(exc).__name__}: {cause}" if cause else type(exc).__name__
    try:
        free = shutil.disk_usage(folder).free
    except OSError:
        free = None
    if code == errno.ENOSPC:
        return "no space left on device" + (f" ({free} bytes free)" if free is not None else "")
    if code is None and free is not None and free < _NEARLY_FULL:
        return f"no space left on device ({free} bytes free; {cause})"
    return cause


def atomic_write_text(path: str | Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
