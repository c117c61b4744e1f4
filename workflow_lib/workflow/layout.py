"""Every path under ``results/``: the templates the rules use and the target lists of each stage.

Templates hold Snakemake wildcards (``{dataset}``, ``{image}``, ``{split}``, ``{sim}``, ``{i}``)
and are filled with :func:`fill` outside Snakemake (tests, bench). Target lists take the
validated config mapping.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any

from workflow_lib.dataset import SPLITS
from workflow_lib.workflow import chunks

Config = Mapping[str, Any]

DATASET = "results/{dataset}"
H5 = DATASET + "/h5/{image}.h5"
INDEX = DATASET + "/index/{split}.csv"
#: Never written: the output of the job that fails when a data set's images cannot be used.
UNUSABLE_IMAGES = DATASET + "/h5/unusable-images.txt"
MODEL = DATASET + "/model/model.pt"
LOSS_PNG = DATASET + "/model/loss.png"
SAMPLES_PNG = DATASET + "/model/samples.png"
MODEL_CARD = DATASET + "/model/model.md"
CHECKPOINTS = DATASET + "/model/checkpoints"
REFERENCE = DATASET + "/evaluation/reference.json"
CALIBRATION = DATASET + "/calibration/calibration.json"
CALIBRATION_PNG = DATASET + "/calibration/calibration.png"
EDGES = DATASET + "/calibration/edges.json"
EDGES_PNG = DATASET + "/calibration/edges.png"

EXPORT = DATASET + "/export/{format}"

SIMULATION = DATASET + "/{sim}"
LABELS = SIMULATION + "/labels/{i}.tif"
LABELS_META = SIMULATION + "/labels/{i}.json"
TRACKS = SIMULATION + "/tracks/{i}/res_track.txt"
SKETCH = SIMULATION + "/sketches/{i}.tif"
ANNOTATIONS = SIMULATION + "/annotations/{i}.h5"
PREVIEW = SIMULATION + "/previews/{i}.png"
IMAGE = SIMULATION + "/images/{i}.tif"
IMAGE_CHECK = SIMULATION + "/images/{i}.json"
#: Written last by each chunk job (workflow_lib.workflow.chunks): the samples it made and
#: their files. Only a complete chunk has one, so a killed job's samples are made again.
SIMULATED = SIMULATION + "/chunks/simulate-{chunk}.json"
SKETCHED = SIMULATION + "/chunks/sketch-{chunk}.json"
SYNTHESIZED = SIMULATION + "/chunks/synthesize-{chunk}.json"
#: Every file of one sample, by the name the jobs' ``files``/``samples`` params give it.
SAMPLE_FILES = {
    "labels": LABELS, "meta": LABELS_META, "tracks": TRACKS,
    "sketch": SKETCH, "annotations": ANNOTATIONS, "preview": PREVIEW,
    "image": IMAGE, "check": IMAGE_CHECK,
}
#: What each stage writes per sample, in the order the stages run: a stage's job removes its
#: own and the later stages' files of its samples first, so an image is never left beside
#: labels or a sketch it was not made from.
STAGE_FILES = {
    "simulate": ("labels", "meta", "tracks"),
    "sketch": ("sketch", "annotations", "preview"),
    "synthesize": ("image", "check"),
}
METRICS = SIMULATION + "/evaluation/metrics.json"
EVAL_FIGURE = SIMULATION + "/evaluation/{figure}.png"
EVAL_FIGURES = ("summary", "grid", "realism", "distributions", "segmenter_loss", "structure")

#: Folders under ``results/{dataset}/`` of the per-data-set stages: simulation names may not
#: take them.
RESERVED_FOLDERS = ("h5", "index", "model", "evaluation", "calibration", "export")


def fill(template: str, **wildcards: Any) -> str:
    """A template with its wildcards filled in (``fill(MODEL, dataset="x")``)."""
    return template.format(**wildcards)


def _datasets(config: Config) -> list[str]:
    return sorted(config["datasets"])


def _simulations(config: Config) -> list[tuple[str, str, Mapping[str, Any]]]:
    """(data set, simulation name, its config) for every simulation, sorted."""
    return [
        (ds, name, sim)
        for ds in _datasets(config)
        for name, sim in sorted(config["datasets"][ds].get("simulations", {}).items())
    ]


def h5_files(dataset: str, image_names: Iterable[str]) -> list[str]:
    """The converted image of every input image of one data set, sorted by name."""
    return [fill(H5, dataset=dataset, image=name) for name in sorted(image_names)]


def index_files(dataset: str) -> list[str]:
    """The split CSVs of one data set, in the order of :data:`~workflow_lib.dataset.SPLITS`."""
    return [fill(INDEX, dataset=dataset, split=split) for split in SPLITS]


def sample_files(template: str, dataset: str, sim: str, samples: Iterable[int]) -> list[str]:
    """``template`` (e.g. :data:`LABELS`) for the samples listed of one simulation."""
    return [fill(template, dataset=dataset, sim=sim, i=i) for i in samples]


def sample_paths(dataset: str, sim: str, samples: Iterable[int],
                 names: Iterable[str] = tuple(SAMPLE_FILES)) -> dict[str, list[str]]:
    """Name (:data:`SAMPLE_FILES`) -> that file of every sample listed, in their order."""
    samples = list(samples)
    return {name: sample_files(SAMPLE_FILES[name], dataset, sim, samples) for name in names}


def written_from(stage: str) -> list[str]:
    """The names of the files ``stage`` and the stages after it write (:data:`STAGE_FILES`)."""
    stages = list(STAGE_FILES)
    return [name for later in stages[stages.index(stage):] for name in STAGE_FILES[later]]


def chunk_files(template: str, config: Config, dataset: str, sim: str,
                holding: int | None = None) -> list[str]:
    """``template`` (:data:`SIMULATED`, ...) for every chunk of one simulation (with
    ``holding``: of those that hold any of samples 0..holding-1)."""
    names = chunks.simulation_chunks(config, dataset, sim)
    if holding is not None:
        names = chunks.covering(names, holding)
    return [fill(template, dataset=dataset, sim=sim, chunk=c) for c in names]


def prepare_targets(config: Config, image_names: Mapping[str, Iterable[str]]) -> list[str]:
    """Every converted image (``image_names``: data set -> its input image names) and index.

    The converted images are targets too, so ``snakemake prepare`` rebuilds a deleted one even
    when the index that lists it is up to date.
    """
    return [
        path for ds in _datasets(config)
        for path in h5_files(ds, image_names.get(ds, ())) + index_files(ds)
    ]


def calibrate_targets(config: Config) -> list[str]:
    return [fill(CALIBRATION, dataset=ds) for ds in _datasets(config)]


def _model_file(config: Config, dataset: str, key: str) -> str | None:
    value = config["datasets"][dataset]["model"].get(key)
    return os.path.normpath(value) if value else None


def model_path(config: Config, dataset: str) -> str:
    """The model.pt a data set synthesises with: the file ``model.from`` names, else its own."""
    return _model_file(config, dataset, "from") or fill(MODEL, dataset=dataset)


def init_model_path(config: Config, dataset: str) -> str | None:
    """The model.pt whose weights a data set's training starts from (``model.init_from``)."""
    return _model_file(config, dataset, "init_from")


