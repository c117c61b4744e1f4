"""Calibration: measure the user's real images, and turn the measurements into simulation and
sketch parameters (:mod:`.measure` for nuclei, :mod:`.membranes` for membrane stains,
:mod:`.apply`; figures in :mod:`.figures`)."""

from workflow_lib.calibrate.apply import simulation_params, sketch_params
from workflow_lib.calibrate.measure import MeasureSettings, find_nuclei, measure_nuclei
from workflow_lib.calibrate.membranes import find_cells, measure_membranes

__all__ = ["MeasureSettings", "find_cells", "find_nuclei", "measure_membranes", "measure_nuclei",
           "simulation_params", "sketch_params"]
