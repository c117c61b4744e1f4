"""Random training patches streamed from the HDF5 files listed in an index CSV."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np

from workflow_lib.dataset import IMAGE_KEY
from workflow_lib.errors import InputError


class PatchSampler:
    """Draws random patches (C, *patch_size) from converted images in [0, 1].

    Files stay open and only the patch is read, so data sets larger than memory stream.
    Images smaller than a patch are mirror-padded. Patches come back scaled to [-1, 1].
    ``augment`` adds random flips on every spatial axis and, when Y and X agree in size,
    random 90-degree rotations in the YX plane (Z is left alone: it is often anisotropic).
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, paths: Sequence[str | Path], patch_size: Sequence[int], channels: int, augment: bool
    ):
        if not paths:
            raise InputError(None, "no training images: the train split of the index is empty")
        self.patch_size = tuple(int(p) for p in patch_size)
        self.augment = augment
        self.files: list[h5py.File] = []
        self.images: list[h5py.Dataset] = []
        try:
            for path in paths:
                self._open(Path(path), channels)
        except BaseException:
            self.close()
            raise

    def _open(self, path: Path, channels: int) -> None:
        if not path.is_file():
            raise InputError(path, "file not found")
        try:
            f = h5py.File(path, "r")
        except OSError as exc:
            raise InputError(path, f"not a readable HDF5 file ({exc})") from exc
        self.files.append(f)
        if IMAGE_KEY not in f:
            raise InputError(path, f"has no dataset '{IMAGE_KEY}'")
        ds = f[IMAGE_KEY]
        want = 1 + len(self.patch_size)
        if ds.ndim != want or ds.shape[0] != channels:
            raise InputError(
                path,
                f"'{IMAGE_KEY}' has shape {ds.shape}; the model needs (C, {'Z, ' * (want == 4)}Y, X) "
                f"with C = {channels}",
            )
        self.images.append(ds)

    def close(self) -> None:
        for f in self.files:
            f.close()
        self.files, self.images = [], []

    def __enter__(self) -> PatchSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def patch(self, rng: np.random.Generator) -> np.ndarray:
        """One random patch (C, *patch_size), float32 in [-1, 1]."""
        ds = self.images[rng.integers(len(self.images))]
        slices, pads = [slice(None)], [(0, 0)]
        for size, p in zip(ds.shape[1:], self.patch_size):
            start = int(rng.integers(0, size - p + 1)) if size >= p else 0
            slices.append(slice(start, start + min(size, p)))
            pads.append((0, max(0, p - size)))
        x = np.asarray(ds[tuple(slices)], dtype=np.float32)
        if any(after for _, after in pads):
            x = np.pad(x, pads, mode="symmetric")
        if self.augment:
            x = self._augment(x, rng)
        return np.ascontiguousarray(x * 2 - 1)

    def _augment(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        flips = [axis for axis in range(1, x.ndim) if rng.random() < 0.5]
        x = np.flip(x, flips) if flips else x
        if x.shape[-1] == x.shape[-2]:
            x = np.rot90(x, int(rng.integers(4)), axes=(-2, -1))
        return x

    def batch(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """``n`` random patches stacked: (n, C, *patch_size)."""
        return np.stack([self.patch(rng) for _ in range(n)])
