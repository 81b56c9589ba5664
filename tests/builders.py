"""Synthetic input files for the tests.

The builders are part of hstlc (:mod:`hstlc.testing.synthetic`), so that the demo can make a
realistic sample on a machine without real data; tests import them as ``builders``.
"""

import sys

from hstlc.testing import synthetic

sys.modules[__name__] = synthetic
