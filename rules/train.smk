from workflow_lib.diffusion import targets as diffusion_targets

# a bound lambda, not a def: the linter wants functions out of rule files
train_outputs = lambda: diffusion_targets.model_paths(config)


rule train_model:
    """Train the diffusion model of one data set on its train split (resumes from checkpoints/)."""
    input:
        train="results/{dataset}/index/train.csv",
        val="results/{dataset}/index/val.csv",
        h5=h5_files,
    output:
        model="results/{dataset}/model/model.pt",
        loss=report("results/{dataset}/model/loss.png", category="Training"),
        samples=report("results/{dataset}/model/samples.png", category="Training"),
    params:
        # only what training uses: other keys of the data set must not trigger a retraining
        model=lambda wc: dataset_config(wc)["model"],
        ndim=lambda wc: dataset_config(wc)["ndim"],
        channels=lambda wc: dataset_config(wc)["channels"],
        device=config["device"],
        require_gpu=config["require_gpu"],
        # not an output: Snakemake deletes outputs before a rerun, and checkpoints must
        # survive a killed job so the rerun resumes
        checkpoint_dir=lambda wc: f"results/{wc.dataset}/model/checkpoints",
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
        train_outputs(),
