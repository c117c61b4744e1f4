"""Sketches: from instance labels to a coarse image in [-1, 1] that the diffusion model refines.

:mod:`.render` makes the sketch (exactly what a sketch is is documented there and in
docs/simulation.md), :mod:`.targets` the per-pixel segmentation targets of the annotation
HDF5, :mod:`.preview` the report's PNG.
"""

from workflow_lib.sketch.render import (
    MODES,
    SketchParams,
    annotations,
    intensity,
    make_sketch,
    relative_depth,
    to_image,
)

__all__ = ["MODES", "SketchParams", "annotations", "intensity", "make_sketch", "relative_depth", "to_image"]
