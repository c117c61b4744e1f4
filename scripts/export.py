"""Rule export_dataset: see workflow_lib.workflow.stages.export.export_dataset."""

import _workflow_path  # noqa: F401  (puts the repository on sys.path; must be first)

from workflow_lib.workflow.stages import export
from workflow_lib.workflow.runner import run_script

run_script(snakemake, export.export_dataset)  # noqa: F821
