"""index: deterministic, seeded split with relative paths that survive moving the results."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from workflow_lib.io import write_h5
from workflow_lib.dataset import read_index, split_names, write_index


@given(
    n=st.integers(1, 60),
    val=st.floats(0, 0.49),
    test=st.floats(0, 0.49),
    seed=st.integers(0, 10),
)
def test_split_is_a_partition_with_training_data(n, val, test, seed):
    names = [f"img{i:03d}" for i in range(n)]
    split = split_names(names, val, test, seed)
    together = split["train"] + split["val"] + split["test"]
    assert sorted(together) == names
    assert len(split["train"]) >= 1
    assert split == split_names(list(reversed(names)), val, test, seed)


def test_split_proportions_and_seed():
    names = [f"n{i}" for i in range(100)]
    a = split_names(names, 0.1, 0.2, seed=0)
    assert (len(a["train"]), len(a["val"]), len(a["test"])) == (70, 10, 20)
    assert a != split_names(names, 0.1, 0.2, seed=1)


def test_single_image_goes_to_train():
    assert split_names(["only"], 0.5, 0.4, 0) == {"train": ["only"], "val": [], "test": []}


def test_csv_paths_survive_a_move(tmp_path):
    results = tmp_path / "results" / "ds"
    h5s = []
    for i in range(5):
        p = results / "h5" / f"im{i}.h5"
        write_h5(p, {"data/image": np.zeros((1, 8, 9), np.float32)}, {"axes": "CYX"})
        h5s.append(str(p))
    outputs = {s: results / "index" / f"{s}.csv" for s in ("train", "val", "test")}
    split = write_index(h5s, outputs, val=0.2, test=0.2, seed=3)
    rows = read_index(outputs["train"])
    assert [r["name"] for r in rows] == split["train"]
    assert rows[0]["shape"] == "1x8x9" and rows[0]["axes"] == "CYX"
    assert outputs["train"].read_text().startswith("path,name,shape,axes,source\n")
    shutil.move(tmp_path / "results", tmp_path / "moved")
    moved = read_index(tmp_path / "moved" / "ds" / "index" / "val.csv")
    from pathlib import Path

    assert all(Path(r["path"]).is_file() for r in moved) and len(moved) == 1


def test_read_index_errors(tmp_path):
    from workflow_lib.errors import InputError

    with pytest.raises(InputError, match="index file not found"):
        read_index(tmp_path / "nope.csv")
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(InputError, match="no 'path' column"):
        read_index(tmp_path / "bad.csv")
