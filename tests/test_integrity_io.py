"""Integrity of reads and writes: file modes, bounded memory on any input, damaged or forged
files, compressed TIFFs, a full disk, unsafe model files. Each failure is one line naming the
file."""

from __future__ import annotations

import errno
import os
import pickle
import shutil
import stat
import struct
import tracemalloc
from collections import namedtuple
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import torch

from workflow_lib.errors import InputError
from workflow_lib.io import OutputError, atomic_path, atomic_write_text, read_h5, read_tiff
from workflow_lib.io import memory, write_h5, write_tiff
from workflow_lib.prepare.convert import convert_image, percentiles


def _message(exc: BaseException, path: Path) -> str:
    """The message of ``exc``, checked to be one line that starts with ``path``."""
    message = str(exc)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message, message
    return message


# --- 1. outputs get the mode of a plain open() ----------------------------------------------

def _write_every_kind(folder: Path) -> list[Path]:
    import imageio.v3 as iio

    from workflow_lib.diffusion.model_io import save_model
    from workflow_lib.diffusion.unet import UNet

    image = np.random.default_rng(0).random((1, 16, 16)).astype(np.float32)
    write_h5(folder / "a.h5", {"data/image": image})
    write_tiff(folder / "a.tif", image, "CYX")
    atomic_write_text(folder / "a.csv", "path\n")
    save_model(folder / "model.pt", UNet(2, 1, features=4, levels=2), {"ndim": 2})
    with atomic_path(folder / "a.png") as tmp:
        iio.imwrite(tmp, (image[0] * 255).astype(np.uint8), extension=".png")
    tifffile.imwrite(folder / "in.tif", (image[0] * 1000).astype(np.uint16))
    convert_image(folder / "in.tif", folder / "in.h5", ndim=2, channels=[0])
    return [folder / n for n in ("a.h5", "a.tif", "a.csv", "model.pt", "a.png", "in.h5")]


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)],
                         ids=["umask022", "umask027", "umask077"])
def test_outputs_get_the_mode_open_would_give(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        paths = _write_every_kind(tmp_path)
    finally:
        os.umask(old)
    modes = {p.name: oct(stat.S_IMODE(p.stat().st_mode)) for p in paths}
    assert modes == {p.name: oct(mode) for p in paths}
    assert not list(tmp_path.glob(".tmp-*"))


# --- 2. percentiles in bounded memory, whatever the values -----------------------------------

@pytest.mark.parametrize("dtype", [np.uint32, np.int32, np.int64, np.uint64, np.float64,
                                   np.float32, np.float16, np.int8, np.uint16, np.bool_])
def test_percentiles_of_any_dtype_match_numpy(dtype):
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 300):
        if np.dtype(dtype).kind == "b":
            arr = rng.random(n) < 0.4
        elif np.dtype(dtype).kind == "f":
            big = {2: 1e4, 4: 1e37, 8: 1e300}[np.dtype(dtype).itemsize]
            arr = (rng.uniform(-1, 1, n) * big).astype(dtype)
        else:
            info = np.iinfo(dtype)
            arr = rng.integers(info.min, info.max, n, dtype=dtype, endpoint=True)
        for q in [(0, 100), (1, 99.8), (50, 50), (33.3, 66.6)]:
            # numpy's own interpolation overflows in int32 arithmetic: compare in float64
            expected = np.percentile(arr.astype(np.float64), q)
            np.testing.assert_allclose(percentiles(arr, *q), expected, rtol=1e-9, atol=1e-6)


def test_percentiles_ignore_nonfinite_and_order_negative_floats():
    arr = np.array([np.nan, -np.inf, -2.5, -0.0, 0.0, 1e-300, 3.0, np.inf], np.float64)
    finite = arr[np.isfinite(arr)]
    for q in [(0, 100), (10, 90), (40, 60)]:
        np.testing.assert_allclose(percentiles(arr, *q), np.percentile(finite, q))


@pytest.mark.parametrize("dtype,top", [(np.uint32, 3_200_000_000), (np.int32, 2_000_000_000),
                                       (np.int64, 9 * 10**18), (np.float64, 1e300)])
