"""The default config and schema: valid, defaults filled from every sub-schema."""

from __future__ import annotations

from pathlib import Path

import yaml
from snakemake.utils import validate

from workflow_lib.pipeline import check_config

CONFIG = Path(__file__).resolve().parents[1] / "config"


def test_defaults_reach_every_sub_schema():
    config = {"datasets": {"d": {"images": "x/*.tif"}}}
    validate(config, str(CONFIG / "config.schema.yaml"))
    ds = config["datasets"]["d"]
    assert ds["model"]["train"]["steps"] >= 1
    assert ds["synthesis"]["t_start"] == 400
    assert "real_masks" in ds["evaluation"]
    check_config(config)


def test_default_config_is_valid():
    config = yaml.safe_load((CONFIG / "config.yaml").read_text())
    validate(config, str(CONFIG / "config.schema.yaml"))
    check_config(config)
    assert config["datasets"]["nuclei"]["images"].startswith("resources/demo/")
