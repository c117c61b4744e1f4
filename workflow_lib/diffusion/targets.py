"""Output paths of the train and synthesize stages for a config (used by the rule files)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def model_paths(config: Mapping[str, Any]) -> list[str]:
    """``results/{dataset}/model/model.pt`` for every data set."""
    return [f"results/{ds}/model/model.pt" for ds in sorted(config["datasets"])]


def image_paths(config: Mapping[str, Any]) -> list[str]:
    """``results/{dataset}/{sim}/images/{i}.tif`` for every sample of every simulation."""
    return [
        f"results/{ds}/{sim}/images/{i}.tif"
        for ds in sorted(config["datasets"])
        for sim, sim_cfg in config["datasets"][ds]["simulations"].items()
        for i in range(sim_cfg["count"])
    ]