def test_huge_values_take_memory_by_pixel_count_not_by_value(tmp_path, dtype, top):
    img = np.linspace(0, top, 64 * 64).astype(dtype).reshape(64, 64)
    tracemalloc.start()
    try:
        lo, hi = percentiles(img, 1, 99.8)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak
    np.testing.assert_allclose((lo, hi), np.percentile(img.astype(np.float64), (1, 99.8)),
                               rtol=1e-9)
    tifffile.imwrite(tmp_path / "big.tif", img)
    convert_image(tmp_path / "big.tif", tmp_path / "big.h5", ndim=2, channels=[0])
    data, _ = read_h5(tmp_path / "big.h5")
    assert data.min() == 0 and data.max() == 1 and np.isfinite(data).all()


# --- 3. forged or damaged headers -----------------------------------------------------------

def _patch_size(path: Path, width: int, length: int) -> None:
    """Overwrite ImageWidth, ImageLength and RowsPerStrip of the first page in place."""
    data = bytearray(path.read_bytes())
    with tifffile.TiffFile(path) as tif:
        tags = tif.pages[0].tags
        for name, value in (("ImageWidth", width), ("ImageLength", length),
                            ("RowsPerStrip", length)):
            tag = tags[name]
            struct.pack_into("<I" if tag.dtype == 4 else "<H", data, tag.valueoffset, value)
    path.write_bytes(bytes(data))


def test_forged_uncompressed_header_is_refused_before_allocating(tmp_path):
    path = tmp_path / "forged.tif"
    tifffile.imwrite(path, np.arange(8, dtype=np.uint16).reshape(2, 4), metadata=None)
    _patch_size(path, 100_000, 100_000)
    with pytest.raises(InputError) as err:
        read_tiff(path)
    message = _message(err.value, path)
    assert "(100000, 100000) uint16" in message and "file has only" in message
    with pytest.raises(InputError):
        convert_image(path, tmp_path / "forged.h5", ndim=2, channels=[0])
    assert not (tmp_path / "forged.h5").exists()


def test_forged_compressed_header_is_checked_against_memory(tmp_path):
    path = tmp_path / "forged.tif"
    tifffile.imwrite(path, np.zeros((2, 4), np.uint16), compression="zlib", metadata=None)
    _patch_size(path, 1_000_000, 1_000_000)  # 1.8 TiB of uint16: more than any machine has
    with pytest.raises(InputError) as err:
        read_tiff(path)
    message = _message(err.value, path)
    assert "(1000000, 1000000) uint16" in message and "memory available" in message


def test_memory_budget_applies_to_tiff_and_h5(tmp_path, monkeypatch):
    tifffile.imwrite(tmp_path / "a.tif", np.zeros((64, 64), np.uint16), compression="zlib")
    write_h5(tmp_path / "a.h5", {"data/image": np.zeros((64, 64), np.float32)})
    monkeypatch.setattr(memory, "available_memory", lambda: 1000)
    for path, read in ((tmp_path / "a.tif", read_tiff), (tmp_path / "a.h5", read_h5)):
        with pytest.raises(InputError, match=r"8.0 KiB|16.0 KiB") as err:
            read(path)
        assert "1000 bytes of memory available" in _message(err.value, path)


def test_h5_declaring_terabytes_is_refused(tmp_path):
    path = tmp_path / "huge.h5"
    with h5py.File(path, "w") as f:  # chunked and never written: a few KiB on disk
        f.create_dataset("data/image", shape=(10**6, 10**6), dtype=np.uint16, chunks=(64, 64))
    with pytest.raises(InputError) as err:
        read_h5(path)
    assert "memory available" in _message(err.value, path)


def _compressed_tiff(path: Path) -> tuple[bytes, int, int]:
    rng = np.random.default_rng(0)
    tifffile.imwrite(path, rng.integers(0, 60000, (128, 128), dtype=np.uint16),
                     compression="zlib")
    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        return path.read_bytes(), page.dataoffsets[0], page.databytecounts[0]


