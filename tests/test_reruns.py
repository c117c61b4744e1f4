"""Partial reruns: a change to one data set or one stage redoes only the jobs it affects.

One tiny two-data-set pipeline (a, b) is built once per session (conftest's built_pipeline);
each test works on a copy (pipeline_copy: mtimes and Snakemake's metadata preserved), changes
something, and checks the dry-run plan and, where cheap, the files after a real run.
"""

from __future__ import annotations

import pytest

from helpers import (
    TARGETS,
    job_keys,
    planned_jobs,
    run_snakemake,
    snapshot,
    tiny_config,
    tiny_dataset,
    write_raw_images,
)

pytestmark = pytest.mark.e2e


def test_until_index_stops_after_indexing(tmp_path):
    config = tiny_config(tmp_path, ("a",))
    # --until alone: with extra targets Snakemake plans those targets' jobs too.
    out = run_snakemake(tmp_path, config, "--until", "index_dataset").stdout
    assert (tmp_path / "results/a/index/train.csv").is_file()
    assert {p.name for p in (tmp_path / "results/a").iterdir()} == {"h5", "index"}, out[-2000:]
    # ... and the full run afterwards has the rest to do, but no prepare job.
    rest = {j.rule for j in planned_jobs(run_snakemake(tmp_path, config, "-n", *TARGETS).stdout)}
    assert not rest & {"convert_image", "index_dataset", "demo_data"}, rest


def test_split_change_reruns_only_that_dataset(pipeline_copy):
    """A params change in one data set's prepare stage: only that data set's index and later."""
    root, config = pipeline_copy
    config["datasets"]["a"]["split"]["seed"] = 1
    jobs = planned_jobs(run_snakemake(root, config, "-n", *TARGETS).stdout)
    keys = job_keys(jobs)
    assert ("index_dataset", "a") in keys, keys
    assert {ds for _, ds in keys} == {"a"}, keys
    assert not any(rule == "convert_image" for rule, _ in keys), keys
    assert any("Params have changed" in j.reason for j in jobs if j.rule == "index_dataset")
    before = snapshot(root)
    run_snakemake(root, config, "prepare")  # the rest of a's chain would follow
    after = snapshot(root)
    assert {k: v for k, v in after.items() if "/b/" in k} == {
        k: v for k, v in before.items() if "/b/" in k}
    assert {k: v for k, v in after.items() if k.startswith("results/a/h5/")} == {
        k: v for k, v in before.items() if k.startswith("results/a/h5/")}


def test_rerun_triggers_mtime_ignores_params(pipeline_copy):
    """`--rerun-triggers mtime` (docs/cluster.md) plans nothing for a params-only change."""
    root, config = pipeline_copy
    config["datasets"]["a"]["split"]["seed"] = 1
    out = run_snakemake(root, config, "-n", *TARGETS, "--rerun-triggers", "mtime").stdout
    assert "Nothing to be done" in out, out[-2000:]


def _reversed(obj):
    """The same config with every mapping's keys in reverse order."""
    if isinstance(obj, dict):
        return {k: _reversed(obj[k]) for k in reversed(list(obj))}
    return obj


def test_reordering_config_keys_reruns_nothing(pipeline_copy):
    """Snakemake compares params by repr(): the workflow must not let YAML key order leak in."""
    root, config = pipeline_copy
    out = run_snakemake(root, _reversed(config), "-n", *TARGETS).stdout
    assert "Nothing to be done" in out, [(j.rule, j.reason[:200]) for j in planned_jobs(out)]


def test_t_start_change_reruns_only_synthesize_and_evaluate_of_that_dataset(pipeline_copy):
    root, config = pipeline_copy
    config["datasets"]["a"]["synthesis"]["t_start"] += 2
    jobs = planned_jobs(run_snakemake(root, config, "-n", *TARGETS).stdout)
    keys = job_keys(jobs)
    assert ("synthesize_chunk", "a") in keys, keys
    assert keys <= {("synthesize_chunk", "a"), ("evaluate_simulation", "a")}, keys
    before = snapshot(root)
    run_snakemake(root, config, *TARGETS)
    after = snapshot(root)
    changed = {k for k in after if before.get(k) != after[k]}
    assert changed, "nothing was rewritten"
    assert all(k.startswith("results/a/sim/") for k in changed), sorted(changed)
    assert not any("/labels/" in k or "/sketches/" in k for k in changed), sorted(changed)


def test_forcerun_one_model_reruns_it_and_its_descendants_only(pipeline_copy):
    root, config = pipeline_copy
    out = run_snakemake(root, config, "-n", *TARGETS, "--forcerun",
                        "results/a/model/model.pt").stdout
    keys = job_keys(planned_jobs(out))
    assert ("train_model", "a") in keys, keys
    assert {ds for _, ds in keys} == {"a"}, keys
    assert keys <= {("train_model", "a"), ("synthesize_chunk", "a"),
                    ("evaluate_simulation", "a")}, keys


def test_forcerun_one_h5_file_reruns_that_conversion_and_its_descendants(pipeline_copy):
    root, config = pipeline_copy
    out = run_snakemake(root, config, "-n", *TARGETS, "--forcerun",
                        "results/a/h5/img0.h5").stdout
    jobs = planned_jobs(out)
    converts = [j for j in jobs if j.rule == "convert_image"]
    assert [j.wildcards for j in converts] == [{"dataset": "a", "image": "img0"}], out[-3000:]
    assert {ds for _, ds in job_keys(jobs)} == {"a"}
    assert not any(j.rule in ("simulate_chunk", "sketch_chunk") for j in jobs)


def test_forcerun_stage_rule_redoes_that_stage_everywhere(pipeline_copy):
    """The README recipe: `--forcerun synthesize_chunk` redoes synthesis (and evaluation) only."""
    root, config = pipeline_copy
    out = run_snakemake(root, config, "-n", *TARGETS, "--forcerun", "synthesize_chunk").stdout
    keys = job_keys(planned_jobs(out))
    assert ("synthesize_chunk", "a") in keys, keys  # b has no simulations
    assert {rule for rule, _ in keys} <= {"synthesize_chunk", "evaluate_simulation"}, keys


def test_adding_a_dataset_leaves_the_others_untouched(pipeline_copy):
    root, config = pipeline_copy
    write_raw_images(root / "raw" / "c", seed=7)
    config["datasets"]["c"] = tiny_dataset("raw/c/*.tif")
    jobs = planned_jobs(run_snakemake(root, config, "-n", *TARGETS).stdout)
    assert {ds for _, ds in job_keys(jobs)} == {"c"}, job_keys(jobs)
    before = snapshot(root)
    run_snakemake(root, config, "prepare")
    after = snapshot(root)
    assert {k: v for k, v in after.items() if "/c/" not in k} == before
    assert "results/c/index/train.csv" in after
