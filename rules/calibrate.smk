rule calibrate_dataset:
    """The train split's real images -> what simulations with calibrate: true take from them."""
    input:
        train=layout.INDEX.replace("{split}", "train"),
        h5=h5_files,
        masks=calibration_mask_files,
    output:
        json=layout.CALIBRATION,
        figure=report(
            layout.CALIBRATION_PNG,
            caption="../report/calibration.rst",
            category="Calibration",
            labels={"data set": "{dataset}"},
        ),
    params:
        calibration=lambda wc: dataset_config(wc)["calibration"],
    log:
        "logs/{dataset}/calibrate.log",
    benchmark:
        "benchmarks/{dataset}/calibrate.tsv"
    conda:
        "../envs/simulate.yaml"
    script:
        "../scripts/calibrate.py"


rule calibrate:
    """Target: the calibration of every data set."""
    input:
        layout.calibrate_targets(config),
