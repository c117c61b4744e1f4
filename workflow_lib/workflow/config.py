"""The config: the only module that knows config key names.

``rules/common.smk`` validates the YAML against ``config/config.schema.yaml`` (which fills every
default) and then calls :func:`check`, which runs every check the schema cannot express and
builds the typed settings of every simulation, so a bad value anywhere stops ``snakemake`` (and
``snakemake -n``) at start-up with the key's full name. Jobs rebuild the same typed settings
from their rule params with the ``*_settings`` functions here; domain packages only ever see
those typed settings and raise :class:`~workflow_lib.errors.ParamError`, which :func:`keyed`
turns into a :class:`~workflow_lib.errors.ConfigError` naming the full key.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

from workflow_lib.errors import ConfigError, ParamError
from workflow_lib.calibrate.measure import MeasureSettings
from workflow_lib.diffusion.settings import (
    CheckLimits, GuardSettings, ModelSettings, SamplingSettings, SynthesisSettings,
    TrainSettings,
)
from workflow_lib.evaluate.settings import (
    C2STSettings, EvaluationSettings, MemorisationSettings, SegmenterSettings,
)
from workflow_lib.simulate import Kind, get_kind, read_params
from workflow_lib.sketch import SketchParams
from workflow_lib.workflow.layout import RESERVED_FOLDERS

Config = Mapping[str, Any]


def key(dataset: str, *path: str) -> str:
    """Full config key of a data set's setting: ``key("a", "synthesis", "t_start")``."""
    return ".".join(("datasets", dataset, *path))


def sim_key(dataset: str, sim: str, *path: str) -> str:
    """Full config key of a simulation's setting."""
    return key(dataset, "simulations", sim, *path)


@contextlib.contextmanager
def keyed(prefix: str) -> Iterator[None]:
    """Turn a :class:`ParamError` raised inside into a :class:`ConfigError` on ``prefix.<name>``."""
    try:
        yield
    except ParamError as exc:
        raise ConfigError(f"{prefix}.{exc.name}", exc.problem) from exc


def explicit_sketch_keys(config: Config) -> dict[str, dict[str, list[str]]]:
    """Data set -> simulation -> the sketch keys its user set, read BEFORE the schema fills in
    defaults: a calibrated simulation takes every other sketch key from the calibration."""
    def keys(value: Any) -> list[str]:
        return sorted(value) if isinstance(value, Mapping) else []

    out: dict[str, dict[str, list[str]]] = {}
    datasets = config.get("datasets") if isinstance(config, Mapping) else None
    for ds, raw in (datasets.items() if isinstance(datasets, Mapping) else ()):
        sims = raw.get("simulations") if isinstance(raw, Mapping) else None
        out[ds] = {
            sim: keys(cfg.get("sketch")) if isinstance(cfg, Mapping) else []
            for sim, cfg in (sims.items() if isinstance(sims, Mapping) else ())
        }
    return out


#: Sizes the schema cannot default for 3D data sets (its defaults are 2D): the method's 3D patch.
DEFAULTS_3D = {
    ("model", "patch_size"): [32, 128, 128],
    ("synthesis", "tile"): [32, 128, 128],
}
SIMULATION_SHAPE_3D = [64, 256, 256]


def _given(raw: Any, *path: str) -> bool:
    for part in path:
        if not isinstance(raw, Mapping) or part not in raw:
            return False
        raw = raw[part]
    return True


def fill_3d_defaults(config: dict, raw: Config) -> None:
    """Give 3D data sets 3D sizes where their user set none (the schema's defaults are 2D).

    ``raw``: the config as the user wrote it (before the schema filled defaults in).
    """
    raw_datasets = raw.get("datasets", {}) if isinstance(raw, Mapping) else {}
    for name, ds in config["datasets"].items():
        if ds["ndim"] != 3:
            continue
        given = raw_datasets.get(name, {})
        # new mappings, not edits: the schema's defaults may be one object shared by data sets
        for (section, key), value in DEFAULTS_3D.items():
            if not _given(given, section, key):
                ds[section] = {**ds[section], key: list(value)}
        ds["simulations"] = {
            sim_name: sim if _given(given, "simulations", sim_name, "shape")
            else {**sim, "shape": list(SIMULATION_SHAPE_3D)}
            for sim_name, sim in ds["simulations"].items()
        }


