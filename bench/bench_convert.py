"""Benchmark convert: time, peak memory and output size of converting one volume, 2 cores.

    python bench/bench_convert.py                     # 180x4x512x512 uint16 ImageJ TIFF
    python bench/bench_convert.py --ome-zarr --gib 4  # a 4 GiB OME-Zarr, larger than the budget

TIFF (read into memory): a 3D 4-channel 512x512x180 uint16 volume, target < 30 s and
< 2 GB RSS. OME-Zarr (issue "Big data in and out"): a one-channel volume of ``--gib`` GiB
(2048x2048 planes), read and written slab by slab, so its peak RSS must stay far below the
volume's size (8 GiB of float32 written for 4 GiB in). Writes the volume (a shifted random
pattern plus noise), converts it in a fresh process (so peak RSS is the conversion's own) and
prints a table.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tifffile

SHAPE_ZCYX = (180, 4, 512, 512)
ZARR_PLANE = (2048, 2048)

CHILD = """
import sys, time
from workflow_lib.prepare.convert import convert_image
t = time.perf_counter()
convert_image(sys.argv[1], sys.argv[2], ndim=3, channels=[int(c) for c in sys.argv[3:]])
print(time.perf_counter() - t)
"""


def make_volume(path: Path) -> None:
    rng = np.random.default_rng(0)
    z, c, y, x = SHAPE_ZCYX
    base = rng.integers(100, 400, size=(c, y, x), dtype=np.uint16)
    volume = np.empty(SHAPE_ZCYX, dtype=np.uint16)
    for k in range(z):
        volume[k] = np.roll(base, k, axis=-1) + rng.integers(0, 50, size=(c, y, x), dtype=np.uint16)
    tifffile.imwrite(path, volume, imagej=True, metadata={"axes": "ZCYX"})


def make_zarr(path: Path, gib: float) -> tuple[int, ...]:
    """A one-channel uint16 OME-Zarr volume of about ``gib`` GiB, written plane block by plane
    block (never whole in memory); returns its shape (Z, C, Y, X)."""
    import dask.array as da
    from ome_zarr.format import FormatV04
    from ome_zarr.writer import write_image

    depth = max(1, round(gib * 2**30 / (2 * ZARR_PLANE[0] * ZARR_PLANE[1])))
    rng = da.random.default_rng(0)
    noise = rng.integers(0, 50, (1, depth, *ZARR_PLANE), dtype=np.uint16,
                         chunks=(1, 16, *ZARR_PLANE))
    ramp = da.arange(ZARR_PLANE[1], dtype=np.uint16, chunks=ZARR_PLANE[1]) % 300 + 100
    write_image(noise + ramp, str(path), axes="czyx", fmt=FormatV04(), scale_factors=[],
                scale={"z": 2.0, "y": 0.65, "x": 0.65},
                axes_units=dict.fromkeys("zyx", "micrometer"),
                storage_options={"chunks": (1, 16, 512, 512)})
    return (depth, 1, *ZARR_PLANE)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--channels", type=int, nargs="+", default=None,
                        help="channels to convert (default: all)")
    parser.add_argument("--ome-zarr", action="store_true", help="an OME-Zarr volume, not a TIFF")
    parser.add_argument("--gib", type=float, default=4.0, help="OME-Zarr volume size")
    parser.add_argument("--keep", type=Path, default=None, help="folder for the files")
    args = parser.parse_args()
    folder = args.keep or Path(tempfile.mkdtemp(prefix="bench_convert_"))
    folder.mkdir(parents=True, exist_ok=True)
    name = f"volume_{args.gib:g}gib.zarr" if args.ome_zarr else "volume.tif"
    source, target = folder / name, folder / "volume.h5"
    shape = SHAPE_ZCYX
    channels = args.channels or list(range(1 if args.ome_zarr else SHAPE_ZCYX[1]))
    if args.ome_zarr:
        t = time.perf_counter()
        if source.exists():
            shutil.rmtree(source)
        shape = make_zarr(source, args.gib)
        print(f"wrote {source} ({_size(source) / 2**20:.0f} MiB on disk) in "
              f"{time.perf_counter() - t:.1f} s")
    elif not source.exists():
        t = time.perf_counter()
        make_volume(source)
        print(f"wrote {source} ({source.stat().st_size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t:.1f} s")
    repo = Path(__file__).resolve().parents[1]
    t = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(source), str(target), *map(str, channels)],
        check=True, capture_output=True, text=True, cwd=repo,
    )
    wall = time.perf_counter() - t
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    volume_mib = np.prod(shape) * 2 / 2**20
    print(f"{'input':<10}{'volume (Z,C,Y,X)':<22}{'volume MiB':>11}{'channels':>10}"
          f"{'convert s':>11}{'process s':>11}{'peak RSS MiB':>14}{'h5 MiB':>9}")
    print(f"{'ome-zarr' if args.ome_zarr else 'tiff':<10}{'x'.join(map(str, shape)):<22}"
          f"{volume_mib:>11.0f}{len(channels):>10}"
          f"{float(out.stdout.strip().splitlines()[-1]):>11.1f}{wall:>11.1f}{peak_mib:>14.0f}"
          f"{target.stat().st_size / 2**20:>9.0f}")
    print("targets: tiff < 30 s and < 2048 MiB; ome-zarr peak RSS far below the volume "
          "(< 1024 MiB)")


def _size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


if __name__ == "__main__":
    main()
