"""Chunks of samples per job (synthesis.images_per_job): names, splits, the auto size."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from snakemake.utils import validate

from helpers import REPO, SCHEMA
from workflow_lib.workflow import chunks
from workflow_lib.workflow import config as cfg


@given(count=st.integers(1, 500), per_job=st.integers(1, 64))
def test_chunks_cover_every_sample_once_in_order(count, per_job):
    names = chunks.split(count, per_job)
    samples = [i for name in names for i in chunks.samples(name)]
    assert samples == list(range(count))
    assert all(len(chunks.samples(n)) <= per_job for n in names)
    assert chunks.covering(names, 1) == names[:1]
    assert chunks.covering(names, count) == names


def _demo() -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    validate(config, SCHEMA)
    return config


def test_auto_gives_each_demo_simulation_one_job_on_a_cpu():
    """The demo's simulations (1-8 samples of 256-512 px) are a minute's work or less each."""
    config = _demo()
    config["device"] = "cpu"
    for sim, sim_cfg in config["datasets"]["nuclei"]["simulations"].items():
        assert chunks.simulation_chunks(config, "nuclei", sim) == [f"0-{sim_cfg['count'] - 1}"]


def test_auto_sizes_jobs_to_about_a_minute_on_the_device():
    config = _demo()
    ds = config["datasets"]["nuclei"]
    sim = {**ds["simulations"]["spread"], "count": 5000}
    cpu, gpu = (chunks.images_per_job(ds, sim, g) for g in (False, True))
    assert 1 <= cpu < gpu <= 5000
    # the estimate behind it: about a minute per job, within one sample's time
    for n, on_gpu in ((cpu, False), (gpu, True)):
        per_sample = chunks.seconds_per_sample(ds, sim, on_gpu)
        assert n * per_sample <= chunks.JOB_SECONDS < (n + 1) * per_sample
    # a big 3D volume: one per job
    volume = {**sim, "shape": [180, 512, 512]}
    ds3 = {**ds, "ndim": 3, "synthesis": {**ds["synthesis"], "tile": [32, 128, 128]}}
    assert chunks.images_per_job(ds3, volume, gpu=False) == 1
    # a number is taken as it is
    ds_set = {**ds, "synthesis": {**ds["synthesis"], "images_per_job": 7}}
    assert chunks.split(20, chunks.images_per_job(ds_set, sim, gpu=True))[-1] == "14-19"


@pytest.mark.parametrize("value, ok", [("auto", True), (3, True), (0, False), ("many", False)])
def test_images_per_job_is_validated(value, ok):
    config = {"datasets": {"d": {"images": "x", "synthesis": {"images_per_job": value}}}}
    if ok:
        validate(config, SCHEMA)
    else:
        with pytest.raises(Exception, match="images_per_job"):
            validate(config, SCHEMA)


def test_the_chunking_changes_no_synthesis_param():
    """images_per_job is left out of the synthesize and edge-trial params: a new chunking
    reruns no edge trial."""
    ds = _demo()["datasets"]["nuclei"]
    assert "images_per_job" not in cfg.synthesis_params(ds, {"calibrate": True})
