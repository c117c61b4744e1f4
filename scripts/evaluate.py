"""Rule evaluate_simulation: metrics.json and report figures of one simulation."""

import _workflow_path  # noqa: F401  (puts repo root on sys.path; must be first)

import json
from pathlib import Path

import torch

from workflow_lib.evaluate import figures
from workflow_lib.evaluate.data import load_real, load_stack
from workflow_lib.evaluate.protocol import Sample, Settings, evaluate_simulation
from workflow_lib.io import atomic_write_text
from workflow_lib.pipeline import SPLITS
from workflow_lib.runner import run_script


def main():
    sm = snakemake  # noqa: F821
    torch.set_num_threads(sm.threads)
    evaluation = sm.params.evaluation
    key = f"datasets.{sm.wildcards.dataset}.evaluation.real_channel"
    masks = {Path(p).stem: p for p in sm.input.masks}
    test = load_real(dict(zip(SPLITS, sm.input.index))["test"], masks,
                     evaluation["real_channel"], key)
    reference = json.loads(Path(sm.input.reference).read_text())
    time = sm.params.kind == "timeseries"
    samples = [
        Sample(labels, sketch, image)
        for labels, sketch, image in zip(
            load_stack(sm.input.labels, sm.params.ndim, time),
            load_stack(sm.input.sketches, sm.params.ndim, time),
            load_stack(sm.input.images, sm.params.ndim, time),
        )
    ]
    metrics, data = evaluate_simulation(
        sm.params.kind, samples, test, reference,
        evaluation["real_masks"] is not None, Settings.from_config(evaluation),
    )
    metrics = {"dataset": sm.wildcards.dataset, "simulation": sm.wildcards.sim, **metrics}
    losses = {**data["losses"], "real": reference.get("downstream_real_losses")}
    figures.save(figures.summary(metrics), sm.output.summary)
    figures.save(
        figures.sample_grid(data["real"], data["sketch_units"], data["units"], data["preds"]),
        sm.output.grid,
    )
    figures.save(figures.distributions(data["histograms"], data["spectra"]), sm.output.distributions)
    figures.save(figures.loss_curves(losses), sm.output.segmenter_loss)
    atomic_write_text(sm.output.metrics, json.dumps(metrics, indent=2) + "\n")


run_script(snakemake, main)  # noqa: F821
