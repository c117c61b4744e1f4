"""Failure safety of file writes: a process SIGKILLed while writing leaves no complete-looking
output (and an older output stays intact), and every writer in the code goes through the
atomic helpers of workflow_lib.io."""

from __future__ import annotations

import ast
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import pytest
import tifffile

REPO = Path(__file__).resolve().parents[1]

# Each snippet writes TARGET; the harness kills the process at the chosen moment.
WRITERS = {
    "write_tiff": (".tif", "from workflow_lib.io import write_tiff\n"
                   "write_tiff(TARGET, np.ones((1, 512, 512), np.float32) * VALUE, 'CYX')"),
    "write_h5": (".h5", "from workflow_lib.io import write_h5\n"
                 "write_h5(TARGET, {'data/image': np.ones((1, 512, 512), np.float32) * VALUE})"),
    "atomic_write_text": (".csv", "from workflow_lib.io import atomic_write_text\n"
                          "atomic_write_text(TARGET, 'path,shape\\n' + str(VALUE) * 100000)"),
    "torch.save": (".pt", "import torch\nfrom workflow_lib.io import atomic_path\n"
                   "with atomic_path(TARGET) as tmp:\n"
                   "    torch.save({'w': torch.full((512, 512), float(VALUE))}, tmp)"),
}

# Kill points: in the middle of the data (half of the first write() to the temporary file),
# or after all data, just before the rename.
HARNESS = """
import os, signal, sys
import numpy as np
sys.path.insert(0, {repo!r})
TARGET, VALUE, WHEN = {target!r}, {value!r}, {when!r}

def die():
    os.kill(os.getpid(), signal.SIGKILL)

if WHEN == "before_rename":
    os.replace = lambda *a, **k: die()
elif WHEN == "mid_write":
    import io, builtins
    real_open = builtins.open
    def killing_open(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        if ".tmp-" in str(file) and any(m in mode for m in "wa+"):
            real_write = f.write
            def write(data):
                real_write(data[: max(1, len(data) // 2)])
                f.flush()
                die()
            f.write = write
        return f
    builtins.open = killing_open
    io.open = killing_open
{body}
"""


def _run(target: Path, value: int, when: str, body: str) -> int:
    code = HARNESS.format(repo=str(REPO), target=str(target), value=value, when=when, body=body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120).returncode


def _read(path: Path) -> float:
    """A value the file holds, proving it is complete and readable."""
    if path.suffix == ".tif":
        return float(tifffile.imread(path).mean())
    if path.suffix == ".h5":
        with h5py.File(path, "r") as f:
            return float(f["data/image"][()].mean())
    if path.suffix == ".pt":
        import torch

        return float(torch.load(path, weights_only=True)["w"].mean())
    return float(path.read_text().split("\n")[1][0])


# h5py and torch.save write through C code, which Python cannot interrupt mid-write here.
KILLS = [(w, "before_rename") for w in sorted(WRITERS)] + [
    ("write_tiff", "mid_write"), ("atomic_write_text", "mid_write")]


@pytest.mark.parametrize("writer,when", KILLS)
def test_sigkill_while_writing_leaves_no_output(tmp_path, writer, when):
    suffix, body = WRITERS[writer]
    target = tmp_path / f"out{suffix}"
    assert _run(target, 3, when, body) == -signal.SIGKILL
    assert not target.exists(), "a killed write left a complete-looking output"
    assert list(tmp_path.glob(".tmp-*")), "the kill came before anything was written"


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_sigkill_while_rewriting_keeps_the_old_output(tmp_path, writer):
    suffix, body = WRITERS[writer]
    target = tmp_path / f"out{suffix}"
    assert _run(target, 1, "none", body) == 0
    assert _read(target) == 1
    assert _run(target, 2, "before_rename", body) == -signal.SIGKILL
    assert _read(target) == 1, "the old output was damaged by a killed rewrite"


# Calls that write a file by path or open one for writing; SAVE_CALLS only on these modules.
WRITE_CALLS = {"imwrite", "imsave", "savefig", "to_csv", "write_text", "write_bytes"}
SAVE_CALLS = {"save", "savez", "savez_compressed", "savetxt"}
SAVE_MODULES = {"torch", "np", "numpy"}
WRITE_MODES = set("wax+")
# The atomic helpers themselves, and the job's log (a log must show up while the job runs).
EXEMPT = {REPO / "workflow_lib" / "io", REPO / "workflow_lib" / "workflow" / "runner.py"}


def _writes(tree: ast.AST) -> list[ast.Call]:
    calls = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
        owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
        if node.args and (name in WRITE_CALLS or (name in SAVE_CALLS and owner in SAVE_MODULES)):
            calls.append(node)
        elif name in ("open", "File"):  # open(path, "w"), h5py.File(path, "w")
            mode = node.args[1] if len(node.args) > 1 else next(
                (k.value for k in node.keywords if k.arg == "mode"), None)
            if isinstance(mode, ast.Constant) and isinstance(mode.value, str) \
                    and WRITE_MODES & set(mode.value):
                calls.append(node)
    return calls


def _atomic_names(tree: ast.AST) -> dict[int, set[str]]:
    """For each `with atomic_path(...) as name:` body line range, the names it binds."""
    bound: dict[int, set[str]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.With):
            names = {
                item.optional_vars.id for item in node.items
                if isinstance(item.context_expr, ast.Call)
                and "atomic_path" in ast.unparse(item.context_expr.func)
                and isinstance(item.optional_vars, ast.Name)
            }
            if names:
                for line in range(node.body[0].lineno, node.end_lineno + 1):
                    bound.setdefault(line, set()).update(names)
    return bound


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in ast.walk(node) if isinstance(n, ast.Name)}


def _non_atomic_writes(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    bound = _atomic_names(tree)
    problems = []
    for call in _writes(tree):
        names = bound.get(call.lineno, set())
        target = call.args[0] if call.args else None
        used = _names(target) if target is not None else set()
        # fig.savefig(tmp) / torch.save(obj, tmp): the path may be any argument
        used |= {n for a in call.args[1:] for n in _names(a)}
        if not (names & used):
            problems.append(f"{path.relative_to(REPO)}:{call.lineno}: {ast.unparse(call)[:80]}")
    return problems


def test_every_writer_is_atomic():
    """Outputs are written through workflow_lib.io (write_tiff, write_h5, atomic_write_text) or
    inside `with atomic_path(target) as tmp:` onto `tmp`."""
    files = [p for p in [*(REPO / "workflow_lib").rglob("*.py"), *(REPO / "scripts").glob("*.py")]
             if not any(p == e or e in p.parents for e in EXEMPT)]
    problems = [msg for p in files for msg in _non_atomic_writes(p)]
    assert not problems, "writes outside atomic_path:\n" + "\n".join(problems)


def test_the_atomic_check_catches_a_direct_write(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(textwrap.dedent("""
        import tifffile
        from workflow_lib.io import atomic_path
        def ok(path, a):
            with atomic_path(path) as tmp:
                tifffile.imwrite(tmp, a)
        def bad(path, a):
            tifffile.imwrite(path, a)
            with open(path, "w") as f:
                f.write("x")
    """))
    tree = ast.parse(bad.read_text())
    bound = _atomic_names(tree)
    flagged = [c.lineno for c in _writes(tree)
               if not (bound.get(c.lineno, set()) & _names(c.args[0]))]
    assert flagged == [8, 9]
