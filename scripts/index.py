import _workflow_path  # noqa: F401

import logging

from workflow_lib.pipeline import SPLITS
from workflow_lib.prepare.index import write_index
from workflow_lib.runner import run_script


def main():
    split = snakemake.params.split  # noqa: F821
    result = write_index(
        list(snakemake.input),  # noqa: F821
        dict(zip(SPLITS, snakemake.output)),  # noqa: F821
        val=split["val"],
        test=split["test"],
        seed=split["seed"],
    )
    for name, images in result.items():
        logging.info("%s: %d images %s", name, len(images), images)


run_script(snakemake, main)  # noqa: F821
