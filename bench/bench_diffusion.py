"""Benchmark of the diffusion stages on this machine's device: prints a table.

    python bench/bench_diffusion.py                 # CPU here, the same on a GPU node
    python bench/bench_diffusion.py --full          # also run the fast sampler end to end
    python bench/bench_diffusion.py --big           # add the 180x512x512 3D case (GPU)

Rows: the U-Net forward per tile and its achieved GFLOP/s against a plain matmul on the same
device; synthesis of 512x512 and 1024x1024 2D and 64x256x256 3D images: time per denoising
step (all tiles, blended), the resulting time for DDPM from t_start=400 (400 network calls) and
for the fast sampler (--steps calls), and peak memory; training patches/s. Untrained weights:
speed does not depend on them.
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from workflow_lib.device import autocast_dtype, pick_device
from workflow_lib.diffusion.samplers import network_evaluations
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.settings import SamplingSettings
from workflow_lib.diffusion.synthesis import synthesize
from workflow_lib.diffusion.tiling import TiledDenoiser
from workflow_lib.diffusion.unet import UNet


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(fn, device: torch.device, repeat: int) -> float:
    """Median seconds of ``fn()`` after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def peak_memory(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB (GPU)"
    # ru_maxrss is KiB on Linux: the process peak so far (cases run small to large)
    return f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20:.2f} GiB (RSS)"


