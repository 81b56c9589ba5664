"""hstlc: lightcurves, a catalogue and variability statistics from HST TIME-TAG data.

The package is a plain library (numpy, astropy, SQLAlchemy); the Prefect tasks and
flows that orchestrate it live in the separate ``tasks`` and ``flows`` packages.
``docs/ARCHITECTURE.md`` maps its parts: :mod:`hstlc.io` (reading and writing
products), :mod:`hstlc.extraction` (events to lightcurves and composites),
:mod:`hstlc.catalogue` (the database), :mod:`hstlc.ingest` (the per-dataset steps),
:mod:`hstlc.plots` and :mod:`hstlc.testing` (synthetic files).

The entry points an astronomer needs are importable from here::

    >>> from hstlc import extract_lightcurve, read_lightcurve   # doctest: +SKIP
    >>> lc = extract_lightcurve("ld9m10ujq_corrtag_a.fits", step=1.0)  # doctest: +SKIP

They are imported on first use (PEP 562), so that importing a light module such as
:mod:`hstlc.errors`, or running ``hstlc --help``, does not load astropy and numba.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from hstlc._version import __version__

if TYPE_CHECKING:
    from hstlc.config import Settings
    from hstlc.extraction.composite import make_composite
    from hstlc.extraction.extract import extract_lightcurve
    from hstlc.io.lightcurve_file import Lightcurve, read_lightcurve

#: Public name -> the module that defines it.
_ENTRY_POINTS = {
    "Lightcurve": "hstlc.io.lightcurve_file",
    "Settings": "hstlc.config",
    "extract_lightcurve": "hstlc.extraction.extract",
    "make_composite": "hstlc.extraction.composite",
    "read_lightcurve": "hstlc.io.lightcurve_file",
}

__all__ = ["Lightcurve", "Settings", "__version__", "extract_lightcurve", "make_composite",
           "read_lightcurve"]


def __getattr__(name: str) -> Any:
    module = _ENTRY_POINTS.get(name)
    if module is None:
        raise AttributeError(f"module 'hstlc' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
