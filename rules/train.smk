rule train_model:
    """Train the diffusion model of one data set on its train split (resumes from checkpoints/)."""
    # data sets with model.from synthesise with that file: no job trains them
    wildcard_constraints:
        dataset="|".join(layout.trained_datasets(config)) or "(?!)",
    input:
        # model.init_from: the model whose weights training starts from
        unpack(lambda wc: layout.init_model_inputs(config, wc.dataset)),
        train=layout.INDEX.replace("{split}", "train"),
        val=layout.INDEX.replace("{split}", "val"),
        h5=h5_files,
    output:
        model=layout.MODEL,
        card=layout.MODEL_CARD,
        loss=report(layout.LOSS_PNG, category="Training"),
        samples=report(layout.SAMPLES_PNG, category="Training"),
    params:
        # only what training uses or model.pt records (the pixel size it reads from the h5
        # files): other keys of the data set (synthesis, simulations, ...) must not retrain
        model=lambda wc: dataset_config(wc)["model"],
        ndim=lambda wc: dataset_config(wc)["ndim"],
        channels=lambda wc: dataset_config(wc)["channels"],
        normalize=lambda wc: dataset_config(wc)["normalize"],
        device=config["device"],
        require_gpu=config["require_gpu"],
        # not an output: Snakemake deletes outputs before a rerun, and checkpoints must
        # survive a killed job so the rerun resumes
        checkpoint_dir=lambda wc: layout.fill(layout.CHECKPOINTS, dataset=wc.dataset),
    threads: 4
    resources:
        gpu=1,
    log:
        "logs/{dataset}/train.log",
    benchmark:
        "benchmarks/{dataset}/train.tsv"
    conda:
        "../envs/diffusion.yaml"
    script:
        "../scripts/train.py"


rule train:
    """Target: a trained model for every data set."""
    input:
        layout.train_targets(config),
