def synthesize_outputs():
    return [
        f"results/{ds}/{sim}/images/{i}.tif"
        for ds in DATASETS
        for sim, sim_cfg in config["datasets"][ds]["simulations"].items()
        for i in range(sim_cfg["count"])
    ]


rule synthesize_image:
    """One sketch -> one synthetic image (SDEdit, tiles blended at every step)."""
    input:
        model="results/{dataset}/model/model.pt",
        sketch="results/{dataset}/{sim}/sketches/{i}.tif",
    output:
        "results/{dataset}/{sim}/images/{i}.tif",
    params:
        dataset=dataset_config,
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
