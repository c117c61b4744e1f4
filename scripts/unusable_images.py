"""Rule unusable_images: see workflow_lib.workflow.stages.prepare.unusable_images."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import prepare
from workflow_lib.workflow.runner import run_script

run_script(snakemake, prepare.unusable_images)  # noqa: F821
