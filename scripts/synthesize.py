"""Rule synthesize_chunk: see workflow_lib.workflow.stages.diffusion.synthesize_chunk."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import diffusion
from workflow_lib.workflow.runner import run_script

run_script(snakemake, diffusion.synthesize_chunk)  # noqa: F821
