"""Profiles: profiles/slurm plans GPU requests on train/synthesize only; profiles/local never
runs two GPU jobs at once. Offline: dry-runs and a tiny local workflow, no SLURM needed."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path

import yaml

from helpers import (
    GPU_RULES, SIZED_BY_RULE,
    LOCAL_PROFILE,
    REPO,
    SLURM_PROFILE,
    TARGETS,
    load_config,
    planned_jobs,
    run_snakemake,
)


def profile(path: Path) -> dict:
    return yaml.safe_load((path / "config.yaml").read_text())


def fake_dataset_config(root: Path, n_images: dict[str, int]) -> dict:
    """A config over data sets of empty .tif files (a dry-run never reads them): the third data
    set 3D (configs/dry_run.yaml's ``volume``), the others 2D (its ``plane``)."""
    templates = load_config("dry_run")["datasets"]
    datasets = {}
    for k, (name, n) in enumerate(n_images.items()):
        folder = root / "data" / name
        folder.mkdir(parents=True)
        for i in range(n):
            (folder / f"img{i:04d}.tif").touch()
        dataset = copy.deepcopy(templates["volume" if k == 2 else "plane"])
        datasets[name] = {**dataset, "images": f"data/{name}/*.tif"}
    return {"datasets": datasets}


def slurm_dry_run(workdir: Path, config: dict, *args: str) -> str:
    """Output of a dry-run with profiles/slurm (its ``jobs``, no --cores)."""
    return run_snakemake(workdir, config, "-n", *args, profile=SLURM_PROFILE, cores=None,
                         timeout=300).stdout


def test_slurm_profile_settings():
    p = profile(SLURM_PROFILE)
    assert p["executor"] == "slurm"
    assert p["jobs"] >= 1
    for rule in GPU_RULES:
        res = p["set-resources"][rule]
        assert res["gpu"] == 1, rule
        for key in {"cpus_per_gpu", "mem_mb", "runtime"} - set(SIZED_BY_RULE.get(rule, ())):
            assert isinstance(res[key], int) and res[key] > 0, f"{rule}.{key}"
        assert not set(SIZED_BY_RULE.get(rule, ())) & set(res), rule   # the rule sizes those
        # the job runs as many torch threads as it has CPUs: none idle, none oversubscribed
        assert p["set-threads"][rule] == res["cpus_per_gpu"], rule
    # The plugin rejects GPU requests smuggled into slurm_extra.
    for res in [p.get("default-resources", {}), *p["set-resources"].values()]:
        assert not re.search(r"--(gres|gpus)", str(res.get("slurm_extra", ""))), res
    # cpus_per_task would override cpus_per_gpu on GPU jobs.
    assert "cpus_per_task" not in p.get("default-resources", {})
    # Snakemake applies profiles/default to every run; the cluster must be opt-in.
    assert not (REPO / "profiles" / "default").exists()


def test_local_profile_settings():
    p = profile(LOCAL_PROFILE)
    assert p.get("executor", "local") == "local"
    assert isinstance(p["resources"]["gpu"], int) and p["resources"]["gpu"] >= 1


def test_slurm_dry_run_three_datasets(tmp_path):
    """Every planned job: gpu=1 on the GPU rules, no GPU on the rest, SLURM resources set."""
    config = fake_dataset_config(tmp_path, {"a": 3, "b": 2, "c": 2})
    out = slurm_dry_run(tmp_path, config, *TARGETS)
    jobs = [(j.rule, j.resources) for j in planned_jobs(out)]
    assert jobs, out[-3000:]
    p = profile(SLURM_PROFILE)
    for rule, res in jobs:
        if rule in TARGETS:
            continue
        if rule in GPU_RULES:
            want = p["set-resources"][rule]
            assert res.get("gpu") == "1", (rule, res)
            assert res.get("cpus_per_gpu") == str(want["cpus_per_gpu"]), (rule, res)
            for key in ("mem_mb", "runtime"):
                if key in want:
                    assert res.get(key) == str(want[key]), (rule, key, res)
            if rule == "synthesize_chunk":   # 4x the chunk's estimated work, >= 10 min
                assert int(res["runtime"]) >= 10, res
            if rule == "evaluate_simulation":
                # scaled to what it reads: known once its inputs exist (a dry-run says <TBD>)
                mem = res.get("mem_mb")
                assert mem == "<TBD>" or int(mem) >= 2000, (rule, res)
        else:
            assert res.get("gpu", "0") == "0", (rule, res)
            assert "gres" not in res, (rule, res)
            assert res.get("mem_mb") == str(p["default-resources"]["mem_mb"]), (rule, res)
    rules = {rule for rule, _ in jobs}
    assert {"convert_image", "index_dataset"} <= rules
    assert set(GPU_RULES) <= rules, sorted(rules)
    trains = [r for r, _ in jobs if r == "train_model"]
    assert len(trains) == 3, "one model per data set"


def test_slurm_dry_run_200_images(tmp_path):
    """A 200-image data set fans out into 200 convert jobs and one model (docs/scaling.md)."""
    config = fake_dataset_config(tmp_path, {"big": 200})
    out = slurm_dry_run(tmp_path, config, *TARGETS, "--quiet", "rules")
    counts = dict(re.findall(r"^(\w+)\s+(\d+)$", out, re.M))
    assert counts.get("convert_image") == "200", out[-2000:]
    assert counts.get("index_dataset") == "1", out[-2000:]
    assert counts.get("train_model") == "1", out[-2000:]


LOCAL_GPU_SNAKEFILE = """
rule all:
    input: expand("gpu_{i}.json", i=range(3)), expand("cpu_{i}.json", i=range(2))

rule gpu_job:
    output: "gpu_{i}.json"
    resources: gpu=1
    shell: "python -c 'import json,time; t=time.time(); time.sleep(0.5); "
           "json.dump([t, time.time()], open(\\"{output}\\", \\"w\\"))'"

rule cpu_job:
    output: "cpu_{i}.json"
    shell: "python -c 'import json,time; t=time.time(); time.sleep(0.5); "
           "json.dump([t, time.time()], open(\\"{output}\\", \\"w\\"))'"
"""


def test_local_profile_never_overlaps_gpu_jobs(tmp_path):
    """With profiles/local (gpu: 1) GPU jobs run one at a time while other jobs run beside them."""
    (tmp_path / "Snakefile").write_text(LOCAL_GPU_SNAKEFILE)
    proc = run_snakemake(tmp_path, None, snakefile=tmp_path / "Snakefile", profile=LOCAL_PROFILE,
                         cores=4, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:]
    spans = sorted(json.loads((tmp_path / f"gpu_{i}.json").read_text()) for i in range(3))
    for (_, end), (start, _) in zip(spans, spans[1:]):
        assert start >= end, f"two GPU jobs overlapped: {spans}"
    cpu = [json.loads((tmp_path / f"cpu_{i}.json").read_text()) for i in range(2)]
    assert any(s < spans[-1][1] and e > spans[0][0] for s, e in cpu), "CPU jobs waited for GPU jobs"
