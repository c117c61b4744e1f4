import _workflow_path  # noqa: F401

from workflow_lib.prepare.convert import convert_image
from workflow_lib.runner import run_script


def main():
    p = snakemake.params  # noqa: F821
    convert_image(
        snakemake.input[0],  # noqa: F821
        snakemake.output[0],  # noqa: F821
        ndim=p.ndim,
        channels=p.channels,
        axes=p.axes,
        h5_dataset=p.h5_dataset,
        normalize_percentiles=(p.normalize["lower"], p.normalize["upper"]),
        rescale=p.rescale,
    )


run_script(snakemake, main)  # noqa: F821
