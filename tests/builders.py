"""Synthetic input files for the tests.

The builders are part of hstlc (:mod:`hstlc.testing`), so that the demo can make a
realistic sample on a machine without real data; tests import them as ``builders``.
"""

import sys

import hstlc.testing

sys.modules[__name__] = hstlc.testing
