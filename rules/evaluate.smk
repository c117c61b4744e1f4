# Stage `evaluate`: annotation fidelity, realism and train-on-synthetic/test-on-real per
# simulation (rule evaluate_simulation), against a per-data-set reference (evaluate_reference:
# the real-data baseline and the real-vs-real realism floor, shared by its simulations).


rule evaluate_reference:
    """Per data set: segmenter trained on real train masks -> real test; real train vs test realism."""
    input:
        index=index_files,
        h5=h5_files,
        masks=real_mask_files,
    output:
        layout.REFERENCE,
    params:
        evaluation=lambda wc: dataset_config(wc)["evaluation"],
        device=config["device"],
        require_gpu=config["require_gpu"],
    threads: 2
    resources:
        # the real-trained segmenters train there
        gpu=1,
    log:
        "logs/{dataset}/evaluate_reference.log",
    benchmark:
        "benchmarks/{dataset}/evaluate_reference.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../scripts/evaluate_reference.py"


rule evaluate_simulation:
    """One simulation -> metrics.json (fidelity, realism, downstream) and report figures."""
    input:
        # the chunks of the evaluated samples; their files are params.samples
        chunks=evaluated_chunks,
        index=index_files,
        h5=h5_files,
        masks=real_mask_files,
        reference=layout.REFERENCE,
        calibration=layout.CALIBRATION,
    output:
        metrics=report(
            layout.METRICS,
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{dataset} / {sim}",
            labels={"data set": "{dataset}", "simulation": "{sim}", "figure": "metrics.json"},
        ),
        **{
            name: report(
                layout.EVAL_FIGURE.replace("{figure}", name),
                caption=f"../report/{name}.rst",
                category="Evaluation",
                subcategory="{dataset} / {sim}",
                labels={"data set": "{dataset}", "simulation": "{sim}", "figure": name},
            )
            for name in layout.EVAL_FIGURES
        },
    params:
        samples=evaluated_files,
        kind=lambda wc: sim_config(wc)["kind"],
        ndim=lambda wc: dataset_config(wc)["ndim"],
        evaluation=lambda wc: dataset_config(wc)["evaluation"],
        calibration=lambda wc: dataset_config(wc)["calibration"],
        # where synthesis tiles met: the seam measure looks there
        tiling=lambda wc: {k: dataset_config(wc)["synthesis"][k] for k in ("tile", "overlap")},
        device=config["device"],
        require_gpu=config["require_gpu"],
    threads: 2
    resources:
        # the realism classifier and the segmenters train there
        gpu=1,
        # every sample is held in memory; the time grows with the samples and segmenters
        mem_mb=lambda wc, input: 2000 + 6 * (int(input.size_mb) + evaluated_megabytes(wc)),
        runtime=lambda wc: 10 + 2 * evaluated_samples(wc),
    log:
        "logs/{dataset}/{sim}/evaluate.log",
    benchmark:
        "benchmarks/{dataset}/{sim}/evaluate.tsv"
    conda:
        "../envs/evaluate.yaml"
    script:
        "../scripts/evaluate.py"


rule evaluate:
    """Target: evaluate every simulation of every data set."""
    input:
        layout.evaluate_targets(config),
