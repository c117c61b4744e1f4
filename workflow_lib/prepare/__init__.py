"""Prepare stage: real images -> normalised HDF5 (convert) -> train/val/test lists (index)."""
