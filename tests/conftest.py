"""Shared fixtures. Shared code (the Snakemake runner, toy data, configs) is in tests/helpers."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from helpers import build_pipeline, copy_workdir


@pytest.fixture
def one_torch_thread():
    """Tiny tensors run faster on one thread than on OpenMP threads fighting for 2 busy cores."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def built_pipeline(tmp_path_factory) -> tuple[Path, dict]:
    """Workdir with :func:`helpers.two_dataset_config` built through every stage (a: every
    stage, b: a model only), and its config. Built once per session: do not change either; work
    on :func:`pipeline_copy`."""
    root = tmp_path_factory.mktemp("built")
    return root, build_pipeline(root)


@pytest.fixture
def pipeline_copy(built_pipeline, tmp_path) -> tuple[Path, dict]:
    """A private copy of the built workdir (mtimes and Snakemake's metadata kept) and of its
    config, both free to change."""
    root, config = built_pipeline
    return copy_workdir(root, tmp_path / "w"), copy.deepcopy(config)
