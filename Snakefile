# cellsynth: synthetic, fully-annotated microscopy data sets with denoising diffusion models.
# Stages: demo_data -> convert -> index -> calibrate, train -> simulate -> sketch -> synthesize -> evaluate
from snakemake.utils import min_version

min_version("9.0")


report: "report/workflow.rst"


include: "rules/common.smk"
include: "rules/demo.smk"
include: "rules/prepare.smk"
include: "rules/calibrate.smk"
include: "rules/train.smk"
include: "rules/simulate.smk"
include: "rules/sketch.smk"
include: "rules/synthesize.smk"
include: "rules/evaluate.smk"
include: "rules/export.smk"


rule all:
    default_target: True
    input:
        layout.all_targets(config, image_names()),
