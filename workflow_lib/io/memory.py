"""Refuse images whose declared size cannot fit in memory, before anything is allocated.

A damaged or forged header (a TIFF claiming 100000 x 100000 pixels over 16 bytes of data)
would otherwise end in a MemoryError traceback, or in the machine swapping to a halt.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

from workflow_lib.errors import InputError


def available_memory() -> int | None:
    """Bytes that can still be allocated: MemAvailable plus SwapFree of ``/proc/meminfo``, or
    the physical memory where that file is missing; None where neither is known."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            fields = dict(line.split(":", 1) for line in f if ":" in line)
        return sum(int(fields[k].split()[0]) * 1024 for k in ("MemAvailable", "SwapFree"))
    except (OSError, KeyError, ValueError):
        pass
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def format_bytes(n: int) -> str:
    """``n`` bytes for people: 16 bytes, 3.2 KiB, 18.6 GiB."""
    if n < 1024:
        return f"{n} bytes"
    exp = min((int(n).bit_length() - 1) // 10, 4)
    return f"{n / 1024**exp:.1f} {'KMGT'[exp - 1]}iB"


def declared_nbytes(shape: tuple[int, ...], dtype: np.dtype) -> int:
    """Bytes of an array of ``shape`` and ``dtype``, in Python ints: forged sizes overflow int64."""
    return math.prod(int(s) for s in shape) * np.dtype(dtype).itemsize


def check_fits_memory(path: str | Path, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """Raise :class:`InputError` when an array of ``shape`` and ``dtype`` exceeds the memory left."""
    nbytes = declared_nbytes(shape, dtype)
    budget = available_memory()
    if budget is not None and nbytes > budget:
        raise InputError(
            path,
            f"declares an image of shape {tuple(shape)} {np.dtype(dtype)} ({format_bytes(nbytes)}), "
            f"more than the {format_bytes(budget)} of memory available: a damaged header, or "
            "an image too large for this machine",
        )
