"""Calibration: measure the user's real images, and turn the measurements into simulation and
sketch parameters (:mod:`.measure`, :mod:`.apply`; figures in :mod:`.figures`)."""

from workflow_lib.calibrate.apply import simulation_params, sketch_params
from workflow_lib.calibrate.measure import MeasureSettings, find_nuclei, measure_nuclei

__all__ = ["MeasureSettings", "find_nuclei", "measure_nuclei", "simulation_params", "sketch_params"]
