"""cellsynth: synthetic, fully-annotated microscopy data sets with denoising diffusion models.

All logic of the Snakemake workflow lives here, importable and testable without Snakemake.
"""

__version__ = "0.1.0"
