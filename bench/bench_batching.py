"""Samples drawn together: seconds per image with 1 image per network call against many.

Issue "Synthesis at scale", item 2: tiles of several images in one network call. The synthesis
pipeline (guard and edge keeping on, the annotation check run, texture off) draws the same
samples with ``synthesis.batch`` 1 (each image alone) and ``--batch`` (as many one-tile images
as fill a call; on the CPU at most 2^17 pixels), side by side in one run, and prints seconds per image and how far the images
drawn together are from those drawn alone (a batched convolution sums in another order).
Untrained weights: speed does not depend on them.

    python bench/bench_batching.py                       # 128, 256, 512 px on this device
    python bench/bench_batching.py --sizes 512 --count 64 --batch 16    # a GPU
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from workflow_lib.device import pick_device
from workflow_lib.diffusion.pipeline import SynthesisPipeline
from workflow_lib.diffusion.schedule import NoiseSchedule
from workflow_lib.diffusion.settings import CheckLimits, SamplingSettings, SynthesisSettings
from workflow_lib.diffusion.unet import UNet
from workflow_lib.simulate import get_kind, read_params, sample_rng, simulate

CALIBRATION = {"background": {"level": 0.05, "noise_local_mean": 0.01}, "edge_sigma_px": 1.5}


def samples(size: int, count: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """``count`` nuclei label images of ``size``^2 and their sketches (T = 1, C = 1)."""
    labels, sketches = [], []
    cells = max(2, size * size // 2500)          # the demo's density: ~100 in 512x512
    settings = read_params("nuclei", {"cells": [cells, cells], "radius": [6, 9]}, 2)
    for i in range(count):
        lab = simulate("nuclei", [size, size], settings, sample_rng(0, i)).labels
        labels.append(lab)
        sketches.append(np.where(lab > 0, 0.4, -0.9).astype(np.float32)[None])
    return sketches, labels


def run(net, schedule, device, size, count, batch, steps) -> tuple[float, list[np.ndarray], int]:
    """Seconds per image, the images, and how many shared a network call."""
    sampling = SamplingSettings(t_start=400, sampler="dpmpp", steps=steps, tile=(size, size),
                                overlap=32, batch=batch, blur=1.0)
    settings = SynthesisSettings(sampling, texture=False, check=CheckLimits(redraws=0))
    pipeline = SynthesisPipeline(net, schedule, settings, get_kind("nuclei"), device,
                                 CALIBRATION, progress_every=1e9)
    sketches, labels = samples(size, count)
    pipeline(sketches[:1], labels[:1], [(0, 0)])            # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    drawn = pipeline(sketches, labels, [(0, i) for i in range(count)])
    seconds = (time.perf_counter() - start) / count
    return seconds, [d.image for d in drawn], pipeline.group_size(sketches[0].shape)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda", "mps"])
    parser.add_argument("--sizes", type=int, nargs="+", default=[128, 256, 512])
    parser.add_argument("--count", type=int, default=8, help="images per size")
    parser.add_argument("--batch", type=int, default=8, help="tiles per network call")
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--steps", type=int, default=4, help="network calls per image")
    args = parser.parse_args()
    device = pick_device(args.device)
    torch.manual_seed(0)
    net = UNet(2, 1, features=args.features).to(device).eval()
    schedule = NoiseSchedule.create("cosine", 1000)
    print(f"device {device}, U-Net F={args.features}, DPM-Solver++ {args.steps} calls, guard on, "
          f"{args.count} images per size, {torch.get_num_threads()} CPU threads")
    print("| image | s/image, 1 per call | s/image, together | images per call | speed-up "
          "| max abs difference |")
    print("|---|---|---|---|---|---|")
    for size in args.sizes:
        alone, a, _ = run(net, schedule, device, size, args.count, 1, args.steps)
        together, b, group = run(net, schedule, device, size, args.count, args.batch, args.steps)
        diff = max(float(np.abs(x - y).max()) for x, y in zip(a, b))
        print(f"| {size}x{size} | {alone:.3f} | {together:.3f} | {group} "
              f"| {alone / together:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
