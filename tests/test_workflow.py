"""The workflow boundary: layout, config checks at start-up, user inputs, and the house rules
(domain packages never import the workflow layer, no import cycles, one home per concern)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile
from snakemake.utils import validate

from helpers import SCHEMA
from workflow_lib.errors import ConfigError, InputError
from workflow_lib.simulate import KINDS
from workflow_lib.workflow import config as cfg
from workflow_lib.workflow import inputs, layout

REPO = Path(__file__).resolve().parents[1]
LIB = REPO / "workflow_lib"


def validated(simulations: dict, **dataset) -> dict:
    config = {"datasets": {"a": {"images": "x/*.tif", "simulations": simulations, **dataset}}}
    validate(config, SCHEMA)
    return config


def test_targets_list_every_file():
    config = validated({
        "n": {"kind": "nuclei", "count": 2},
        "t": {"kind": "timeseries", "count": 1},
        "m": {"kind": "masks", "count": 3, "params": {"masks": "resources/demo/masks/*.tif"}},
    })
    # auto: these small simulations are one chunk each (a job's minute holds them)
    assert layout.simulate_targets(config) == [
        f"results/a/{s}/chunks/simulate-{c}.json" for s, c in (("m", "0-2"), ("n", "0-1"), ("t", "0-0"))]
    assert layout.sketch_targets(config)[1] == "results/a/n/chunks/sketch-0-1.json"
    assert layout.synthesize_targets(config)[0] == "results/a/m/chunks/synthesize-0-2.json"
    sample = layout.sample_paths("a", "t", [0])
    assert [p for name in layout.written_from("sketch") for p in sample[name]] == [
        "results/a/t/sketches/0.tif", "results/a/t/annotations/0.h5", "results/a/t/previews/0.png",
        "results/a/t/images/0.tif", "results/a/t/images/0.json"]
    config["datasets"]["a"]["synthesis"]["images_per_job"] = 2
    assert layout.synthesize_targets(config)[:2] == [
        "results/a/m/chunks/synthesize-0-1.json", "results/a/m/chunks/synthesize-2-2.json"]
    assert layout.evaluate_targets(config) == [f"results/a/{s}/evaluation/metrics.json" for s in "mnt"]
    assert layout.prepare_targets(config, {"a": ["y", "x"]}) == [
        "results/a/h5/x.h5", "results/a/h5/y.h5",
        *(f"results/a/index/{s}.csv" for s in ("train", "val", "test"))]
    assert layout.fill(layout.MODEL, dataset="a") == layout.train_targets(config)[0]
    assert cfg.mask_glob("a", "m", config["datasets"]["a"]["simulations"]["m"]) == (
        "resources/demo/masks/*.tif", "datasets.a.simulations.m.params.masks")
    assert cfg.mask_glob("a", "n", config["datasets"]["a"]["simulations"]["n"]) is None


@pytest.mark.parametrize(
    "sim, key",
    [
        ({"kind": "nuclei", "params": {"radius": -2}}, "simulations.s.params.radius"),
        ({"kind": "nuclei", "params": {"radius": [9, 3]}}, "simulations.s.params.radius"),
        ({"kind": "nuclei", "params": {"colour": 1}}, "simulations.s.params.colour"),
        ({"kind": "nuclei", "params": {"z_scale": 2}}, "simulations.s.params.z_scale"),
        ({"kind": "membranes", "params": {"tissue": "cube"}}, "simulations.s.params.tissue"),
        ({"kind": "masks"}, "simulations.s.params.masks"),
        ({"kind": "nuclei", "sketch": {"brightness": [0.9, 0.1]}}, "simulations.s.sketch.brightness"),
        ({"kind": "nuclei", "sketch": {"blur": [1, 1, 1]}}, "simulations.s.sketch.blur"),
        ({"kind": "nuclei", "shape": [64, 64, 64]}, "simulations.s.shape"),
        ({"kind": "nuclei", "params": {}}, None),
    ],
)
def test_every_simulation_parameter_is_checked_at_start_up(sim, key):
    config = validated({"s": sim})
    if key is None:
        cfg.check(config)
        return
    with pytest.raises(ConfigError, match=re.escape(f"'datasets.a.{key}'")):
        cfg.check(config)


def test_reserved_simulation_names():
    for name in layout.RESERVED_FOLDERS:
        with pytest.raises(ConfigError, match=f"simulations.{name}"):
            cfg.check(validated({name: {"kind": "nuclei"}}))


def test_mask_files_and_read_mask(tmp_path):
    with pytest.raises(ConfigError, match="'k': the glob .* matches no file"):
        inputs.mask_files(str(tmp_path / "*.tif"), "k")
    (tmp_path / "a.txt").write_text("x")
    with pytest.raises(ConfigError, match="is not a mask image"):
        inputs.mask_files(str(tmp_path / "*"), "k")
    assert inputs.mask_files("later/*.tif", "k", known_files=["later/q.tif"]) == ["later/q.tif"]
    tifffile.imwrite(tmp_path / "m.tif", np.arange(12, dtype=np.uint16).reshape(1, 3, 4))
    assert inputs.read_mask(tmp_path / "m.tif", 2).shape == (3, 4)
    with pytest.raises(InputError, match="m.tif: mask has shape"):
        inputs.read_mask(tmp_path / "m.tif", 3)
    tifffile.imwrite(tmp_path / "f.tif", np.full((3, 4), 0.5, np.float32))
    with pytest.raises(InputError, match="integer ids"):
        inputs.read_mask(tmp_path / "f.tif", 2)
    tifffile.imwrite(tmp_path / "n.tif", np.full((3, 4), -1, np.int16))
    with pytest.raises(InputError, match=">= 0"):
        inputs.read_mask(tmp_path / "n.tif", 2)


# --- house rules, checked on the source -------------------------------------------------------

DOMAIN = ("io", "simulate", "sketch", "diffusion", "evaluate", "prepare")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
        elif isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
    return {m for m in out if m.startswith("workflow_lib")}


def _module(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _package(module: str) -> str:
    """Top-level unit of the house: workflow_lib.<package> (modules at the top are their own)."""
    return ".".join(module.split(".")[:2])


def test_domain_packages_never_import_the_workflow_layer():
    for package in DOMAIN:
        for path in (LIB / package).rglob("*.py"):
            bad = {m for m in _imports(path) if m.startswith("workflow_lib.workflow")}
            assert not bad, f"{path.relative_to(REPO)} imports {bad}"


def test_stages_of_per_image_jobs_do_not_import_matplotlib():
    """simulate_chunk and synthesize_chunk run once per image and draw nothing: matplotlib
    loads on the first figure only (workflow_lib.plotting), saving ~0.3 s per job."""
    code = ("import sys, workflow_lib.workflow.stages.simulation, workflow_lib.workflow.stages.diffusion;"
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_no_import_cycle_between_packages():
    graph: dict[str, set[str]] = {}
    for path in LIB.rglob("*.py"):
        src = _package(_module(path))
        graph.setdefault(src, set()).update(
            _package(m) for m in _imports(path) if _package(m) != src
        )
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                raise AssertionError("import cycle: " + " -> ".join(trail + [node, nxt]))
            if nxt not in state:
                visit(nxt, trail + [node])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])


def _sources():
    for folder in ("workflow_lib", "rules", "scripts", "bench"):
        for path in (REPO / folder).rglob("*"):
            if path.suffix in (".py", ".smk"):
                yield path


def test_results_paths_live_in_the_layout_only():
    for path in _sources():
        if path == LIB / "workflow" / "layout.py":
            continue
        assert "results/" not in re.sub(r'""".*?"""|#.*', "", path.read_text(), flags=re.S), path


def test_kind_names_are_branched_on_in_the_registry_only():
    names = "|".join(KINDS)
    pattern = re.compile(rf"""(==|!=|\bin)\s*\(?\s*["']({names})["']|["']({names})["']\s*(==|!=)""")
    for path in _sources():
        if path == LIB / "simulate" / "kinds.py":
            continue
        assert not pattern.search(path.read_text()), f"{path} branches on a kind name"


def test_sys_path_is_set_in_one_place():
    setters = [p for p in _sources() if "sys.path.insert" in p.read_text() or "sys.path.append" in p.read_text()]
    assert setters == [REPO / "scripts" / "_workflow_path.py"]


def test_scripts_are_thin():
    for path in (REPO / "scripts").glob("*.py"):
        if path.name == "_workflow_path.py":
            continue
        text = path.read_text()
        assert re.search(r"run_script\(snakemake, \w+\.\w+\)", text), path
        assert len(text.splitlines()) <= 10, path


def test_3d_data_sets_get_3d_sizes_unless_set():
    raw = {"datasets": {"v": {"images": "x", "ndim": 3, "simulations": {"s": {"kind": "nuclei"}}},
                        "w": {"images": "x", "ndim": 3, "model": {"patch_size": [16, 64, 64]}},
                        "p": {"images": "x"}}}
    import copy
    config = copy.deepcopy(raw)
    validate(config, SCHEMA)
    cfg.fill_3d_defaults(config, raw)
    cfg.check(config)
    v, w, p = (config["datasets"][k] for k in "vwp")
    assert v["model"]["patch_size"] == v["synthesis"]["tile"] == [32, 128, 128]
    assert v["simulations"]["s"]["shape"] == [64, 256, 256]
    assert w["model"]["patch_size"] == [16, 64, 64] and w["synthesis"]["tile"] == [32, 128, 128]
    assert len(p["model"]["patch_size"]) == 2 and len(p["synthesis"]["tile"]) == 2


def test_evaluation_reads_at_most_max_samples(tmp_path):
    from helpers import load_config, run_snakemake, write_raw_images

    write_raw_images(tmp_path / "raw", n=2, shape=(48, 48))
    config = load_config("tiny")
    ds = config["datasets"]["tiny"]
    ds["simulations"]["sim"]["count"] = 3
    ds["evaluation"]["max_samples"] = 2
    ds["synthesis"]["images_per_job"] = 1
    out = run_snakemake(tmp_path, config, "-n", "evaluate").stdout
    block = out[out.index("rule evaluate_simulation:"):]
    inputs_line = next(line for line in block.splitlines() if line.strip().startswith("input:"))
    assert "synthesize-1-1.json" in inputs_line and "synthesize-2-2.json" not in inputs_line
