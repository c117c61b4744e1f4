rule calibrate_edges:
    """Edge trial: the sketch edge shift that keeps the edges the model draws near the masks."""
    input:
        calibration=layout.CALIBRATION,
        model=lambda wc: layout.model_path(config, wc.dataset),
    output:
        json=layout.EDGES,
        figure=report(
            layout.EDGES_PNG,
            caption="../report/edges.rst",
            category="Calibration",
            labels={"data set": "{dataset}", "figure": "edge trial"},
        ),
    params:
        synthesis=lambda wc: cfg.synthesis_params(dataset_config(wc), {"calibrate": True}),
        sketch=TRIAL_SKETCH,
        # a model drawing several channels together gets a trial kind of as many channels
        channels=lambda wc: len(dataset_config(wc)["channels"]),
        stain_channels=lambda wc: cfg.calibration_channels(dataset_config(wc)["calibration"]),
        model_fit=lambda wc: models.model_fit(wc.dataset, dataset_config(wc)),
        device=config["device"],
        require_gpu=config["require_gpu"],
    threads: 2
    resources:
        gpu=1,
    log:
        "logs/{dataset}/calibrate_edges.log",
    benchmark:
        "benchmarks/{dataset}/calibrate_edges.tsv"
    conda:
        "../envs/diffusion.yaml"
    script:
        "../scripts/calibrate_edges.py"


rule synthesize_chunk:
    """A chunk of sketches -> synthetic images (SDEdit, tiles blended at every step), each
    checked against its labels; the model is loaded once per chunk."""
    input:
        unpack(synthesis_calibration),
        # the data set's own model, or the file its model.from names (no train_model job)
        model=lambda wc: layout.model_path(config, wc.dataset),
        sketches=chunk_of(layout.SKETCHED),
        # the labels the sketches were made from: new labels rerun synthesis (and their
        # sketches), so an image never outlives its labels
        labels=chunk_of(layout.SIMULATED),
    output:
        layout.SYNTHESIZED,
    params:
        synthesis=lambda wc: cfg.synthesis_params(dataset_config(wc), sim_config(wc)),
        # what the model must have been trained on (ndim, channels, normalize): checked on load
        model_fit=lambda wc: models.model_fit(wc.dataset, dataset_config(wc)),
        kind=lambda wc: sim_config(wc)["kind"],
        device=config["device"],
        require_gpu=config["require_gpu"],
        files=chunk_paths,
    threads: 2
    resources:
        gpu=1,
        runtime=synthesis_runtime,
    log:
        "logs/{dataset}/{sim}/synthesize/{chunk}.log",
    benchmark:
        "benchmarks/{dataset}/{sim}/synthesize/{chunk}.tsv"
    conda:
        "../envs/diffusion.yaml"
    script:
        "../scripts/synthesize.py"


rule synthesize:
    """Target: a synthetic image for every sketch of every simulation of every data set."""
    input:
        layout.synthesize_targets(config),
