"""Calibration: measure the user's real images, and turn the measurements into simulation and
sketch parameters (:mod:`.measure` for nuclei, :mod:`.membranes` for membrane stains,
:mod:`.apply`; figures in :mod:`.figures`)."""

from workflow_lib.calibrate.apply import (
    FEW_OBJECTS, OBJECT_NAME, OTHER_STAINS, calibrated_stain, simulation_params, sketch_params,
    stain_calibrations, with_other_stains,
)
from workflow_lib.calibrate.measure import MeasureSettings, find_nuclei, measure_nuclei
from workflow_lib.calibrate.membranes import find_cells, measure_membranes
from workflow_lib.simulate import MEMBRANE_STAIN, NUCLEUS_STAIN

#: Per stain: (measure(images, masks, settings) -> calibration, find(image, settings) -> labels).
MEASUREMENTS = {
    NUCLEUS_STAIN: (measure_nuclei, find_nuclei),
    MEMBRANE_STAIN: (measure_membranes, find_cells),
}

__all__ = ["FEW_OBJECTS", "MEASUREMENTS", "OBJECT_NAME", "OTHER_STAINS", "MeasureSettings",
           "calibrated_stain", "find_cells", "find_nuclei", "measure_membranes", "measure_nuclei",
           "simulation_params", "sketch_params", "stain_calibrations", "with_other_stains"]