def sorted_keys(obj: Any) -> Any:
    """``obj`` with every mapping's keys sorted, recursively.

    Snakemake compares a job's params by their text, so reordering keys in a YAML file
    would otherwise rerun jobs whose settings did not change.
    """
    if isinstance(obj, Mapping):
        return {k: sorted_keys(obj[k]) for k in sorted(obj)}
    if isinstance(obj, list):
        return [sorted_keys(value) for value in obj]
    return obj


def sketch_settings(raw: Mapping[str, Any], ndim: int, prefix: str) -> SketchParams:
    """Typed sketch settings from a schema-filled ``sketch:`` mapping."""
    nucleoli = raw["nucleoli"]
    blur = raw["blur"]
    if isinstance(blur, list) and len(blur) != ndim:
        raise ConfigError(f"{prefix}.blur", f"has {len(blur)} sigmas but the data has {ndim} spatial axes")
    with keyed(prefix):
        return SketchParams(
            mode=raw["mode"],
            falloff=raw["falloff"],
            gamma=raw["gamma"],
            brightness=tuple(raw["brightness"]),
            cell_range=tuple(raw["cell_range"]),
            background=float(raw["background"]),
            nucleoli_count=tuple(int(v) for v in nucleoli["count"]),
            nucleoli_radius=tuple(nucleoli["radius"]),
            nucleoli_intensity=float(nucleoli["intensity"]),
            blur=tuple(blur) if isinstance(blur, list) else float(blur),
            edge_shift=float(raw["edge_shift"] or 0.0),
            brightness_samples=(tuple(raw["brightness_samples"])
                                if raw.get("brightness_samples") else None),
        )


def simulation_params(
    dataset: str, sim: str, kind_name: str, raw: Mapping[str, Any] | None, ndim: int
) -> tuple[Kind, Any]:
    """The kind of simulation ``sim`` and its typed, validated ``params``."""
    kind = get_kind(kind_name)
    with keyed(sim_key(dataset, sim, "params")):
        return kind, read_params(kind.name, raw, ndim)


def mask_glob(dataset: str, sim: str, raw: Mapping[str, Any]) -> tuple[str, str] | None:
    """(glob of user label images, its config key) of a simulation made from masks, else None."""
    kind, settings = simulation_params(dataset, sim, raw["kind"], raw["params"], len(raw["shape"]))
    if not kind.needs_mask:
        return None
    return settings.masks, sim_key(dataset, sim, "params", "masks")


def check_no_test_masks(
    dataset: str, sim: str, mask_files: Sequence[str], tested_on: Mapping[str, str]
) -> None:
    """Refuse a simulation made from the mask of an image the evaluation tests on
    (``tested_on``: image name -> its split): training a segmenter on its mask would leak the
    answer."""
    for path in mask_files:
        split = tested_on.get(Path(path).stem)
        if split is not None:
            raise ConfigError(
                sim_key(dataset, sim, "params", "masks"),
                f"'{path}' is the mask of {split} image '{Path(path).stem}' (the evaluation tests "
                "on it, so simulating from it leaks the answer); leave it out of the glob",
            )


#: Sketch blur synthesis adds where the sketch has no measured one (uncalibrated simulations).
UNCALIBRATED_SYNTHESIS_BLUR = 1.0


def synthesis_params(ds: Mapping[str, Any], sim: Mapping[str, Any]) -> dict[str, Any]:
    """A data set's schema-filled ``synthesis`` settings for one simulation, ``blur`` null
    resolved: 0 for a calibrated simulation, whose sketch already has the real images' edge
    blur (blurring it again widens small nuclei past their masks), else
    :data:`UNCALIBRATED_SYNTHESIS_BLUR`."""
    # how many samples a job draws changes no image
    synthesis = {k: v for k, v in ds["synthesis"].items() if k != "images_per_job"}
    if synthesis["blur"] is None:
        synthesis["blur"] = 0.0 if sim["calibrate"] else UNCALIBRATED_SYNTHESIS_BLUR
    return synthesis


