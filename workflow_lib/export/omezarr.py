"""OME-Zarr layout: one OME-NGFF image ``{name}.zarr`` per sample, its labels inside.

::

    {name}.zarr/0/ 1/ ...                  image levels, float32 [0, 1] as stored
    {name}.zarr/labels/{label}/0/ 1/ ...   label levels, uint16 (uint32 above 65535 ids)
    {name}_tracks.csv                      time series: one 'L,B,E,P' row per track (CTC)

Facts from OME-NGFF 0.4 (as written and read by ome-zarr-py's ``writer``/``reader``): a
``multiscales`` group lists its levels, largest first, each with a ``scale`` transformation
(physical size of one pixel per axis); axes are ``[t,] [c,] [z,] y, x`` in that order with a
type (time, channel, space) and an optional unit; a ``labels`` group beside the levels names
label images, each a multiscale group with ``image-label`` metadata; chunk keys use ``/``.

Image axes ``[t,] c, [z,] y, x`` (time series as T); space axes in ``micrometer`` when the
sample's spacing is known, else unitless with scale 1. Level ``k`` of every axis has scale
``spacing * factor`` (1 on t and c). Levels halve Y and X (odd sides round up) while the halved
sides stay at least :data:`MIN_SIDE` pixels, always with level 0; Z is halved with them only
while its pixel size is at most twice the finer Y/X size, so an anisotropic stack keeps its
planes until the in-plane size catches up. Image levels are 2x2(x2) block means, label levels
every second pixel (ids are never averaged).

Label images: a kind with several label channels (multichannel: ``cells``, ``nuclei``) gets one
per channel, named as the kind names it; other kinds one ``labels`` image of
:func:`workflow_lib.export.samples.instances` per frame. Tracks (checked as for CTC, see
:func:`.ctc.check_tracks`) describe the label image of the kind's downstream channel; they lie
beside the ``.zarr``, not in it, because zarr warns about any file in its hierarchy that is not
one of its own.

Chunks (see :data:`CHUNK_YX`, :data:`CHUNK_Z`): one frame, one channel, up to 16 Z planes of
up to 256x256 pixels, a few MiB that napari loads for one plane of a view without reading a
whole stack. Each level is written slab by slab (one chunk of Z planes of one frame at a time)
and computed slab by slab from the level above, so a sample needs about a third of its size in
memory on top of its arrays.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import numcodecs
import numpy as np
import zarr
from ome_zarr.format import FormatV04
from ome_zarr.writer import write_label_metadata, write_multiscales_metadata

from workflow_lib.export.ctc import check_tracks
from workflow_lib.export.samples import ExportSample, instances, mask_dtype
from workflow_lib.export.summary import Tally
from workflow_lib.io import atomic_write_text
from workflow_lib.simulate import Kind

# NGFF 0.4 (zarr v2 format): what Fiji's NGFF readers, MoBIE, older napari and ome-zarr-py all read.
NGFF = FormatV04()
MIN_SIDE = 64
CHUNK_YX, CHUNK_Z = 256, 16
TRACKS_SUFFIX = "_tracks.csv"
# ome-zarr-py's own choice for NGFF 0.4 data; Blosc is read by every zarr v2 reader
_COMPRESSOR = numcodecs.Blosc(cname="zstd", clevel=5, shuffle=numcodecs.Blosc.SHUFFLE)


def write(samples: list[ExportSample], root: Path, tally: Tally) -> None:
    tally.extra["ngff_version"] = NGFF.version
    for sample in samples:
        path = tally.claim(root / f"{sample.name}.zarr")
        labels = label_images(sample)
        tracks_path = None
        if sample.kind.time:
            frames = list(labels[tracked_label(sample.kind)])
            check_tracks(sample.name, frames, sample.tracks)
            tracks_path = tally.claim(root / f"{sample.name}{TRACKS_SUFFIX}")
        write_sample(path, sample, labels)
        tally.sample(sample)
        tally.pair(sample)
        tally.file(sample, _file_count(path))
        if tracks_path is not None:
            rows = "".join(",".join(map(str, row)) + "\n" for row in sample.tracks.tolist())
            atomic_write_text(tracks_path, "L,B,E,P\n" + rows)
            tally.file(sample)


def label_images(sample: ExportSample) -> dict[str, np.ndarray]:
    """Label image name -> instances ``([T,] [Z,] Y, X)``, uint16 or uint32 (see module doc)."""
    kind, labels = sample.kind, sample.labels
    channel_axis = 1 if kind.time else 0
    if not _per_channel(kind):
        if kind.time:
            lab = np.stack([instances(frame, kind) for frame in labels])
        else:
            lab = instances(labels, kind)
        return {"labels": lab.astype(mask_dtype(lab), copy=False)}
    if labels.shape[channel_axis] != len(kind.label_channels):
        raise ValueError(f"sample {sample.name!r}: {labels.shape[channel_axis]} label channels, "
                         f"kind '{kind.name}' names {len(kind.label_channels)}")
    images = {}
    for c, name in enumerate(kind.label_channels):
        lab = labels[(slice(None),) * channel_axis + (c,)]
        images[name] = lab.astype(mask_dtype(lab), copy=False)
    return images


def tracked_label(kind: Kind) -> str:
    """Name of the label image that CTC tracks of ``kind`` describe."""
    return kind.label_channels[kind.downstream_channel] if _per_channel(kind) else "labels"


def _per_channel(kind: Kind) -> bool:
    """Whether ``kind`` gets one label image per label channel (layers are not channels)."""
    return not kind.layered and len(kind.label_channels) > 1


def write_sample(path: Path, sample: ExportSample, labels: dict[str, np.ndarray]) -> None:
    """One OME-NGFF image at ``path``: the sample's image and its ``labels`` images."""
    steps = pyramid_steps(sample.image.shape[-sample.ndim:], sample.spacing)
    spatial = ("z", "y", "x")[-sample.ndim:]
    unit = {} if sample.spacing is None else {"unit": "micrometer"}
    space = [{"name": a, "type": "space", **unit} for a in spatial]
    time = [{"name": "t", "type": "time"}] if sample.kind.time else []
    image_axes = time + [{"name": "c", "type": "channel"}] + space
    # Labels have no c axis: NGFF 0.4 does not ask for one, ome_zarr.reader (the older
    # napari-ome-zarr) hands them to napari as stored, and napari-ome-zarr splits the image's
    # channels into layers of [t,] [z,] y, x, which a label layer lines up with only without c
    # (a size-1 c would sit on the image's t in a time series: napari aligns the last axes).
    label_axes = time + space

    group = zarr.open_group(str(path), mode="w-", zarr_format=2)
    _write_multiscale(group, sample.image, len(image_axes) - sample.ndim, steps, _block_mean,
                      sample.spacing, sample.kind.time, image_axes, sample.name)
    labels_group = group.create_group("labels")
    for name, lab in labels.items():
        _write_multiscale(labels_group.create_group(name), lab, len(label_axes) - sample.ndim,
                          steps, _every_second, sample.spacing, sample.kind.time, label_axes,
                          name)
        write_label_metadata(labels_group, name, fmt=NGFF, source={"image": "../../"})


