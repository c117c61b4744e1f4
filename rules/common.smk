import os
import sys

from snakemake.utils import validate

# The library lives beside this workflow; make it importable whether or not it is installed.
sys.path.insert(0, os.path.dirname(os.path.abspath(workflow.main_snakefile)))

from workflow_lib import pipeline


# The embedded default config is the demo; a user's --configfile replaces it instead of
# being merged into it (Snakemake's `configfile:` directive would merge the two).
if not workflow.overwrite_configfiles:
    workflow.configfile(
        os.path.join(os.path.dirname(workflow.main_snakefile), "config", "config.yaml")
    )


validate(config, "../config/config.schema.yaml")
pipeline.check_config(config)
config["datasets"] = pipeline.sorted_keys(config["datasets"])

DATASETS = sorted(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS),
    image=r"[^/]+",
    sim=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    i=r"\d+",


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def images_of(dataset):
    """Image name -> input path of one data set (demo files count before they exist)."""
    return pipeline.dataset_images(
        dataset, config["datasets"][dataset]["images"], known_files=DEMO_FILES
    )


def convert_input(wildcards):
    return images_of(wildcards.dataset)[wildcards.image]


def h5_files(wildcards):
    return [
        f"results/{wildcards.dataset}/h5/{name}.h5"
        for name in sorted(images_of(wildcards.dataset))
    ]


def prepare_outputs():
    return expand(
        "results/{dataset}/index/{split}.csv", dataset=DATASETS, split=pipeline.SPLITS
    )


def all_outputs():
    """Everything `snakemake` builds by default: every stage's targets."""
    return (
        prepare_outputs()
        + train_outputs()
        + simulate_outputs()
        + sketch_outputs()
        + synthesize_outputs()
        + evaluate_outputs()
    )