def init_model_inputs(config: Config, dataset: str) -> dict[str, str]:
    """Rule input (unpacked) of train_model: ``{"init": model.init_from}``, or none."""
    path = init_model_path(config, dataset)
    return {"init": path} if path else {}


def trained_datasets(config: Config) -> list[str]:
    """The data sets that train their own model (all but those with ``model.from``)."""
    return [ds for ds in _datasets(config) if not config["datasets"][ds]["model"].get("from")]


def train_targets(config: Config) -> list[str]:
    """The model of every data set (for ``model.from``: the file it names), each once."""
    return list(dict.fromkeys(model_path(config, ds) for ds in _datasets(config)))


def _chunk_targets(config: Config, template: str) -> list[str]:
    return [path for ds, sim, _ in _simulations(config)
            for path in chunk_files(template, config, ds, sim)]


def simulate_targets(config: Config) -> list[str]:
    """Every chunk of labels (with the CTC track files of time series samples)."""
    return _chunk_targets(config, SIMULATED)


def sketch_targets(config: Config) -> list[str]:
    """Every chunk of sketches, annotation HDF5 files and previews."""
    return _chunk_targets(config, SKETCHED)


def synthesize_targets(config: Config) -> list[str]:
    """Every chunk of synthetic images and their annotation checks."""
    return _chunk_targets(config, SYNTHESIZED)


def evaluate_targets(config: Config) -> list[str]:
    return [fill(METRICS, dataset=ds, sim=sim) for ds, sim, _ in _simulations(config)]


def export_targets(config: Config) -> list[str]:
    """The export folder of every format of every data set."""
    return [
        fill(EXPORT, dataset=ds, format=fmt)
        for ds in _datasets(config)
        for fmt in config["datasets"][ds]["export"]["formats"]
    ]


def all_targets(config: Config, image_names: Mapping[str, Iterable[str]]) -> list[str]:
    """Everything ``snakemake`` builds by default: every stage's targets."""
    return (
        prepare_targets(config, image_names)
        + calibrate_targets(config)
        + train_targets(config)
        + simulate_targets(config)
        + sketch_targets(config)
        + synthesize_targets(config)
        + evaluate_targets(config)
        + export_targets(config)
    )
