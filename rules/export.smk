rule export_dataset:
    """Every synthetic pair of a data set -> one training tool's folder layout."""
    input:
        # every synthesis chunk of the data set; their files are params.files
        dataset_chunks,
    output:
        directory(layout.EXPORT),
    params:
        files=lambda wc: dataset_samples(wc, ("labels", "image", "meta", "check")),
        samples=lambda wc: [
            [sim, i, cfg["kind"]]
            for sim, cfg in dataset_config(wc)["simulations"].items()
            for i in range(cfg["count"])
        ],
        ndim=lambda wc: dataset_config(wc)["ndim"],
    log:
        "logs/{dataset}/export/{format}.log",
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/export.py"


rule export:
    """Target: every export format of every data set."""
    input:
        layout.export_targets(config),
