"""The one place that puts the repository on sys.path, so scripts import `workflow_lib` without
an install.

Snakemake adds only a script's own folder to the path of a job (and blocks PYTHONPATH under
`--sdm conda`), so every script imports this module first. The Snakefile itself needs no help:
Snakemake puts the folder of every included Snakefile on the path.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
