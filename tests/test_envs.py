"""Conda environments: every env file parses and pins, every job rule names one, and each env
lists every package its rules' code imports (scripts plus the `workflow_lib` modules they reach).

Conda channels are not reachable in CI, so this is what `--sdm conda` needs that can be checked
offline.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
ENV_FILES = sorted((REPO / "envs").glob("*.yaml"))
LOCAL_PACKAGES = {"workflow_lib", "_workflow_path"}
# Import name -> extra accepted package names where conda-forge and PyPI disagree or the
# import name is not a distribution name; PyPI names come from the installed distributions.
ALIASES = {
    "torch": {"pytorch", "pytorch-gpu", "pytorch-cpu"},
    "matplotlib": {"matplotlib-base"},
    "mpl_toolkits": {"matplotlib", "matplotlib-base"},
    "cv2": {"opencv", "py-opencv", "opencv-python", "opencv-python-headless"},
    "skimage": {"scikit-image"},
    "sklearn": {"scikit-learn"},
    "yaml": {"pyyaml"},
    "PIL": {"pillow"},
}
RULE_RE = re.compile(r"^(?:rule|checkpoint)\s+(\w+)\s*:", re.M)
DIRECTIVE_RE = r"^\s+{}:\s*\n?\s*[\"']([^\"']+)[\"']"
JOB_DIRECTIVE_RE = re.compile(r"^\s+(script|shell|run|notebook|wrapper)\s*:", re.M)
SPEC_RE = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(?:\[[^\]]*\])?\s*(.*)$")


def _norm(name: str) -> str:
    return name.lower().replace("_", "-")


def parse_spec(spec: str) -> tuple[str, str]:
    """'numpy >=1.24' / 'conda-forge::numpy=1.26' / 'torch==2.1' -> (name, version constraint)."""
    spec = spec.split("::")[-1]
    m = SPEC_RE.match(spec)
    assert m, f"cannot parse dependency '{spec}'"
    return _norm(m.group(1)), m.group(2).strip()


def env_packages(env: dict) -> dict[str, str]:
    """Package name -> version constraint, conda and pip entries together."""
    packages: dict[str, str] = {}
    for dep in env["dependencies"]:
        entries = dep["pip"] if isinstance(dep, dict) else [dep]
        for entry in entries:
            name, version = parse_spec(entry)
            packages[name] = version
    return packages


def job_rules() -> list[dict]:
    """Every rule with a job body, from rules/*.smk and the Snakefile: name, file, conda, script."""
    rules = []
    for smk in [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]:
        text = smk.read_text()
        starts = [m.start() for m in RULE_RE.finditer(text)] + [len(text)]
        for begin, end in zip(starts, starts[1:]):
            block = text[begin:end]
            if not JOB_DIRECTIVE_RE.search(block):
                continue  # a target rule: only input, nothing runs
            conda = re.search(DIRECTIVE_RE.format("conda"), block, re.M)
            script = re.search(DIRECTIVE_RE.format("script"), block, re.M)
            rules.append({
                "name": RULE_RE.match(block).group(1),
                "file": smk,
                "conda": (smk.parent / conda.group(1)).resolve() if conda else None,
                "script": (smk.parent / script.group(1)).resolve() if script else None,
            })
    return rules


def _module_file(module: str) -> Path | None:
    """File of a `workflow_lib` module (or package __init__) under the repo, if any."""
    base = REPO.joinpath(*module.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _package_of(path: Path) -> str:
    """Package a module file belongs to (for relative imports): a/b/c.py and a/b/__init__.py -> a.b."""
    return ".".join(path.relative_to(REPO).parent.parts)


def _is_type_checking(node: ast.If) -> bool:
    return "TYPE_CHECKING" in ast.unparse(node.test)


def _imports(path: Path) -> list[str]:
    """Absolute module names imported anywhere in ``path`` (not under `if TYPE_CHECKING`)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    names: list[str] = []
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If) and _is_type_checking(node)
            for child in node.body for n in ast.walk(child)}
    package = _package_of(path) if path.is_relative_to(REPO / "workflow_lib") else ""
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - node.level + 1])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module
            names.append(module)
            # `from pkg import submodule` imports the submodule too
            names += [f"{module}.{alias.name}" for alias in node.names
                      if module.split(".")[0] == "workflow_lib"
                      and _module_file(f"{module}.{alias.name}")]
    return names


@cache
def third_party_imports(path: Path) -> frozenset[str]:
    """Top-level third-party packages reachable from ``path`` through `workflow_lib` imports."""
    found: set[str] = set()
    seen: set[Path] = set()
    todo = [path]
    while todo:
        current = todo.pop()
        if current in seen:
            continue
        seen.add(current)
        for module in _imports(current):
            top = module.split(".")[0]
            if top in LOCAL_PACKAGES:
                parts = module.split(".")
                # importing a.b.c runs a/__init__, a/b/__init__ and a/b/c
                for i in range(1, len(parts) + 1):
                    f = _module_file(".".join(parts[:i]))
                    if f:
                        todo.append(f)
            elif top not in sys.stdlib_module_names and top != "snakemake":
                found.add(top)
    return frozenset(found)


@cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()


def accepted_names(import_name: str) -> set[str]:
    names = {_norm(import_name)} | {_norm(n) for n in ALIASES.get(import_name, ())}
    names |= {_norm(d) for d in _distributions().get(import_name, ())}
    return names


def test_there_are_env_files_and_job_rules():
    assert ENV_FILES, "no envs/*.yaml"
    assert job_rules(), "no job rules found in rules/*.smk"


@pytest.mark.parametrize("env_file", ENV_FILES, ids=lambda p: p.name)
def test_env_file_parses_and_pins(env_file):
    env = yaml.safe_load(env_file.read_text())
    assert isinstance(env, dict), f"{env_file.name}: not a YAML mapping"
    assert set(env) <= {"name", "channels", "dependencies", "variables"}, (
        f"{env_file.name}: unexpected keys {sorted(set(env) - {'name', 'channels', 'dependencies', 'variables'})}"
    )
    assert "conda-forge" in env.get("channels", []), f"{env_file.name}: conda-forge is not a channel"
    assert "defaults" not in env.get("channels", []), (
        f"{env_file.name}: the anaconda 'defaults' channel mixes badly with conda-forge"
    )
    packages = env_packages(env)
    assert "python" in packages, f"{env_file.name}: no python (Snakemake's script directive needs it)"
    unpinned = [name for name, version in packages.items() if name != "pip" and not version]
    assert not unpinned, f"{env_file.name}: no version constraint for {unpinned}"
    pip_entries = [d for d in env["dependencies"] if isinstance(d, dict)]
    if pip_entries:
        assert "pip" in packages, f"{env_file.name}: has a pip: section but does not list pip"


def test_every_job_rule_names_an_existing_env():
    problems = []
    for rule in job_rules():
        if rule["conda"] is None:
            problems.append(f"rule {rule['name']} ({rule['file'].name}) has no conda: directive")
        elif not rule["conda"].is_file():
            problems.append(f"rule {rule['name']}: conda env {rule['conda']} does not exist")
    assert not problems, "\n".join(problems)


def test_every_env_is_used():
    used = {r["conda"] for r in job_rules()}
    unused = [p.name for p in ENV_FILES if p.resolve() not in used]
    assert not unused, f"env files no rule names: {unused}"


@pytest.mark.parametrize("rule", [r for r in job_rules() if r["script"]], ids=lambda r: r["name"])
def test_env_lists_every_import_of_the_rule(rule):
    assert rule["script"].is_file(), f"rule {rule['name']}: script {rule['script']} is missing"
    if rule["conda"] is None or not rule["conda"].is_file():
        pytest.skip(f"rule {rule['name']} has no env file (see test_every_job_rule_names_an_existing_env)")
    listed = set(env_packages(yaml.safe_load(rule["conda"].read_text())))
    missing = sorted(
        name for name in third_party_imports(rule["script"]) if not accepted_names(name) & listed
    )
    assert not missing, (
        f"rule {rule['name']}: {rule['script'].relative_to(REPO)} (with the workflow_lib modules it "
        f"imports) needs {missing}, which {rule['conda'].relative_to(REPO)} does not list"
    )


def test_import_tracing_follows_workflow_lib():
    """The tracer itself: convert.py reaches tifffile/h5py through workflow_lib.io."""
    script = REPO / "scripts" / "convert.py"
    if not script.is_file():
        pytest.skip("scripts/convert.py (prepare stage) is missing")
    found = third_party_imports(script)
    assert {"numpy", "h5py", "tifffile"} <= found, found
