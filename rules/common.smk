import os

from snakemake.utils import validate

from workflow_lib.simulate import get_kind
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow import inputs, layout


# The embedded default config is the demo; a user's --configfile replaces it instead of
# being merged into it (Snakemake's `configfile:` directive would merge the two).
if not workflow.overwrite_configfiles:
    workflow.configfile(
        os.path.join(os.path.dirname(workflow.main_snakefile), "config", "config.yaml")
    )


validate(config, "../config/config.schema.yaml")
cfg.check(config)
config["datasets"] = cfg.sorted_keys(config["datasets"])

DATASETS = sorted(config["datasets"])


wildcard_constraints:
    dataset="|".join(DATASETS),
    image=r"[^/]+",
    sim=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    i=r"\d+",


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def sim_config(wildcards):
    return config["datasets"][wildcards.dataset]["simulations"][wildcards.sim]


def images_of(dataset):
    """Image name -> input path of one data set (demo files count before they exist)."""
    return inputs.dataset_images(
        config["datasets"][dataset]["images"],
        cfg.key(dataset, "images"),
        known_files=DEMO_FILES,
    )


def convert_input(wildcards):
    return images_of(wildcards.dataset)[wildcards.image]


def h5_files(wildcards):
    return layout.h5_files(wildcards.dataset, images_of(wildcards.dataset))


def index_files(wildcards):
    return layout.index_files(wildcards.dataset)


def real_mask_files(wildcards):
    """Real masks matched to the data set's images by stem ([] when none are configured)."""
    return sorted(
        inputs.real_masks(
            dataset_config(wildcards)["evaluation"]["real_masks"],
            images_of(wildcards.dataset),
            cfg.key(wildcards.dataset, "evaluation", "real_masks"),
            known_files=DEMO_FILES,
        ).values()
    )


def simulation_mask(wildcards):
    """Kind `masks` reads mask file i mod n of the sorted glob params.masks; others read none."""
    sim = sim_config(wildcards)
    if not get_kind(sim["kind"]).needs_mask:
        return {}
    files = inputs.mask_files(
        sim["params"]["masks"],
        cfg.sim_key(wildcards.dataset, wildcards.sim, "params", "masks"),
        known_files=DEMO_FILES,
    )
    return {"mask": files[int(wildcards.i) % len(files)]}


def sample_files(template):
    """Rule input: ``template`` for every sample of the job's simulation."""
    return lambda wc: layout.sample_files(
        template, wc.dataset, wc.sim, sim_config(wc)["count"]
    )
