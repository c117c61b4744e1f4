import copy
import functools
import math
import os
import sys

from snakemake.utils import validate

from workflow_lib.dataset import split_names
from workflow_lib.errors import ConfigError
from workflow_lib.export import FORMATS as EXPORT_FORMATS
from workflow_lib.simulate import NUCLEUS_STAIN
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow import chunks, inputs, layout, models, pixel_sizes


# The embedded default config is the demo; a user's --configfile replaces it instead of
# being merged into it (Snakemake's `configfile:` directive would merge the two).
if not workflow.overwrite_configfiles:
    workflow.configfile(
        os.path.join(os.path.dirname(workflow.main_snakefile), "config", "config.yaml")
    )


SKETCH_EXPLICIT = cfg.explicit_sketch_keys(config)
AS_WRITTEN = copy.deepcopy(dict(config))
validate(config, "../config/config.schema.yaml")
cfg.fill_3d_defaults(config, AS_WRITTEN)
cfg.check(config)
models.check_models(config)
config["datasets"] = cfg.sorted_keys(config["datasets"])

DATASETS = sorted(config["datasets"])

# The edge trial (rule calibrate_edges) sketches like a calibrated simulation that sets no
# sketch key: the schema's sketch defaults, under the calibration's measurements.
_BARE = {"datasets": {"d": {"images": "x", "simulations": {"s": {"kind": "nuclei"}}}}}
validate(_BARE, "../config/config.schema.yaml")
TRIAL_SKETCH = _BARE["datasets"]["d"]["simulations"]["s"]["sketch"]


wildcard_constraints:
    dataset="|".join(DATASETS),
    image=r"[^/]+",
    sim=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    i=r"\d+",
    chunk=r"\d+-\d+",
    format="|".join(EXPORT_FORMATS),


def dataset_config(wildcards):
    return config["datasets"][wildcards.dataset]


def sim_config(wildcards):
    return config["datasets"][wildcards.dataset]["simulations"][wildcards.sim]


@functools.cache
def image_inputs(dataset):
    """(image name -> input path, problem or None) of one data set.

    A data set whose images cannot be used (no match, a bad file name) gets no images; its jobs
    wait for rule unusable_images, which fails with the problem, so --keep-going still finishes
    the other data sets.
    """
    try:
        return inputs.dataset_images(
            config["datasets"][dataset]["images"],
            cfg.key(dataset, "images"),
            known_files=DEMO_FILES + DEMO3D_FILES,
        ), None
    except ConfigError as exc:
        print(f"cellsynth: {exc} (the jobs of data set '{dataset}' will fail)", file=sys.stderr)
        return {}, str(exc)


def images_of(dataset):
    """Image name -> input path of one data set (demo files count before they exist)."""
    return image_inputs(dataset)[0]


def image_names():
    return {ds: images_of(ds) for ds in DATASETS}


def convert_input(wildcards):
    return images_of(wildcards.dataset)[wildcards.image]


def h5_files(wildcards):
    """The converted images of a data set; for unusable inputs, the job that says why."""
    if image_inputs(wildcards.dataset)[1] is not None:
        return [layout.fill(layout.UNUSABLE_IMAGES, dataset=wildcards.dataset)]
    return layout.h5_files(wildcards.dataset, images_of(wildcards.dataset))


def index_files(wildcards):
    return layout.index_files(wildcards.dataset)


def mask_files(section, key):
    """Rule input: the masks of config key ``section.key`` (``evaluation.real_masks``,
    ``calibration.masks``) matched to the data set's images by stem ([] when none are set)."""

    def files(wildcards):
        if not images_of(wildcards.dataset):
            return []
        return sorted(
            inputs.real_masks(
                dataset_config(wildcards)[section][key],
                images_of(wildcards.dataset),
                cfg.key(wildcards.dataset, section, key),
                known_files=DEMO_FILES + DEMO3D_FILES,
            ).values()
        )

    return files


real_mask_files = mask_files("evaluation", "real_masks")
calibration_mask_files = mask_files("calibration", "masks")


def calibration_of(wildcards):
    """Rule input: the data set's calibration, for simulations with calibrate: true."""
    if not sim_config(wildcards)["calibrate"]:
        return {}
    return {"calibration": layout.fill(layout.CALIBRATION, dataset=wildcards.dataset)}