@pytest.mark.parametrize("damage", ["truncated", "garbled"])
def test_damaged_compressed_data_is_an_input_error(tmp_path, damage):
    path = tmp_path / f"{damage}.tif"
    data, offset, count = _compressed_tiff(path)
    if damage == "truncated":
        data = data[: offset + count // 2]
    else:
        data = data[: offset + 2] + b"\xff" * (count - 2) + data[offset + count :]
    path.write_bytes(data)
    with pytest.raises(InputError) as err:
        read_tiff(path)
    assert "cannot be decoded" in _message(err.value, path)
    with pytest.raises(InputError):
        convert_image(path, tmp_path / "out.h5", ndim=2, channels=[0])


def test_randomly_damaged_tiffs_give_input_errors_only(tmp_path):
    rng = np.random.default_rng(0)
    sources = []
    kinds = [(dict(compression="zlib", photometric="minisblack"), (3, 40, 50)),
             (dict(imagej=True, metadata={"axes": "ZYX"}), (3, 40, 50)),
             (dict(compression="lzw", tile=(16, 16)), (40, 48))]
    for i, (kwargs, shape) in enumerate(kinds):
        tifffile.imwrite(tmp_path / f"{i}.tif", rng.integers(0, 999, shape, dtype=np.uint16),
                         **kwargs)
        sources.append((tmp_path / f"{i}.tif").read_bytes())
    path = tmp_path / "damaged.tif"
    for trial in range(200):
        data = np.frombuffer(sources[trial % len(sources)], np.uint8).copy()
        positions = rng.integers(0, 400, rng.integers(1, 6))  # mostly the header
        data[positions] = rng.integers(0, 256, positions.size)
        if trial % 5 == 0:
            data = data[: rng.integers(8, data.size)]
        path.write_bytes(data.tobytes())
        try:
            read_tiff(path)
        except InputError as err:
            _message(err, path)


# --- 4. compressed TIFFs --------------------------------------------------------------------

@pytest.mark.parametrize("compression", ["lzw", "zlib", "deflate", "zstd", "lzma", "packbits"])
def test_compressed_tiffs_are_read(tmp_path, compression):
    img = np.random.default_rng(2).integers(0, 4000, (3, 32, 40), dtype=np.uint16)
    path = tmp_path / f"{compression}.tif"
    tifffile.imwrite(path, img, imagej=True, metadata={"axes": "ZYX"}, compression=compression)
    back, axes = read_tiff(path)
    np.testing.assert_array_equal(back, img)
    assert axes == "ZYX"
    attrs = convert_image(path, tmp_path / "out.h5", ndim=3, channels=[0],
                          normalize_percentiles=(0, 100))
    assert attrs["percentile_values"].tolist() == [[img.min(), img.max()]]


def test_jpeg_tiff_is_read(tmp_path):
    img = np.tile(np.linspace(0, 255, 64, dtype=np.uint8), (48, 1))
    tifffile.imwrite(tmp_path / "j.tif", img, compression="jpeg", photometric="minisblack")
    back, _ = read_tiff(tmp_path / "j.tif")
    assert back.shape == img.shape and np.abs(back.astype(int) - img).max() <= 8


def test_imagecodecs_is_a_dependency():
    import tomllib

    repo = Path(__file__).resolve().parents[1]
    deps = tomllib.loads((repo / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.startswith("imagecodecs") for d in deps)
    for env in ("prepare", "simulate", "diffusion", "evaluate"):
        assert "imagecodecs" in (repo / "envs" / f"{env}.yaml").read_text(), env


# --- 5. stacks without axes metadata --------------------------------------------------------

def test_stack_without_axes_says_what_to_set(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.zeros((20, 16, 16), np.uint16), metadata=None)
    assert read_tiff(path)[1] == ""  # tifffile's 'IYX' is no axis information
    with pytest.raises(InputError) as err:
        convert_image(path, tmp_path / "out.h5", ndim=2, channels=[0])
    message = _message(err.value, path)
    assert "(20, 16, 16)" in message and "axes are unknown (the file has no axes metadata)" in message
    assert "set `axes:` for this data set in the config (e.g. axes: ZYX" in message
    assert "axes: TYX" in message


def test_invalid_axes_in_config_say_what_is_valid(tmp_path):
    path = tmp_path / "stack.tif"
    tifffile.imwrite(path, np.arange(20 * 16 * 16, dtype=np.uint16).reshape(20, 16, 16),
                     metadata=None)
    with pytest.raises(InputError, match=r"axes 'IYX' are not valid.*e\.g\. axes: ZYX"):
        convert_image(path, tmp_path / "out.h5", ndim=3, channels=[0], axes="IYX")
    convert_image(path, tmp_path / "out.h5", ndim=3, channels=[0], axes="ZYX")
    assert read_h5(tmp_path / "out.h5")[0].shape == (1, 20, 16, 16)


# --- 6. a full disk -------------------------------------------------------------------------

Usage = namedtuple("Usage", "total used free")


def test_full_disk_names_the_file_and_the_free_space(tmp_path, monkeypatch):
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**9, 10**9 - 4096, 4096))
    target = tmp_path / "out.csv"
    with pytest.raises(OutputError) as err:
        with atomic_path(target) as tmp:
            tmp.write_text("partial")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    message = _message(err.value, target)
    assert message == f"{target}: cannot write (no space left on device (4096 bytes free))"
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("free,expected", [
    (0, "no space left on device (0 bytes free; RuntimeError: basic_ios::clear: iostream error)"),
    (10**12, "RuntimeError: basic_ios::clear: iostream error"),
])
def test_torch_save_failure_names_the_model_file(tmp_path, monkeypatch, free, expected):
    from workflow_lib.diffusion import model_io
    from workflow_lib.diffusion.unet import UNet

    def failing_save(obj, f, *args, **kwargs):
        Path(f).write_bytes(b"PK\x03\x04 half a zip")
        raise RuntimeError("basic_ios::clear: iostream error")

    monkeypatch.setattr(model_io.torch, "save", failing_save)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: Usage(10**13, 10**13 - free, free))
    target = tmp_path / "model" / "model.pt"
    with pytest.raises(OutputError) as err:
        model_io.save_model(target, UNet(2, 1, features=4, levels=2), {})
    assert _message(err.value, target) == f"{target}: cannot write ({expected})"
    assert list(target.parent.iterdir()) == []


