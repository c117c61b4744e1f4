"""Put the repository root on sys.path so scripts import `workflow_lib` without an install.

Snakemake adds only a script's own folder to the path (also under `--sdm conda`), so every
script imports this module first.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
