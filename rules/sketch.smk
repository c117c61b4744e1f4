sketch_outputs = partial(sim_targets.sketch_outputs, config)


rule sketch_sample:
    """Labels -> sketch in [-1, 1], HDF5 (sketch, instance, boundary, distance), PNG preview."""
    input:
        labels="results/{dataset}/{sim}/labels/{i}.tif",
        meta="results/{dataset}/{sim}/labels/{i}.json",
    output:
        sketch="results/{dataset}/{sim}/sketches/{i}.tif",
        h5="results/{dataset}/{sim}/annotations/{i}.h5",
        preview=report(
            "results/{dataset}/{sim}/previews/{i}.png",
            category="Simulation",
            subcategory="{dataset}",
            labels={"simulation": "{sim}", "sample": "{i}"},
        ),
    params:
        sketch=lambda wc: sim_config(wc)["sketch"],
        seed=lambda wc: sim_config(wc)["seed"],
        key=sim_key,
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
        simulate_outputs(),
        sketch_outputs(),
