"""Rule train_model: see workflow_lib.workflow.stages.diffusion.train_model."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import diffusion
from workflow_lib.workflow.runner import run_script

run_script(snakemake, diffusion.train_model)  # noqa: F821
