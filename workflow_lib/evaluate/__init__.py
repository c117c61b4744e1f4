"""Evaluation of synthetic data sets: annotation fidelity, realism and downstream segmentation.

Plain functions over numpy arrays and torch tensors, independent of Snakemake and file I/O
(the workflow's stages load the files).
"""
