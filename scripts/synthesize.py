"""Rule synthesize_image: one sketch -> one synthetic image (see workflow_lib.diffusion)."""

import _workflow_path  # noqa: F401  (puts repo root on sys.path; must be first)

import sys

import torch
from tqdm import tqdm

from workflow_lib.device import pick_device
from workflow_lib.diffusion.stages import synthesize_stage
from workflow_lib.runner import run_script


def main():
    p = snakemake.params  # noqa: F821
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    synthesize_stage(
        model_path=snakemake.input.model,  # noqa: F821
        sketch_path=snakemake.input.sketch,  # noqa: F821
        image_path=snakemake.output[0],  # noqa: F821
        params=p.synthesis,
        index=int(snakemake.wildcards.i),  # noqa: F821
        device=pick_device(p.device, p.require_gpu),
        progress=lambda it: tqdm(it, desc="denoise", file=sys.stderr, mininterval=5),
    )


run_script(snakemake, main)  # noqa: F821