def synthesis_settings(raw: Mapping[str, Any]) -> SynthesisSettings:
    """Typed synthesis settings from :func:`synthesis_params`' mapping (blur resolved)."""
    guard, check = raw["guard"], raw["annotation_check"]
    return SynthesisSettings(
        sampling=SamplingSettings(
            int(raw["t_start"]), raw["sampler"], int(raw["steps"]),
            tuple(int(t) for t in raw["tile"]), int(raw["overlap"]), int(raw["batch"]),
            float(raw["blur"]), bool(raw["clip"]),
        ),
        seed=int(raw["seed"]),
        guard=GuardSettings(bool(guard["enabled"]), float(guard["margin"]),
                            float(guard["sigma"]), float(guard.get("edge_band", 0.0))),
        texture=bool(raw["texture"]),
        check=CheckLimits(float(check["max_unannotated_pct"]),
                          float(check["max_boundary_offset_px"]), int(check["redraws"])),
    )


def model_settings(raw: Mapping[str, Any]) -> ModelSettings:
    """Typed network and training settings from a data set's schema-filled ``model:``."""
    train = raw["train"]
    return ModelSettings(
        patch_size=tuple(int(p) for p in raw["patch_size"]), features=int(raw["features"]),
        levels=int(raw["levels"]), timesteps=int(raw["timesteps"]), schedule=raw["schedule"],
        train=TrainSettings(
            steps=int(train["steps"]), batch_size=int(train["batch_size"]),
            lr=float(train["lr"]), seed=int(train["seed"]), ema=float(train["ema"]),
            checkpoint_every=int(train["checkpoint_every"]), val_every=int(train["val_every"]),
            val_batches=int(train["val_batches"]), augment=bool(train["augment"]),
        ),
    )


def calibration_channels(raw: Mapping[str, Any]) -> dict[str, int]:
    """Stain -> the channel of the converted images it is measured on, in the order given,
    from a data set's schema-filled ``calibration:`` (``stain`` and ``channel`` one each, or
    lists of one channel per stain; ``channel`` null: 0, or 0, 1, ... for a list)."""
    stains = raw["stain"] if isinstance(raw["stain"], list) else [raw["stain"]]
    channels = raw["channel"]
    if channels is None:
        channels = list(range(len(stains)))
    elif not isinstance(channels, list):
        channels = [channels]
    return dict(zip(stains, channels))


def _check_calibration(name: str, ds: Mapping[str, Any]) -> dict[str, int]:
    """The data set's stain -> channel (:func:`calibration_channels`), or a ConfigError naming
    the key whose stains and channels do not pair up or lie beyond the converted images."""
    raw = ds["calibration"]
    stains = raw["stain"] if isinstance(raw["stain"], list) else [raw["stain"]]
    channels = raw["channel"] if isinstance(raw["channel"], list) else [raw["channel"]]
    if raw["channel"] is not None and len(channels) != len(stains):
        raise ConfigError(key(name, "calibration", "channel"),
                          f"has {len(channels)} channel(s) for {len(stains)} stain(s) "
                          f"({', '.join(stains)}): give one channel per stain")
    measured = calibration_channels(raw)
    learnt = len(ds["channels"])
    for stain, channel in measured.items():
        if channel >= learnt:
            raise ConfigError(key(name, "calibration", "channel"),
                              f"{stain} in channel {channel}, but the converted images hold "
                              f"{learnt} channel(s) (`channels`: {ds['channels']})")
    return measured


def _check_channel_order(name: str, sim_name: str, kind: Kind, measured: Mapping[str, int],
                         learnt: int) -> None:
    """A model that draws a kind's channels together (as many channels as its labels) draws
    stain k in channel k: refuse a calibration that measured a stain of the kind elsewhere."""
    if learnt == 1 or learnt != len(kind.stains):
        return
    for stain, channel in measured.items():
        if stain in kind.stains and channel != kind.stains.index(stain):
            order = ", ".join(f"{s} in channel {c}" for c, s in enumerate(kind.stains))
            raise ConfigError(
                key(name, "calibration", "channel"),
                f"{stain} is measured in channel {channel}, but the model draws the channels of "
                f"simulation '{sim_name}' (kind '{kind.name}') together: {order}; order the "
                "data set's `channels` so")


def measure_settings(raw: Mapping[str, Any]) -> MeasureSettings:
    """Typed calibration measurement settings from a data set's schema-filled ``calibration:``."""
    return MeasureSettings(raw["sigma"], raw["h"], raw["min_size"], raw["z_scale"])


