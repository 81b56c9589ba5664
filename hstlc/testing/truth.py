"""What a builder injected: the truth types a test compares a pipeline's answer with.

Every event written by a builder is labelled with its *component*: :data:`BACKGROUND`,
:data:`SOURCE` (the quiescent, possibly modulated, source) or :data:`FLARE`. The truth
objects record these labels per written row, the rates and geometry used, and the
counts actually drawn, so a test can recompute any expected count with its own selection.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from hstlc.io.x1d import OrderGeometry

BACKGROUND, SOURCE, FLARE = 0, 1, 2
"""Component labels of a written event (``truth.component``)."""


@dataclass(frozen=True)
class Flare:
    """A flare: exactly ``counts`` extra source events between ``start`` and ``start + duration``.

    ``profile`` is ``"boxcar"`` (uniform) or ``"exponential"`` (decay time duration / 5,
    truncated at the end of the window). Times are seconds since EXPSTART.
    """

    start: float
    duration: float
    counts: int
    profile: str = "boxcar"


@dataclass(frozen=True)
class Sinusoid:
    """Source rate modulation ``rate * (1 + amplitude * sin(2 pi t / period + phase))``."""

    period: float
    amplitude: float
    phase: float = 0.0


@dataclass(frozen=True)
class Box:
    """A COS extraction box: centre row ``loc`` and ``height`` in rows.

    Examples
    --------
    >>> Box(425.0, 39).rows
    (405.5, 444.5)
    >>> Box(425.0, 39).legacy_rows
    (406.0, 444.0)
    """

    loc: float
    height: float

    @property
    def rows(self) -> tuple[float, float]:
        """Rows ``[loc - height/2, loc + height/2)``."""
        return (self.loc - self.height / 2, self.loc + self.height / 2)

    @property
    def legacy_rows(self) -> tuple[float, float]:
        """Rows ``[loc - height//2, loc + height//2)`` as the 2016 code used them."""
        return (self.loc - self.height // 2, self.loc + self.height // 2)


@dataclass(frozen=True)
class SegmentTruth:
    """What was injected in one COS segment (FUV) or stripe (NUV).

    ``source_pmf[i]`` is the probability that a source event falls in the active pixel
    column ``xcorr_range[0] + i``; ``sensitivity`` is NET/FLUX on the x1d pixel grid.
    """

    segment: str
    source_rate: float
    background_rate: float
    source_box: Box
    background1: Box
    background2: Box
    xcorr_range: tuple[int, int]
    wave0: float
    dispersion: float
    x1d_offset: int
    source_pmf: np.ndarray = field(repr=False)
    sensitivity: np.ndarray = field(repr=False)
    n_source: int = 0
    n_flare: int = 0
    n_background: int = 0

    def wavelength_at(self, xcorr: np.ndarray | float) -> np.ndarray:
        """WAVELENGTH of an event at ``xcorr``."""
        return self.wave0 + self.dispersion * np.asarray(xcorr, dtype=float)

    def source_fraction(self, wmin: float, wmax: float,
                        exclude: Sequence[tuple[float, float]] = ()) -> float:
        """Expected fraction of source events in ``(wmin, wmax)`` and outside ``exclude``."""
        edges = self.xcorr_range[0] - 0.5 + np.arange(self.source_pmf.size + 1)
        return _fraction_in_wavelength(self.wavelength_at(edges), self.source_pmf, wmin, wmax,
                                       exclude)

    def background_fraction(self, wmin: float, wmax: float,
                            exclude: Sequence[tuple[float, float]] = ()) -> float:
        """Expected fraction of background events (uniform columns) in the wavelength window."""
        lo, hi = self.xcorr_range
        pmf = np.full(hi - lo, 1.0 / (hi - lo))
        edges = lo - 0.5 + np.arange(hi - lo + 1)
        return _fraction_in_wavelength(self.wavelength_at(edges), pmf, wmin, wmax, exclude)


@dataclass(frozen=True)
class CosTruth:
    """Truth of a COS dataset.

    ``component[key]`` holds, per written row of the file ``key`` ('corrtag_a', 'corrtag_b'
    or 'corrtag'), 0 background / 1 source / 2 flare.
    """

    seed: int
    exptime: float
    expstart: float
    gti: np.ndarray
    live_time: float
    flat_flux: float
    sdqflags: int
    flare: Flare | None
    sinusoid: Sinusoid | None
    background_rows: tuple[float, float]
    segments: dict[str, SegmentTruth]
    component: dict[str, np.ndarray] = field(repr=False)

    @property
    def n_flare(self) -> int:
        """Total injected flare events (all segments)."""
        return sum(s.n_flare for s in self.segments.values())


@dataclass(frozen=True)
class OrderTruth:
    """One STIS spectral order as written to the x1d (LOW-RES pixels, 0-based).

    ``geometry`` holds the x1d's A2CENTER, EXTRSIZE, BKnSIZE and BKnOFFST (SHIFTA2 is the
    exposure's, :attr:`StisTruth.shifta2`).
    """

    sporder: int
    geometry: OrderGeometry
    wavelength: np.ndarray
    sensitivity: np.ndarray
    source_pmf: np.ndarray
    source_rate: float
    n_source: int
    n_flare: int


@dataclass(frozen=True)
class StisTruth:
    """Truth of a STIS tag dataset.

    ``component`` (0 background, 1 source, 2 flare) and ``event_order`` (SPORDER of each
    source/flare event, 0 for background) are aligned with the rows of the tag file.
    """

    seed: int
    mode: str
    exptime: float
    expstart: float
    gti: np.ndarray
    live_time: float
    flat_flux: float
    shifta2: float
    background_rate: float
    n_background: int
    orders: dict[int, OrderTruth]
    component: np.ndarray
    event_order: np.ndarray
    flare: Flare | None
    sinusoid: Sinusoid | None
    source_position: tuple[float, float] | None = None

    @property
    def n_flare(self) -> int:
        """Total injected flare events."""
        return int(np.count_nonzero(self.component == FLARE))


def _fraction_in_wavelength(edge_wave: np.ndarray, pmf: np.ndarray, wmin: float, wmax: float,
                            exclude: Sequence[tuple[float, float]]) -> float:
    """Probability mass, piecewise uniform per pixel, in (wmin, wmax) minus ``exclude``."""
    lo, hi = np.minimum(edge_wave[:-1], edge_wave[1:]), np.maximum(edge_wave[:-1], edge_wave[1:])

    def mass(a: float, b: float) -> float:
        overlap = np.clip(np.minimum(hi, b) - np.maximum(lo, a), 0.0, None)
        return float(np.sum(pmf * overlap / (hi - lo)))

    total = mass(wmin, wmax)
    for a, b in exclude:
        total -= mass(max(a, wmin), min(b, wmax)) if min(b, wmax) > max(a, wmin) else 0.0
    return total
