"""Denoising diffusion model: noise schedule, U-Net, samplers, tiled SDEdit synthesis, training.

The schedule and samplers are independent of the network (as diffusers separates schedulers
from models); everything here works on torch tensors or numpy arrays, without Snakemake.
"""
