"""hstlc: lightcurves, a catalogue and variability statistics from HST TIME-TAG data.

The package is a plain library (numpy, astropy, SQLAlchemy); the Prefect tasks and
flows that orchestrate it live in the separate ``tasks`` and ``flows`` packages.
"""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hstlc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"

__all__ = ["__version__"]
