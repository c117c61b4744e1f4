rule export_dataset:
    """Every synthetic pair of a data set -> one training tool's folder layout."""
    input:
        # every synthesis chunk of the data set; their files are params.files
        dataset_chunks,
    output:
        directory(layout.EXPORT),
    params:
        files=lambda wc: {
            name: dataset_samples(wc, template)
            for name, template in (("labels", layout.LABELS), ("images", layout.IMAGE),
                                   ("meta", layout.LABELS_META), ("checks", layout.IMAGE_CHECK))
        },
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
