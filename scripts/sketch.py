"""Rule sketch_sample: labels -> sketch TIFF in [-1, 1], annotation HDF5 and PNG preview."""

import _workflow_path  # noqa: F401  (puts repo root on sys.path; must be first)

import json
import logging

from workflow_lib.io import axes_for, read_tiff, write_h5, write_tiff
from workflow_lib.runner import run_script
from workflow_lib.simulate import sample_rng
from workflow_lib.sketch import SketchParams, annotations, make_sketch
from workflow_lib.sketch.preview import write_preview

log = logging.getLogger("cellsynth")


def main():
    p = snakemake.params  # noqa: F821
    i = int(snakemake.wildcards.i)  # noqa: F821
    meta = json.loads(open(snakemake.input.meta, encoding="utf-8").read())  # noqa: F821
    time = meta["tracks"] is not None
    spatial = len(meta["shape"])
    labels, _ = read_tiff(snakemake.input.labels, axes=axes_for(spatial, time=time))  # noqa: F821
    params = SketchParams.from_config(p.sketch, prefix=p.key + ".sketch")
    sketch = make_sketch(labels, meta["kind"], params, sample_rng(p.seed, i, stream=1), time=time)
    write_tiff(snakemake.output.sketch, sketch, axes_for(spatial, time=time))  # noqa: F821
    write_h5(
        snakemake.output.h5,  # noqa: F821
        annotations(labels, sketch, time=time),
        {"kind": meta["kind"], "layout": axes_for(spatial, time=time), "sample": i},
    )
    sim = snakemake.wildcards.sim  # noqa: F821
    title = f"{sim} #{i}: {meta['kind']}, {meta['instances']} ids"
    write_preview(snakemake.output.preview, labels, sketch, title, time=time)  # noqa: F821
    log.info("sketch %s sample %d: %s in [%.3f, %.3f]", p.key, i, sketch.shape, sketch.min(), sketch.max())


run_script(snakemake, main)  # noqa: F821
