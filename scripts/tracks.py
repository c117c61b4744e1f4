"""Rule export_tracks: Cell Tracking Challenge res_track.txt from a time series' metadata."""

import _workflow_path  # noqa: F401  (puts repo root on sys.path; must be first)

import json

import numpy as np

from workflow_lib.io import atomic_write_text
from workflow_lib.runner import run_script
from workflow_lib.simulate import track_text


def main():
    meta = json.loads(open(snakemake.input[0], encoding="utf-8").read())  # noqa: F821
    tracks = np.asarray(meta["tracks"] or [], dtype=np.int64).reshape(-1, 4)
    atomic_write_text(snakemake.output[0], track_text(tracks))  # noqa: F821


run_script(snakemake, main)  # noqa: F821