def evaluation_settings(raw: Mapping[str, Any]) -> EvaluationSettings:
    """Typed evaluation settings from a data set's schema-filled ``evaluation:`` mapping."""
    fidelity, realism, complete = raw["fidelity"], raw["realism"], raw["completeness"]
    return EvaluationSettings(
        sigma=fidelity["sigma"],
        min_distance=fidelity["min_distance"],
        completeness_sigma=complete["sigma"],
        completeness_k=complete["k"],
        completeness_min_size=complete["min_size"],
        patch=realism["patch"],
        subsets=realism["subsets"],
        width=realism["width"],
        realism_seed=realism["seed"],
        c2st=C2STSettings(**realism["c2st"], seed=realism["seed"]),
        memorisation=MemorisationSettings(**realism["memorisation"]),
        segmenter=SegmenterSettings(**raw["segmenter"]),
    )


def _check_diffusion(name: str, ds: Mapping[str, Any]) -> None:
    model, synth = ds["model"], ds["synthesis"]
    if model.get("from"):  # the named file's network applies: check_models compares it
        if len(synth["tile"]) != ds["ndim"]:
            raise ConfigError(key(name, "synthesis", "tile"),
                              f"has {len(synth['tile'])} axes but ndim is {ds['ndim']}")
        return
    multiple = 2 ** (model["levels"] - 1)
    for path, sizes in (("model.patch_size", model["patch_size"]), ("synthesis.tile", synth["tile"])):
        if len(sizes) != ds["ndim"]:
            raise ConfigError(key(name, path), f"has {len(sizes)} axes but ndim is {ds['ndim']}")
        if any(s % multiple for s in sizes):
            raise ConfigError(
                key(name, path), f"{sizes}: every size must be a multiple of {multiple} (2**(levels-1))"
            )
    if synth["t_start"] > model["timesteps"]:
        raise ConfigError(
            key(name, "synthesis", "t_start"),
            f"{synth['t_start']} exceeds model.timesteps ({model['timesteps']})",
        )


def check(config: Config) -> None:
    """Every check across keys that the JSON schema cannot express. Raises :class:`ConfigError`.

    ``config`` must already be schema-validated (defaults filled in).
    """
    for name, ds in config["datasets"].items():
        ndim = ds["ndim"]
        _check_diffusion(name, ds)
        split = ds["split"]
        if split["val"] + split["test"] >= 1:
            raise ConfigError(key(name, "split"), "val + test must leave a share for training (< 1)")
        lower, upper = ds["normalize"]["lower"], ds["normalize"]["upper"]
        if lower >= upper:
            raise ConfigError(key(name, "normalize"), f"lower ({lower}) must be < upper ({upper})")
        rescale = ds["rescale"]
        if isinstance(rescale, list) and len(rescale) != ndim:
            raise ConfigError(key(name, "rescale"), f"has {len(rescale)} factors but ndim is {ndim}")
        size = ds.get("pixel_size")
        if isinstance(size, list) and len(size) != ndim:
            raise ConfigError(key(name, "pixel_size"), f"has {len(size)} sizes but ndim is {ndim} "
                              "(one number for Y and X, or one per axis: [Z,] Y, X)")
        evaluation_settings(ds["evaluation"])
        measured = _check_calibration(name, ds)
        for sim_name, sim in ds["simulations"].items():
            if sim_name in RESERVED_FOLDERS:
                raise ConfigError(
                    sim_key(name, sim_name),
                    f"the name is taken by a stage folder ({', '.join(RESERVED_FOLDERS)})",
                )
            if len(sim["shape"]) != ndim:
                raise ConfigError(
                    sim_key(name, sim_name, "shape"), f"has {len(sim['shape'])} axes but ndim is {ndim}"
                )
            kind, _ = simulation_params(name, sim_name, sim["kind"], sim["params"], ndim)
            if sim["calibrate"] and not set(measured) & set(kind.stains):
                raise ConfigError(
                    sim_key(name, sim_name, "calibrate"),
                    f"kind '{kind.name}' shows {' and '.join(kind.stains)}, but the data set's "
                    f"images are calibrated as a {' and '.join(measured)} stain "
                    f"({key(name, 'calibration', 'stain')})",
                )
            _check_channel_order(name, sim_name, kind, measured, len(ds["channels"]))
            sketch_settings(sim["sketch"], ndim, sim_key(name, sim_name, "sketch"))
