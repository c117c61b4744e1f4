"""Rule train_model: train the diffusion model of one data set (see workflow_lib.diffusion)."""

import _workflow_path  # noqa: F401  (puts repo root on sys.path; must be first)

import sys

import torch
from tqdm import tqdm

from workflow_lib.device import pick_device
from workflow_lib.diffusion.stages import train_stage
from workflow_lib.runner import run_script


def main():
    p = snakemake.params  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    device = pick_device(p.device, p.require_gpu)
    train_stage(
        train_csv=snakemake.input.train,  # noqa: F821
        val_csv=snakemake.input.val,  # noqa: F821
        model_path=snakemake.output.model,  # noqa: F821
        loss_png=snakemake.output.loss,  # noqa: F821
        samples_png=snakemake.output.samples,  # noqa: F821
        checkpoint_dir=p.checkpoint_dir,
        model_cfg=p.model,
        ndim=p.ndim,
        channels=len(p.channels),
        device=device,
        progress=lambda it: tqdm(it, desc="train", file=sys.stderr, mininterval=10),
    )


run_script(snakemake, main)  # noqa: F821
