"""From photon events to lightcurves.

Boxes and accumulation, the compiled kernel, calibration, quality checks,
STIS tag -> corrtag and composite stacking.
"""