def test_checkpoint_write_failure_is_an_output_error(tmp_path, monkeypatch):
    from workflow_lib.diffusion import train

    def refused_save(obj, f, *args, **kwargs):
        raise OSError(errno.EACCES, os.strerror(errno.EACCES))

    monkeypatch.setattr(train.torch, "save", refused_save)
    monkeypatch.setattr(train.Trainer, "state", lambda self: {})
    trainer = train.Trainer.__new__(train.Trainer)  # only the checkpoint code runs
    target = tmp_path / "last.pt"
    with pytest.raises(OutputError) as err:
        trainer.save_checkpoint(target)
    assert _message(err.value, target) == f"{target}: cannot write (Permission denied)"
    assert list(tmp_path.iterdir()) == []


# --- 8. pickled Python objects in a model file ----------------------------------------------

class _Payload:
    """Stands for any object a hostile or foreign pickle could hold."""


@pytest.mark.filterwarnings("ignore:Detected pickle protocol:UserWarning")
@pytest.mark.parametrize("writer", ["torch", "pickle"])
def test_pickled_object_is_refused_without_torch_advice(tmp_path, writer, caplog):
    from workflow_lib.diffusion.model_io import load_model
    from workflow_lib.diffusion.train import Trainer

    path = tmp_path / "model.pt"
    payload = {"format": "cellsynth-ddpm-1", "meta": _Payload()}
    if writer == "torch":
        torch.save(payload, path)
    else:
        path.write_bytes(pickle.dumps(payload))
    with pytest.raises(InputError) as err:
        load_model(path, torch.device("cpu"))
    assert _message(err.value, path) == (
        f"{path}: not a safe cellsynth model file (it holds Python objects other than tensors; "
        "cellsynth never loads those); retrain or use a model.pt written by cellsynth"
    )
    assert err.value.__cause__ is None and err.value.__suppress_context__

    trainer = Trainer.__new__(Trainer)
    trainer.device = torch.device("cpu")
    with caplog.at_level("WARNING", logger="cellsynth"):
        assert trainer.try_resume(path) is False
    assert "not a safe cellsynth model file" in caplog.text
    assert "weights_only" not in caplog.text


def test_garbage_model_file_is_not_called_unsafe(tmp_path):
    from workflow_lib.diffusion.model_io import load_model

    path = tmp_path / "model.pt"
    path.write_text("hello")
    with pytest.raises(InputError, match="not a loadable model file") as err:
        load_model(path, torch.device("cpu"))
    assert "weights_only" not in str(err.value)
