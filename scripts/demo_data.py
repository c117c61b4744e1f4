import _workflow_path  # noqa: F401

from workflow_lib.prepare.demo import write_demo
from workflow_lib.runner import run_script


def main():
    write_demo(snakemake.output.images, snakemake.output.masks)  # noqa: F821


run_script(snakemake, main)  # noqa: F821
