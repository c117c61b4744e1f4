"""Rule demo_data: see workflow_lib.workflow.stages.prepare.demo_data."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import prepare
from workflow_lib.workflow.runner import run_script

run_script(snakemake, prepare.demo_data)  # noqa: F821
