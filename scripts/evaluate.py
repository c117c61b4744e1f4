"""Rule evaluate_simulation: see workflow_lib.workflow.stages.evaluation.evaluate_simulation."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import evaluation
from workflow_lib.workflow.runner import run_script

run_script(snakemake, evaluation.evaluate_simulation)  # noqa: F821
