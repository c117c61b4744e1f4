rule sketch_chunk:
    """A chunk of labels -> sketches in [-1, 1], HDF5 (sketch, instance, boundary, distance),
    PNG previews."""
    input:
        unpack(sketch_calibration),
        labels=chunk_of(layout.SIMULATED),
    output:
        layout.SKETCHED,
    params:
        sketch=lambda wc: sim_config(wc)["sketch"],
        seed=lambda wc: sim_config(wc)["seed"],
        calibrate=lambda wc: sim_config(wc)["calibrate"],
        sketch_explicit=lambda wc: SKETCH_EXPLICIT[wc.dataset][wc.sim],
        files=chunk_paths,
    log:
        "logs/{dataset}/{sim}/sketch/{chunk}.log",
    benchmark:
        "benchmarks/{dataset}/{sim}/sketch/{chunk}.tsv"
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/sketch.py"


rule sketch:
    """Target: sketches, annotations and previews (with the labels and tracks they come from)."""
    input:
        layout.simulate_targets(config),
        layout.sketch_targets(config),
