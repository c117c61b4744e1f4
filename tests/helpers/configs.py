"""The tiny test configs: YAML files under tests/configs/, loaded fresh for each test.

Each file is a whole workflow config (``datasets: ...``); tests may change the loaded dict.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from helpers import REPO
from helpers.data import write_raw_images

CONFIGS = REPO / "tests" / "configs"


def load_config(name: str) -> dict:
    """``tests/configs/<name>.yaml`` as a new dict."""
    return yaml.safe_load((CONFIGS / f"{name}.yaml").read_text())


def tiny_dataset(images: str) -> dict:
    """The data set of configs/tiny.yaml over ``images``: every stage runs in seconds on a CPU."""
    (dataset,) = load_config("tiny")["datasets"].values()
    return {**dataset, "images": images}


def tiny_config(root: Path, names: tuple[str, ...] = ("a", "b")) -> dict:
    """Config with one tiny data set per name; writes their images under ``root/raw/<name>``."""
    for k, name in enumerate(names):
        write_raw_images(root / "raw" / name, seed=k)
    return {"datasets": {name: tiny_dataset(f"raw/{name}/*.tif") for name in names}}


def two_dataset_config(root: Path) -> dict:
    """Data set a with every stage; b a model only (no simulations), to keep the build short."""
    config = tiny_config(root, ("a", "b"))
    config["datasets"]["b"]["simulations"] = {}
    return config
