"""Rule demo3d_data: see workflow_lib.workflow.stages.prepare.demo3d_data."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import prepare
from workflow_lib.workflow.runner import run_script

run_script(snakemake, prepare.demo3d_data)  # noqa: F821
