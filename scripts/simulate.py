"""Rule simulate_sample: see workflow_lib.workflow.stages.simulate_sample."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow import stages
from workflow_lib.workflow.runner import run_script

run_script(snakemake, stages.simulate_sample)  # noqa: F821
