# Stage `evaluate`: annotation fidelity, realism and train-on-synthetic/test-on-real per
# simulation (rule evaluate_simulation), against a per-data-set reference (evaluate_reference:
# the real-data baseline and the real-vs-real realism floor, shared by its simulations).
from functools import partial

from workflow_lib.evaluate import targets

evaluate_outputs = partial(targets.evaluate_outputs, config)

EVAL_FIGURES = ("summary", "grid", "distributions", "segmenter_loss")


rule evaluate_reference:
    """Per data set: segmenter trained on real train masks -> real test; real train vs test realism."""
    input:
        index=expand("results/{{dataset}}/index/{split}.csv", split=pipeline.SPLITS),
        h5=h5_files,
        masks=lambda wc: targets.real_mask_files(
            config, wc.dataset, images_of(wc.dataset), DEMO_FILES
        ),
    output:
        "results/{dataset}/evaluation/reference.json",
    params:
        evaluation=lambda wc: dataset_config(wc)["evaluation"],
    threads: 2
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
        labels=lambda wc: targets.simulation_files(config, wc.dataset, wc.sim, "labels"),
        sketches=lambda wc: targets.simulation_files(config, wc.dataset, wc.sim, "sketches"),
        images=lambda wc: targets.simulation_files(config, wc.dataset, wc.sim, "images"),
        index=expand("results/{{dataset}}/index/{split}.csv", split=pipeline.SPLITS),
        h5=h5_files,
        masks=lambda wc: targets.real_mask_files(
            config, wc.dataset, images_of(wc.dataset), DEMO_FILES
        ),
        reference="results/{dataset}/evaluation/reference.json",
    output:
        metrics=report(
            "results/{dataset}/{sim}/evaluation/metrics.json",
            caption="../report/metrics.rst",
            category="Evaluation",
            subcategory="{dataset} / {sim}",
            labels={"data set": "{dataset}", "simulation": "{sim}", "figure": "metrics.json"},
        ),
        **{
            name: report(
                f"results/{{dataset}}/{{sim}}/evaluation/{name}.png",
                caption=f"../report/{name}.rst",
                category="Evaluation",
                subcategory="{dataset} / {sim}",
                labels={"data set": "{dataset}", "simulation": "{sim}", "figure": name},
            )
            for name in EVAL_FIGURES
        },
    params:
        kind=lambda wc: dataset_config(wc)["simulations"][wc.sim]["kind"],
        ndim=lambda wc: dataset_config(wc)["ndim"],
        evaluation=lambda wc: dataset_config(wc)["evaluation"],
    threads: 2
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
        evaluate_outputs(),