def pyramid_steps(shape: tuple[int, ...], spacing: tuple[float, ...] | None
                  ) -> list[tuple[int, ...]]:
    """Per level, the step (1 or 2) per spatial axis from the level above; level 0: all 1.

    ``shape``: ``[Z,] Y, X`` pixels; ``spacing``: microns per axis, or None (taken as equal).
    """
    size = np.array(spacing if spacing is not None else (1.0,) * len(shape), float)
    shape_now = np.array(shape)
    steps = [(1,) * len(shape)]
    while min(-(-shape_now[-2:] // 2)) >= MIN_SIDE:
        step = [2] * len(shape)
        if len(shape) == 3 and (shape_now[0] == 1 or size[0] > 2 * min(size[1:])):
            step[0] = 1
        steps.append(tuple(step))
        size = size * step
        shape_now = -(-shape_now // step)
    return steps


def _write_multiscale(group: zarr.Group, array: np.ndarray, lead: int,
                      steps: list[tuple[int, ...]],
                      reduce: Callable[[np.ndarray, tuple[int, ...]], np.ndarray],
                      spacing: tuple[float, ...] | None, time: bool, axes: list[dict],
                      name: str) -> None:
    """Levels ``0, 1, ...`` of ``array`` (``lead`` non-spatial axes, then ``[Z,] Y, X``) in
    ``group``, each made with ``reduce(block, step)`` from the level above, plus the
    ``multiscales`` metadata (scales in microns, or pixels when ``spacing`` is None)."""
    ndim = array.ndim - lead
    pixel = np.array(spacing if spacing is not None else (1.0,) * ndim, float)
    factor = np.ones(ndim, int)
    datasets = []
    above = array
    for k, step in enumerate(steps):
        factor = factor * step
        shape = array.shape[:lead] + tuple(-(-n // s) for n, s in zip(above.shape[lead:], step))
        level = above if k == 0 else np.empty(shape, array.dtype)
        chunks = (1,) * lead + ((min(shape[lead], CHUNK_Z),) if ndim == 3 else ()) \
            + tuple(min(n, CHUNK_YX) for n in shape[-2:])
        stored = group.create_array(
            str(k), shape=shape, chunks=chunks, dtype=array.dtype, fill_value=0,
            compressors=_COMPRESSOR, chunk_key_encoding={"name": "v2", "separator": "/"})
        for out, source in _slabs(shape, lead, time, step, chunks):
            if k:
                level[out] = reduce(above[source], step)
            stored[out] = level[out]
        datasets.append({"path": str(k), "coordinateTransformations": [
            {"type": "scale", "scale": [1.0] * lead + (pixel * factor).tolist()}]})
        above = level
    write_multiscales_metadata(group, datasets, fmt=NGFF, axes=axes, name=name)


def _slabs(shape: tuple[int, ...], lead: int, time: bool, step: tuple[int, ...],
           chunks: tuple[int, ...]) -> Iterator[tuple[tuple, tuple]]:
    """``(index into a level, index of the same pixels in the level above)`` per slab: one
    frame (``time``: the first axis) and one chunk of Z planes, every other axis whole."""
    frames = range(shape[0]) if time else [None]
    ndim = len(shape) - lead
    z_ranges = [(z, min(z + chunks[lead], shape[lead])) for z in range(0, shape[lead],
                                                                        chunks[lead])] \
        if ndim == 3 else [None]
    rest = (slice(None),) * (lead - time)
    for t in frames:
        head = (t,) if time else ()
        for z in z_ranges:
            if z is None:
                yield head + rest, head + rest
            else:
                yield (head + rest + (slice(*z),),
                       head + rest + (slice(z[0] * step[0], z[1] * step[0]),))


def _block_mean(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """Means of ``step``-sized blocks over the last ``len(step)`` axes; odd sides repeat their
    last pixel, so the result has ``ceil(n / step)`` pixels per axis."""
    keep = block.ndim - len(step)
    pad = [(0, 0)] * keep + [(0, -n % s) for n, s in zip(block.shape[keep:], step)]
    if any(after for _, after in pad):
        block = np.pad(block, pad, mode="edge")
    split = block.shape[:keep] + sum(((n // s, s) for n, s in zip(block.shape[keep:], step)), ())
    axes = tuple(keep + 2 * i + 1 for i in range(len(step)))
    return block.reshape(split).mean(axis=axes, dtype=np.float32)


def _every_second(block: np.ndarray, step: tuple[int, ...]) -> np.ndarray:
    """Every ``step``-th pixel over the last ``len(step)`` axes (nearest: ids stay ids)."""
    return block[(Ellipsis, *(slice(None, None, s) for s in step))]


def _file_count(path: Path) -> int:
    return sum(len(files) for _, _, files in os.walk(path))
