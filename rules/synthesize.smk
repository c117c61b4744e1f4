from workflow_lib.diffusion import targets as diffusion_targets

# a bound lambda, not a def: the linter wants functions out of rule files
synthesize_outputs = lambda: diffusion_targets.image_paths(config)


rule synthesize_image:
    """One sketch -> one synthetic image (SDEdit, tiles blended at every step)."""
    input:
        model="results/{dataset}/model/model.pt",
        sketch="results/{dataset}/{sim}/sketches/{i}.tif",
    output:
        "results/{dataset}/{sim}/images/{i}.tif",
    params:
        synthesis=lambda wc: dataset_config(wc)["synthesis"],
        device=config["device"],
        require_gpu=config["require_gpu"],
    threads: 2
    resources:
        gpu=1,
    log:
        "logs/{dataset}/{sim}/synthesize/{i}.log",
    benchmark:
        "benchmarks/{dataset}/{sim}/synthesize/{i}.tsv"
    conda:
        "../envs/diffusion.yaml"
    script:
        "../scripts/synthesize.py"


rule synthesize:
    """Target: a synthetic image for every sketch of every simulation of every data set."""
    input:
        synthesize_outputs(),
