"""Rule evaluate_reference: real-data downstream baseline and real train-vs-test realism."""

import _workflow_path  # noqa: F401  (puts repo root on sys.path; must be first)

import json
from pathlib import Path

import torch

from workflow_lib.evaluate.data import load_real
from workflow_lib.evaluate.protocol import Settings, evaluate_reference
from workflow_lib.io import atomic_write_text
from workflow_lib.pipeline import SPLITS
from workflow_lib.runner import run_script


def main():
    torch.set_num_threads(snakemake.threads)  # noqa: F821
    evaluation = snakemake.params.evaluation  # noqa: F821
    key = f"datasets.{snakemake.wildcards.dataset}.evaluation.real_channel"  # noqa: F821
    masks = {Path(p).stem: p for p in snakemake.input.masks}  # noqa: F821
    split = dict(zip(SPLITS, snakemake.input.index))  # noqa: F821
    train = load_real(split["train"], masks, evaluation["real_channel"], key)
    test = load_real(split["test"], masks, evaluation["real_channel"], key)
    result, losses = evaluate_reference(
        train, test, evaluation["real_masks"] is not None, Settings.from_config(evaluation)
    )
    result["downstream_real_losses"] = losses
    atomic_write_text(snakemake.output[0], json.dumps(result, indent=2) + "\n")  # noqa: F821


run_script(snakemake, main)  # noqa: F821
