"""Kind ``masks``: user label images (manual annotation, a segmentation) as the structure.

Sample ``i`` uses mask file ``i mod n`` of the sorted glob ``params.masks`` (the workflow finds
and reads the files; this module only gets the array). With ``augment`` it is flipped along
every spatial axis and turned by a multiple of 90 degrees in Y/X at random; then fitted to
``shape``: ``fit: crop`` cuts a random window (zero padding where the mask is smaller),
``fit: resize`` scales it with nearest-neighbour interpolation. Ids are renumbered 1..N and every instance is
cut to its largest connected piece.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from workflow_lib.errors import ParamError
from workflow_lib.simulate.labels import clean
from workflow_lib.simulate.params import Params

FITS = ("crop", "resize")
KEYS = ("masks", "augment", "fit")


@dataclass(frozen=True)
class MaskSettings:
    masks: str          # glob of the mask files (the workflow reads them)
    augment: bool       # random flips and 90 degree turns
    fit: str            # one of FITS


def read_settings(p: Params, ndim: int) -> MaskSettings:
    """Every key of the kind (the same for any ``ndim``); the glob is required."""
    settings = MaskSettings(p.text("masks"), p.flag("augment", True), p.choice("fit", "crop", FITS))
    p.finish()
    return settings


def fit_mask(
    mask: np.ndarray, shape: tuple[int, ...], s: MaskSettings, rng: np.random.Generator
) -> np.ndarray:
    """Labels (1, *shape) uint16 from one spatial label array ``mask`` ((Y, X) or (Z, Y, X))."""
    if mask.ndim != len(shape):
        raise ParamError(
            "masks", f"the mask has {mask.ndim} spatial axes but the simulation shape has {len(shape)}"
        )
    mask = np.asarray(mask).astype(np.int64, copy=False)
    if s.augment:
        flips = tuple(ax for ax in range(mask.ndim) if rng.uniform() < 0.5)
        mask = np.flip(mask, flips) if flips else mask
        mask = np.rot90(mask, int(rng.integers(0, 4)), axes=(-2, -1))
    if s.fit == "resize":
        zoom = np.array(shape) / np.array(mask.shape)
        out = ndimage.zoom(mask, zoom, order=0, grid_mode=True, mode="grid-constant")
    else:
        out = np.zeros(shape, mask.dtype)
        src, dst = [], []
        for have, want in zip(mask.shape, shape):
            if have >= want:
                start = int(rng.integers(0, have - want + 1))
                src.append(slice(start, start + want))
                dst.append(slice(0, want))
            else:
                start = (want - have) // 2
                src.append(slice(0, have))
                dst.append(slice(start, start + have))
        out[tuple(dst)] = mask[tuple(src)]
    return clean(out)[None]
