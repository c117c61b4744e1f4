"""Cross-key checks of a data set's model and synthesis config that JSON schema cannot express."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from workflow_lib.errors import ConfigError


def check_diffusion_config(name: str, ds: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` naming the key when model/synthesis settings cannot work."""
    model, synth = ds["model"], ds["synthesis"]
    multiple = 2 ** (model["levels"] - 1)
    for key, sizes in (("model.patch_size", model["patch_size"]), ("synthesis.tile", synth["tile"])):
        if len(sizes) != ds["ndim"]:
            raise ConfigError(f"datasets.{name}.{key}", f"has {len(sizes)} axes but ndim is {ds['ndim']}")
        if any(s % multiple for s in sizes):
            raise ConfigError(
                f"datasets.{name}.{key}",
                f"{sizes}: every size must be a multiple of {multiple} (2**(levels-1))",
            )
    if synth["t_start"] > model["timesteps"]:
        raise ConfigError(
            f"datasets.{name}.synthesis.t_start",
            f"{synth['t_start']} exceeds model.timesteps ({model['timesteps']})",
        )
