"""Rule simulate_chunk: see workflow_lib.workflow.stages.simulation.simulate_chunk."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import simulation
from workflow_lib.workflow.runner import run_script

run_script(snakemake, simulation.simulate_chunk)  # noqa: F821
