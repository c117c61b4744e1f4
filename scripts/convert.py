"""Rule convert_image: see workflow_lib.workflow.stages.prepare.convert_image."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import prepare
from workflow_lib.workflow.runner import run_script

run_script(snakemake, prepare.convert_image)  # noqa: F821
