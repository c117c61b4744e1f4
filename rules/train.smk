rule train_model:
    """Train the diffusion model of one data set on its train split (resumes from checkpoints/)."""
    input:
        train=layout.INDEX.replace("{split}", "train"),
        val=layout.INDEX.replace("{split}", "val"),
        h5=h5_files,
    output:
        model=layout.MODEL,
        loss=report(layout.LOSS_PNG, category="Training"),
        samples=report(layout.SAMPLES_PNG, category="Training"),
    params:
        # only what training uses: other keys of the data set must not trigger a retraining
        model=lambda wc: dataset_config(wc)["model"],
        ndim=lambda wc: dataset_config(wc)["ndim"],
        channels=lambda wc: dataset_config(wc)["channels"],
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
