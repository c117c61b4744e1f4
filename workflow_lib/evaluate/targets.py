"""File lists of the evaluate stage's rules, from the validated config (no Snakemake needed)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from workflow_lib.evaluate.data import match_masks


def evaluate_outputs(config: Mapping[str, Any]) -> list[str]:
    """metrics.json of every simulation of every data set."""
    return [
        f"results/{ds}/{sim}/evaluation/metrics.json"
        for ds in sorted(config["datasets"])
        for sim in sorted(config["datasets"][ds]["simulations"])
    ]


def simulation_files(config: Mapping[str, Any], dataset: str, sim: str, stage: str) -> list[str]:
    """The TIFFs of one stage (labels, sketches, images) of one simulation."""
    count = config["datasets"][dataset]["simulations"][sim]["count"]
    return [f"results/{dataset}/{sim}/{stage}/{i}.tif" for i in range(count)]


def real_mask_files(
    config: Mapping[str, Any], dataset: str, image_names: Iterable[str], known_files: Iterable[str]
) -> list[str]:
    """Real mask paths matched to the data set's images by stem ([] when none are configured)."""
    pattern = config["datasets"][dataset]["evaluation"]["real_masks"]
    key = f"datasets.{dataset}.evaluation.real_masks"
    return sorted(match_masks(pattern, image_names, key, known_files=known_files).values())
