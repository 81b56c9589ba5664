"""The installed version of hstlc (written into every product it makes)."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("hstlc")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+unknown"