def sketch_calibration(wildcards):
    """Rule input of a sketch: the calibration, and for a nuclei stain the edge trial (after
    training) unless the simulation sets its own sketch.edge_shift."""
    inputs = calibration_of(wildcards)
    if (inputs and NUCLEUS_STAIN in cfg.calibration_channels(dataset_config(wildcards)["calibration"])
            and "edge_shift" not in SKETCH_EXPLICIT[wildcards.dataset][wildcards.sim]):
        inputs["edges"] = layout.fill(layout.EDGES, dataset=wildcards.dataset)
    return inputs


def synthesis_calibration(wildcards):
    """Rule input: the calibration when synthesis uses it (the annotation guard: real background
    and blur; texture matching: real noise and texture)."""
    synthesis = dataset_config(wildcards)["synthesis"]
    if not (synthesis["guard"]["enabled"] or synthesis["texture"]):
        return {}
    return {"calibration": layout.fill(layout.CALIBRATION, dataset=wildcards.dataset)}


def simulation_masks(wildcards):
    """Kind `masks` reads mask file i mod n of the sorted glob params.masks for sample i; others
    read none. A mask of an image the evaluation tests on (evaluation.test_splits) is refused.
    """
    source = cfg.mask_glob(wildcards.dataset, wildcards.sim, sim_config(wildcards))
    if source is None:
        return {}
    files = inputs.mask_files(*source, known_files=DEMO_FILES + DEMO3D_FILES)
    ds = dataset_config(wildcards)
    names, split = sorted(images_of(wildcards.dataset)), ds["split"]
    if names:
        splits = split_names(names, split["val"], split["test"], split["seed"])
        tested_on = {n: s for s in ds["evaluation"]["test_splits"] for n in splits[s]}
        cfg.check_no_test_masks(wildcards.dataset, wildcards.sim, files, tested_on)
    return {"masks": [files[i % len(files)] for i in chunks.samples(wildcards.chunk)]}


def chunk_of(template):
    """Rule input: ``template`` (layout.SIMULATED, ...) of the job's own chunk."""
    return lambda wc: layout.fill(template, dataset=wc.dataset, sim=wc.sim, chunk=wc.chunk)


def chunk_paths(wildcards):
    """Rule param of a chunk job: every file of the chunk's samples, by name
    (layout.SAMPLE_FILES): what the job reads, writes and first removes."""
    return layout.sample_paths(wildcards.dataset, wildcards.sim, chunks.samples(wildcards.chunk))


def synthesis_runtime(wildcards):
    """Minutes a synthesis chunk job may take (SLURM): 4x the estimate, at least 10."""
    ds, sim = dataset_config(wildcards), sim_config(wildcards)
    per_sample = chunks.seconds_per_sample(ds, sim, chunks.gpu_expected(config["device"]))
    return max(10, math.ceil(4 * per_sample * len(chunks.samples(wildcards.chunk)) / 60))


def dataset_samples(wildcards, names):
    """Rule param: file ``names`` (layout.SAMPLE_FILES) of every sample of every simulation of
    the job's data set, in the order of rule export_dataset's ``samples`` param."""
    per_sim = [layout.sample_paths(wildcards.dataset, sim, range(cfg["count"]), names)
               for sim, cfg in dataset_config(wildcards)["simulations"].items()]
    return {name: [path for paths in per_sim for path in paths[name]] for name in names}


def dataset_chunks(wildcards):
    """Rule input: every synthesis chunk of every simulation of the job's data set."""
    return [
        path
        for sim in dataset_config(wildcards)["simulations"]
        for path in layout.chunk_files(layout.SYNTHESIZED, config, wildcards.dataset, sim)
    ]


def evaluated_samples(wildcards):
    """How many samples of the job's simulation the evaluation reads (evaluation.max_samples)."""
    return min(
        sim_config(wildcards)["count"],
        dataset_config(wildcards)["evaluation"]["max_samples"],
    )


def evaluated_files(wildcards):
    """Rule param: labels, sketch, image and check of every evaluated sample, by name."""
    return layout.sample_paths(wildcards.dataset, wildcards.sim,
                               range(evaluated_samples(wildcards)),
                               ("labels", "sketch", "image", "check"))


def evaluated_megabytes(wildcards):
    """What the evaluated samples take in memory: labels, sketch and image of every channel
    (at most 10 bytes a pixel, two label channels)."""
    sim = sim_config(wildcards)
    return math.ceil(evaluated_samples(wildcards) * math.prod(sim["shape"]) * 20 / 1e6)


def evaluated_chunks(wildcards):
    """Rule input: the synthesis chunks holding the evaluated samples."""
    return layout.chunk_files(layout.SYNTHESIZED, config, wildcards.dataset, wildcards.sim,
                              holding=evaluated_samples(wildcards))
