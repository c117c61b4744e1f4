rule sketch_sample:
    """Labels -> sketch in [-1, 1], HDF5 (sketch, instance, boundary, distance), PNG preview."""
    input:
        unpack(sketch_calibration),
        labels=layout.LABELS,
        meta=layout.LABELS_META,
    output:
        sketch=layout.SKETCH,
        h5=layout.ANNOTATIONS,
        preview=report(
            layout.PREVIEW,
            category="Simulation",
            subcategory="{dataset}",
            labels={"simulation": "{sim}", "sample": "{i}"},
        ),
    params:
        sketch=lambda wc: sim_config(wc)["sketch"],
        seed=lambda wc: sim_config(wc)["seed"],
        calibrate=lambda wc: sim_config(wc)["calibrate"],
        sketch_explicit=lambda wc: SKETCH_EXPLICIT[wc.dataset][wc.sim],
    log:
        "logs/{dataset}/{sim}/sketch/{i}.log",
    benchmark:
        "benchmarks/{dataset}/{sim}/sketch/{i}.tsv"
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/sketch.py"


rule sketch:
    """Target: sketches, annotations and previews (with the labels and tracks they come from)."""
    input:
        layout.simulate_targets(config),
        layout.sketch_targets(config),
