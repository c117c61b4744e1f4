"""Trained models used across data sets (``model.from``, ``model.init_from``): does a model fit?

Kept apart from :mod:`.config` because reading a model file needs torch, which only the
diffusion environment has; the checks run at start-up (``rules/common.smk``) and again when a
job loads the model.
"""

from __future__ import annotations

import math
import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from workflow_lib.errors import ConfigError
from workflow_lib.workflow.config import Config, key
from workflow_lib.workflow.layout import MODEL, fill


def model_fit(dataset: str, ds: Mapping[str, Any]) -> dict[str, Any]:
    """What a model must have been trained on to synthesise data set ``dataset`` (``ds``: its
    schema-filled config): the rule param of synthesize_chunk that :func:`check_model_fit`
    compares with the model's metadata at load time."""
    norm = ds["normalize"]
    return {"dataset": dataset, "ndim": ds["ndim"], "channels": len(ds["channels"]),
            "normalize": {"lower": norm["lower"], "upper": norm["upper"]}}


def check_model_fit(
    fit: Mapping[str, Any], synthesis: Mapping[str, Any], path: str | Path,
    unet: Mapping[str, Any], meta: Mapping[str, Any],
) -> list[str]:
    """Refuse a model (``unet`` and ``meta`` of the model.pt at ``path``) that does not fit the
    data set ``fit`` (:func:`model_fit`) and its ``synthesis`` settings: a
    :class:`ConfigError` naming the data set's key. Returns warnings (what cannot be checked)."""
    ds, model = fit["dataset"], f"the model {path}"
    if unet["spatial_dims"] != fit["ndim"]:
        raise ConfigError(key(ds, "ndim"),
                          f"{fit['ndim']}, but {model} was trained on {unet['spatial_dims']}D data")
    if unet["channels"] != fit["channels"]:
        raise ConfigError(key(ds, "channels"), f"{fit['channels']} channel(s), but {model} was "
                          f"trained on {unet['channels']}")
    warnings = []
    have, want = meta.get("normalize"), fit["normalize"]
    if not have:
        warnings.append(f"{path} records no normalisation (made by an older cellsynth): "
                        f"cannot check {key(ds, 'normalize')}")
    elif any(not math.isclose(have[b], want[b], abs_tol=1e-9) for b in ("lower", "upper")):
        raise ConfigError(
            key(ds, "normalize"),
            f"percentiles {want['lower']}-{want['upper']}, but {model} was trained on images "
            f"normalised with {have['lower']}-{have['upper']} (use those, or train a model)",
        )
    multiple = 2 ** (unet["levels"] - 1)
    if any(s % multiple for s in synthesis["tile"]):
        raise ConfigError(key(ds, "synthesis", "tile"), f"{list(synthesis['tile'])}: every size "
                          f"must be a multiple of {multiple} (2**(levels-1) of {model})")
    timesteps = meta.get("model", {}).get("timesteps")
    if timesteps is not None and synthesis["t_start"] > timesteps:
        raise ConfigError(key(ds, "synthesis", "t_start"),
                          f"{synthesis['t_start']} exceeds the {timesteps} timesteps of {model}")
    return warnings


def check_init_fit(
    dataset: str, model_cfg: Mapping[str, Any], ndim: int, channels: int, path: str | Path,
    unet: Mapping[str, Any], meta: Mapping[str, Any],
) -> None:
    """Refuse fine-tuning from a model (``unet``/``meta`` of ``path``) whose network differs
    from the one data set ``dataset`` configures; the message lists every differing key."""
    trained = {**model_cfg, **meta.get("model", {})}
    pairs = (
        ("ndim", ndim, unet["spatial_dims"]),
        ("channels (count)", channels, unet["channels"]),
        ("model.features", model_cfg["features"], unet["features"]),
        ("model.levels", model_cfg["levels"], unet["levels"]),
        ("model.timesteps", model_cfg["timesteps"], trained["timesteps"]),
        ("model.schedule", model_cfg["schedule"], trained["schedule"]),
    )
    differ = [f"{name} {have} there, {want} here" for name, want, have in pairs if want != have]
    if differ:
        raise ConfigError(key(dataset, "model", "init_from"),
                          f"{path} does not fit this data set's network: {'; '.join(differ)}")


def _model_header(path: str, config_key: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(unet config, meta) of a model.pt; a bad file is a :class:`ConfigError` on ``config_key``."""
    from workflow_lib.diffusion.model_io import read_model  # torch: only when a file is named
    from workflow_lib.errors import InputError

    try:
        payload = read_model(path)
    except InputError as exc:
        raise ConfigError(config_key, str(exc)) from None
    return payload["unet"], payload["meta"]


def check_models(config: Config) -> None:
    """``model.from`` and ``model.init_from`` of every data set: not both, never the data set's
    own model, never a model no job trains, no cycle of fine-tunings; a named file that exists
    now must fit (:func:`check_model_fit`, :func:`check_init_fit`). A file that another data set
    trains is checked again when it is loaded (synthesize_chunk, train_model)."""
    datasets = config["datasets"]
    own = {os.path.normpath(fill(MODEL, dataset=ds)): ds for ds in datasets}
    for name, ds in datasets.items():
        model = ds["model"]
        if model.get("from") and model.get("init_from"):
            raise ConfigError(key(name, "model", "init_from"), "cannot go with model.from (from: "
                              "synthesise with that model as it is; init_from: train from it)")
        for field in ("from", "init_from"):
            value = model.get(field)
            if not value:
                continue
            config_key, path = key(name, "model", field), os.path.normpath(value)
            producer = own.get(path)
            if producer == name:
                raise ConfigError(config_key, f"'{value}' is this data set's own model")
            used = datasets[producer]["model"].get("from") if producer is not None else None
            if used:
                raise ConfigError(config_key, f"'{value}' is never trained: data set "
                                  f"'{producer}' uses model.from '{used}'; name that")
            if os.path.isfile(path):
                unet, meta = _model_header(path, config_key)
                if field == "from":
                    for warning in check_model_fit(model_fit(name, ds), ds["synthesis"], value,
                                                   unet, meta):
                        print(f"cellsynth warning: {warning}", file=sys.stderr)
                else:
                    check_init_fit(name, model, ds["ndim"], len(ds["channels"]), value, unet, meta)
            elif producer is None:
                raise ConfigError(config_key, f"'{value}' does not exist (and no data set of this "
                                  "config trains it)")
    for name in datasets:  # a chain of init_from through the data sets' own models must end
        chain, current = [name], name
        while (init := datasets[current]["model"].get("init_from")) and (
                nxt := own.get(os.path.normpath(init))) is not None:
            if nxt in chain:
                raise ConfigError(key(name, "model", "init_from"), "fine-tunes in a circle: "
                                  + " -> ".join(chain + [nxt]))
            chain.append(nxt)
            current = nxt
