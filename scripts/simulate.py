"""Rule simulate_sample: one simulated label image (+ metadata JSON)."""

import _workflow_path  # noqa: F401  (puts repo root on sys.path; must be first)

import json
import logging

from workflow_lib.io import atomic_write_text, axes_for, write_tiff
from workflow_lib.runner import run_script
from workflow_lib.simulate import sample_rng, simulate
from workflow_lib.simulate.mask_files import load_mask

log = logging.getLogger("cellsynth")


def main():
    p = snakemake.params  # noqa: F821
    i = int(snakemake.wildcards.i)  # noqa: F821
    shape = list(p.shape)
    mask = load_mask(snakemake.input.mask, len(shape)) if p.kind == "masks" else None  # noqa: F821
    sim = simulate(p.kind, shape, p.params, sample_rng(p.seed, i), prefix=p.key + ".params", mask=mask)
    write_tiff(snakemake.output.labels, sim.labels, axes_for(len(shape), time=sim.time))  # noqa: F821
    meta = {
        "kind": p.kind,
        "sample": i,
        "seed": p.seed,
        "shape": shape,
        "layout": axes_for(len(shape), time=sim.time),
        "array_shape": list(sim.labels.shape),
        "instances": sim.count,
        "params": p.params,
        "source_mask": str(snakemake.input.mask) if mask is not None else None,  # noqa: F821
        "tracks": sim.tracks.tolist() if sim.tracks is not None else None,
    }
    atomic_write_text(snakemake.output.meta, json.dumps(meta, indent=1) + "\n")  # noqa: F821
    log.info("%s sample %d: %d instances, labels %s", p.kind, i, sim.count, sim.labels.shape)


run_script(snakemake, main)  # noqa: F821
