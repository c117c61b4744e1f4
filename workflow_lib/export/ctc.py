"""Cell Tracking Challenge (CTC) layout, for time series kinds only: one sequence per sample.

::

    01/t000.tif ...                     image frames
    01_GT/TRA/man_track000.tif ...      tracking markers (here: the full instance masks)
    01_GT/TRA/man_track.txt             one line 'L B E P' per track
    01_GT/SEG/man_seg000.tif ...        segmentation masks (every frame annotated)
    02/... 02_GT/...                    the next time series sample, in the order given

Facts from the CTC naming and file content conventions (as read by the challenge's evaluation
software and by traccuracy's ``load_ctc_data``): frames are 8- or 16-bit TIFFs, 2D or 3D
(a 3D frame is one multi-page TIFF), numbered from 0 with three digits (four when a sequence
has more than 1000 frames); ``man_track.txt`` has one ``L B E P`` line per track (label, first
frame, last frame, parent label or 0) and label L must be present in exactly the frames B..E
of the TRA masks, a daughter starting after its parent's last frame. These are checked here
before anything is written (ValueError naming the sample).

Images: the channel that shows the tracked instances (``kind.downstream_channel``, or the one
image channel), scaled from [0, 1] to uint16 (``round(65535 * x)``, clipped). Masks: the
instances of :func:`workflow_lib.export.samples.instances`, the same array for TRA and SEG.
Written uncompressed, like the challenge's own data. Samples of kinds without a time axis
are skipped (listed in the summary).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from workflow_lib.export.samples import ExportSample
from workflow_lib.export.summary import Tally
from workflow_lib.export.tiff import write_image
from workflow_lib.io import atomic_write_text
from workflow_lib.simulate import track_text


def write(samples: list[ExportSample], root: Path, tally: Tally) -> None:
    series = []
    for sample in samples:
        if not sample.kind.time:
            tally.skip(sample, f"kind '{sample.kind.name}' has no time axis; the CTC layout "
                               "holds time series only")
            continue
        frames = [labels for _, _, labels in sample.frames()]
        check_tracks(sample.name, frames, sample.tracks)
        series.append((sample, frames))
    sequences = {}
    for number, (sample, frames) in enumerate(series, start=1):
        seq = f"{number:02d}"
        sequences[seq] = sample.name
        tally.sample(sample)
        tally.pair(sample)
        space = "ZYX" if sample.ndim == 3 else "YX"
        width = max(3, len(str(len(frames) - 1)))
        gt = root / f"{seq}_GT"
        for t, image in enumerate(sample.image):
            frame = np.clip(sample.segmentation_channel(image), 0, 1)
            pixels = np.round(frame * 65535).astype(np.uint16)
            files = [
                (root / seq / f"t{t:0{width}d}.tif", pixels),
                (gt / "TRA" / f"man_track{t:0{width}d}.tif", frames[t]),
                (gt / "SEG" / f"man_seg{t:0{width}d}.tif", frames[t]),
            ]
            for path, array in files:
                write_image(tally.claim(path), array, space, sample.spacing, compress=False)
                tally.file(sample)
        atomic_write_text(tally.claim(gt / "TRA" / "man_track.txt"), track_text(sample.tracks))
        tally.file(sample)
    tally.extra["sequences"] = sequences


def check_tracks(name: str, frames: list[np.ndarray], tracks: np.ndarray) -> None:
    """ValueError unless ``tracks`` (``L B E P`` rows) describe ``frames`` (instance arrays)
    exactly: ids unique and positive, L present in exactly frames B..E, every id of every frame
    in the tracks, parents known and ending before their daughters start."""
    where = f"sample {name!r}: tracks do not fit its labels"
    tracks = np.asarray(tracks, np.int64).reshape(-1, 4)
    ids, first, last, parents = tracks.T
    if np.any(ids < 1) or len(np.unique(ids)) != len(ids):
        raise ValueError(f"{where}: track ids must be unique and positive")
    if np.any(first < 0) or np.any(last < first) or np.any(last >= len(frames)):
        raise ValueError(f"{where}: frames B..E out of 0..{len(frames) - 1}")
    end = dict(zip(ids.tolist(), last.tolist()))
    for label, start, parent in zip(ids.tolist(), first.tolist(), parents.tolist()):
        if parent and (parent not in end or end[parent] >= start):
            raise ValueError(f"{where}: track {label} has parent {parent}, which is unknown or "
                             f"does not end before frame {start}")
    top = max(int(ids.max(initial=0)), max((int(f.max(initial=0)) for f in frames), default=0))
    present = np.zeros((len(frames), top + 1), bool)
    for t, frame in enumerate(frames):
        present[t, np.unique(frame)] = True
    present[:, 0] = False
    expected = np.zeros_like(present)
    for label, start, stop in zip(ids, first, last):
        expected[start:stop + 1, label] = True
    wrong = np.argwhere(present != expected)
    if len(wrong):
        t, label = (int(v) for v in wrong[0])
        has = "has" if present[t, label] else "lacks"
        raise ValueError(f"{where}: frame {t} {has} id {label} ({len(wrong)} such mismatches)")