def reset_memory(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def matmul_gflops(device: torch.device, dtype: torch.dtype, n: int = 2048) -> float:
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    return 2 * n**3 / timed(lambda: a @ b, device, 5) / 1e9


def network_row(net: UNet, tile: list[int], batch: int, device: torch.device) -> dict:
    x = torch.randn(batch, net.config["channels"], *tile, device=device)
    t = torch.full((batch,), 399, device=device)
    amp = autocast_dtype(device)

    def forward():
        with torch.inference_mode(), torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            net(x, t)

    with FlopCounterMode(display=False) as counter:
        forward()
    seconds = timed(forward, device, 3)
    return {"flops": counter.get_total_flops(), "seconds": seconds, "batch": batch}


def synthesis_row(net, schedule, shape, tile, args, device) -> dict:
    reset_memory(device)
    tiled = TiledDenoiser(net, shape, tile, args.overlap, args.batch, device, autocast_dtype(device))
    x = torch.randn(1, net.config["channels"], *shape, device=device)
    with torch.inference_mode():
        per_step = timed(lambda: tiled(x, 399), device, args.repeat)
    row = {
        "tiles": tiled.tiles_per_image,
        "per_step": per_step,
        "ddpm": per_step * network_evaluations("ddpm", 400, args.steps),
        "fast": per_step * network_evaluations(args.sampler, 400, args.steps),
        "fast_measured": None,
    }
    if args.full:
        sketch = np.random.default_rng(0).uniform(-1, 1, (1, 1, *shape)).astype(np.float32)
        params = SamplingSettings(t_start=400, sampler=args.sampler, steps=args.steps,
                                  tile=tuple(tile), overlap=args.overlap, batch=args.batch,
                                  blur=1.0, clip=True)
        sync(device)
        t0 = time.perf_counter()
        synthesize(sketch, net, schedule, params, device)
        sync(device)
        row["fast_measured"] = time.perf_counter() - t0
    row["memory"] = peak_memory(device)
    return row


def training_row(spatial_dims, patch, batch, args, device) -> float:
    """Patches per second of forward + backward + RAdam step (with AMP on CUDA)."""
    net = UNet(spatial_dims, 1, args.features).to(device)
    opt = torch.optim.RAdam(net.parameters(), lr=1e-3)
    amp = autocast_dtype(device)
    x = torch.randn(batch, 1, *patch, device=device)
    t = torch.randint(0, 1000, (batch,), device=device)

    def step():
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            loss = torch.nn.functional.mse_loss(net(x, t).float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    return batch / timed(step, device, args.repeat)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--tile2d", type=int, nargs=2, default=[256, 256])
    parser.add_argument("--tile3d", type=int, nargs=3, default=[32, 128, 128])
    parser.add_argument("--overlap", type=int, default=32)
    parser.add_argument("--batch", type=int, default=8, help="tiles per network call")
    parser.add_argument("--sampler", default="dpmpp", choices=["ddim", "dpmpp"])
    parser.add_argument("--steps", type=int, default=20, help="network calls of the fast sampler")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="CPU threads (0: torch default)")
    parser.add_argument("--full", action="store_true", help="run the fast sampler end to end")
    parser.add_argument("--big", action="store_true", help="add 180x512x512 3D")
    parser.add_argument("--skip-3d", action="store_true")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    print(f"device: {device} ({torch.cuda.get_device_name() if device.type == 'cuda' else device.type}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} CPU threads, AMP {autocast_dtype(device)}")
    schedule = NoiseSchedule.create("cosine", 1000)
    nets = {d: UNet(d, 1, args.features).to(device).eval() for d in (2, 3)}
    dtype = autocast_dtype(device) or torch.float32
    peak = matmul_gflops(device, dtype)
    print(f"\nplain {dtype} matmul 2048^3: {peak:.0f} GFLOP/s")

    print("\nnetwork forward (inference, per tile)")
    print(f"{'tile':>16} {'batch':>5} {'ms/tile':>9} {'GFLOP/tile':>10} {'GFLOP/s':>8} {'% of matmul':>11}")
    tiles = [(2, [128, 128]), (2, args.tile2d)] + ([] if args.skip_3d else [(3, args.tile3d)])
    for d, tile in tiles:
        for batch in sorted({1, args.batch}):
            r = network_row(nets[d], tile, batch, device)
            rate = r["flops"] / r["seconds"] / 1e9
            print(f"{'x'.join(map(str, tile)):>16} {batch:>5} {1e3 * r['seconds'] / batch:>9.1f} "
                  f"{r['flops'] / batch / 1e9:>10.2f} {rate:>8.1f} {100 * rate / peak:>10.1f}%")

    cases = [(2, [512, 512]), (2, [1024, 1024])]
    if not args.skip_3d:
        cases.append((3, [64, 256, 256]))
    if args.big:
        cases.append((3, [180, 512, 512]))
    print(f"\nsynthesis from t_start=400 (tiles {args.tile2d} / {args.tile3d}, overlap {args.overlap}, "
          f"batch {args.batch}); DDPM = 400 network calls, {args.sampler} = {args.steps}")
    print(f"{'image':>14} {'tiles':>5} {'s/step':>8} {'DDPM-400 s':>11} {args.sampler + ' s':>9} "
          f"{'measured s':>10} {'peak memory':>20}")
    for d, shape in cases:
        tile = args.tile2d if d == 2 else args.tile3d
        r = synthesis_row(nets[d], schedule, shape, tile, args, device)
        measured = f"{r['fast_measured']:.1f}" if r["fast_measured"] is not None else "-"
        print(f"{'x'.join(map(str, shape)):>14} {r['tiles']:>5} {r['per_step']:>8.2f} {r['ddpm']:>11.1f} "
              f"{r['fast']:>9.1f} {measured:>10} {r['memory']:>20}")

    print("\ntraining (forward + backward + RAdam step)")
    print(f"{'patch':>16} {'batch':>5} {'patches/s':>10}")
    train_cases = [(2, [96, 96], 4), (2, [256, 256], 4)]
    if not args.skip_3d:
        train_cases.append((3, [32, 128, 128], 1))
    for d, patch, batch in train_cases:
        rate = training_row(d, patch, batch, args, device)
        print(f"{'x'.join(map(str, patch)):>16} {batch:>5} {rate:>10.2f}")


if __name__ == "__main__":
    main()
