"""Microscope formats through bioio: OME-Zarr, OME-TIFF, CZI, ND2 and LIF, read lazily.

Each format has its bioio reader plugin (a separate package, installed with cellsynth; see the
README). The pixels come as a dask array in the reader's axis order (``TCZYX``), so a volume
larger than memory is read chunk by chunk by whoever slices it. Pixel sizes are microns per
axis: OME-Zarr scales in the units of their axes metadata (an axis without a length unit has no
size), OME-TIFF through :func:`workflow_lib.io.tiff.read_tiff_pixel_size` (bioio-ome-tiff
ignores ``PhysicalSize*Unit``), CZI, ND2 and LIF as their readers report them (microns).
"""

from __future__ import annotations

import importlib
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from workflow_lib.errors import InputError
from workflow_lib.io.formats import OME_TIFF_SUFFIXES, PLUGINS, image_suffix
from workflow_lib.io.tiff import _one_line, microns_per, read_tiff_pixel_size

log = logging.getLogger("cellsynth")


@dataclass(frozen=True)
class BioImageData:
    """One scene of a microscope file: ``array`` (dask, axes ``axes``) and the file's
    ``scenes``. Its pixel sizes: :func:`bioimage_pixel_size`."""

    array: Any
    axes: str
    scenes: tuple[str, ...]


def read_bioimage(path: str | Path, scene: int | str | None = None) -> BioImageData:
    """Open scene ``scene`` (index or name; None: the first, with a warning when there are
    more) of a microscope file, lazily. Raises :class:`InputError` naming the file when its
    plugin is not installed, it cannot be read, or the scene does not exist."""
    path = Path(path)
    image = _open(path)
    scenes = tuple(str(s) for s in image.scenes)
    chosen = _scene_index(path, scenes, scene)
    if scene is None and len(scenes) > 1:
        log.warning("%s has %d scenes (%s); converting the first, '%s': set `scene:` (an index "
                    "or a name) for this data set in the config to choose another", path,
                    len(scenes), ", ".join(scenes[:8]) + (", ..." if len(scenes) > 8 else ""),
                    scenes[0])
    try:
        image.set_scene(chosen)
        order = image.dims.order
        array = image.dask_data
    except Exception as exc:  # noqa: BLE001  (readers raise their own types on damaged files)
        raise InputError(path, f"cannot be read ({_one_line(exc)})") from exc
    if "S" in order:  # RGB samples: the channels when the file has no other channel axis
        samples, channels = array.shape[order.index("S")], array.shape[order.index("C")]
        drop = "S" if samples == 1 else "C"
        if samples > 1 and channels > 1:
            raise InputError(path, f"has both {channels} channels and {samples} RGB samples "
                                   "per pixel; convert it to one channel axis first")
        array = array[tuple(0 if a == drop else slice(None) for a in order)]
        order = order.replace(drop, "").replace("S", "C")
    return BioImageData(array, order, scenes)


def bioimage_pixel_size(path: str | Path, scene: int | str | None = None) -> dict[str, float]:
    """Axis letter -> microns of one scene of a microscope file, reading only its metadata."""
    path = Path(path)
    image = _open(path)
    image.set_scene(_scene_index(path, tuple(str(s) for s in image.scenes), scene))
    return _sizes(path, image)


def _open(path: Path) -> Any:
    suffix = image_suffix(path)
    package, module = PLUGINS[suffix]
    if not path.exists():
        raise InputError(path, "file not found")
    try:
        from bioio import BioImage

        reader = importlib.import_module(module).Reader
    except ImportError as exc:
        raise InputError(path, f"reading {suffix} files needs the bioio plugin {package}: "
                               f"pip install {package} (README, set-up)") from exc
    try:
        return BioImage(path, reader=reader)
    except Exception as exc:  # noqa: BLE001
        raise InputError(path, f"cannot be read by {package} ({_one_line(exc)})") from exc


def _scene_index(path: Path, scenes: tuple[str, ...], scene: int | str | None) -> int:
    if scene is None:
        return 0
    if isinstance(scene, int) and not isinstance(scene, bool):
        if 0 <= scene < len(scenes):
            return scene
    elif scene in scenes:
        return scenes.index(scene)
    raise InputError(path, f"has no scene {scene!r} (`scene:` in the config); its scenes: "
                           + ", ".join(f"{i} '{s}'" for i, s in enumerate(scenes[:20])))


def _sizes(path: Path, image: Any) -> dict[str, float]:
    suffix = image_suffix(path)
    if suffix in OME_TIFF_SUFFIXES:
        return read_tiff_pixel_size(path)[0]
    physical = image.physical_pixel_sizes
    raw = {} if physical is None else {"Z": physical.Z, "Y": physical.Y, "X": physical.X}
    units = _zarr_units(path, image) if suffix.endswith(".zarr") else dict.fromkeys(raw, 1.0)
    sizes = {}
    for axis, value in raw.items():
        factor = units.get(axis)
        if value is not None and factor is not None and float(value) > 0:
            sizes[axis] = float(value) * factor
    return sizes


def _zarr_units(path: Path, image: Any) -> dict[str, float]:
    """Microns per unit of the spatial axes of an OME-Zarr's multiscale (NGFF 0.4 or 0.5)."""
    import zarr

    try:
        attrs = dict(zarr.open_group(str(path), mode="r").attrs)
    except Exception:  # noqa: BLE001  (read by bioio already; no units means no sizes)
        return {}
    multiscales = attrs.get("multiscales") or attrs.get("ome", {}).get("multiscales") or [{}]
    index = min(image.current_scene_index, len(multiscales) - 1)
    units = {}
    for axis in multiscales[index].get("axes", []):
        if isinstance(axis, dict) and axis.get("type") == "space":
            factor = microns_per(axis.get("unit"))
            if factor is not None:
                units[str(axis.get("name", "")).upper()] = factor
    return units
