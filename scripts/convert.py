"""Rule convert_image: see workflow_lib.workflow.stages.convert_image."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow import stages
from workflow_lib.workflow.runner import run_script

run_script(snakemake, stages.convert_image)  # noqa: F821
