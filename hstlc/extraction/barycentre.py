"""Barycentric times: the ``bjd_tdb`` of each bin.

A lightcurve's ``mjd`` is ``EXPSTART + times / 86400``, and HST's EXPSTART is an MJD in
UTC (the primary header's DATE-OBS/TIME-OBS give the same instant: ``ld9m10ujq`` has
EXPSTART 58108.76458802 and TIME-OBS 18:21:00 UT).  This module turns it into the
Barycentric Julian Date in the TDB scale (BJD_TDB, Eastman et al. 2010):

``bjd_tdb = JD_TDB(mjd) + light travel time (geocentre -> solar-system barycentre) / 86400``

* UTC -> TT is exact for every bin, with the leap seconds of astropy's bundled table
  (``astropy-iers-data``; instants after its expiry draw ERFA's "dubious year" warning,
  so the package is kept current);
* TDB - TT (at the geocentre, periodic, < 2 ms) and the light travel time are smooth: they
  are computed on nodes every :data:`NODE_SPACING` days around the data and interpolated
  linearly (error < 2 microseconds, far below any bin);
* the light travel time is ``r_earth . n / c``: the geocentre's barycentric position from
  astropy's built-in ephemeris (ERFA ``epv00``, consistent with JPL DE405 to ~4
  microseconds) projected on the target direction ``n`` (RA_TARG, DEC_TARG, ICRS).

This is what ``Time.light_travel_time(target, kind="barycentric",
location=<the geocentre>, ephemeris="builtin")`` returns (the tests compare the two), computed
without the method's detour through ITRS: for a location at the geocentre that step rotates
the zero vector, so Earth-orientation data cannot change the result, yet it asks astropy's
IERS tables for polar motion and UT1 (a download when they are stale, a warning or an error
for recent dates) and costs ~0.1 ms per time.  Here no IERS table is read, nothing is
downloaded and no global astropy setting is touched, so the function is safe in threads.

Not included: HST's own orbit around the Earth (up to ~23 ms, 7000 km / c, with the 96-min
orbital period) -- the correction is geocentric; the target's proper motion and parallax;
the Shapiro delay (< 0.1 ms).  These matter for pulse timing, not for the bins of 1 s and
more that hstlc makes.

References
----------
Eastman, J., Siverd, R. & Gaudi, B. S. 2010, PASP 122, 935: "Achieving better than 1 minute
accuracy in the heliocentric and barycentric Julian dates".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import astropy.units as u
import numpy as np
from astropy.constants import c
from astropy.coordinates import get_body_barycentric
from astropy.time import Time

#: Spacing (days) of the nodes on which TDB - TT and the light travel time are computed.
NODE_SPACING = 0.01
_DAY = 86400.0


@dataclass(frozen=True)
class BarycentricTimes:
    """Barycentric times of a set of instants.

    Attributes
    ----------
    bjd_tdb : ndarray
        Barycentric Julian Date, TDB scale (days; float64 resolves ~40 microseconds).
    seconds : ndarray
        ``bjd_tdb - bjd_tdb[0]`` in seconds, computed without the JD's rounding (for
        period searches).
    correction : ndarray
        Light travel time from the geocentre to the barycentre along the target direction
        (s): ``bjd_tdb`` minus the same instant in TDB.
    """

    bjd_tdb: np.ndarray
    seconds: np.ndarray
    correction: np.ndarray


def light_travel_time(mjd_tt: np.ndarray, ra: float, dec: float) -> np.ndarray:
    """Light travel time geocentre -> solar-system barycentre towards (ra, dec), in s.

    Parameters
    ----------
    mjd_tt : array_like
        Instants, MJD in TT (TDB - TT < 2 ms does not matter to the ephemeris).
    ra, dec : float
        ICRS right ascension and declination of the target (deg).

    Returns
    -------
    ndarray
        Seconds to add to the geocentric TDB time to get the barycentric one.
    """
    times = Time(np.asarray(mjd_tt, float), format="mjd", scale="tt")
    earth = get_body_barycentric("earth", times.tdb, ephemeris="builtin")
    ra_rad, dec_rad = np.radians(ra), np.radians(dec)
    direction = np.array([np.cos(dec_rad) * np.cos(ra_rad), np.cos(dec_rad) * np.sin(ra_rad),
                          np.sin(dec_rad)])
    projected = np.tensordot(direction, earth.xyz.to_value(u.m), axes=1)
    return np.asarray(projected / c.to_value(u.m / u.s), float)


def _tdb_minus_tt(mjd_tt: np.ndarray) -> np.ndarray:
    """TDB - TT at the geocentre (s)."""
    times = Time(mjd_tt, format="mjd", scale="tt")
    tdb = times.tdb
    return np.asarray(((tdb.jd1 - times.jd1) + (tdb.jd2 - times.jd2)) * _DAY, float)


def barycentric_times(mjd: np.ndarray, ra: float, dec: float, *,
                      scale: str = "utc") -> BarycentricTimes:
    """BJD_TDB of each instant (see the module docstring for what is and is not included).

    Parameters
    ----------
    mjd : array_like
        Instants, MJD (a lightcurve's ``mjd`` column: bin starts).
    ra, dec : float
        RA_TARG and DEC_TARG (deg, ICRS/J2000).
    scale : str
        Time scale of ``mjd``: ``"utc"`` for HST's EXPSTART-based times.

    Returns
    -------
    BarycentricTimes

    Examples
    --------
    A target in the ecliptic plane, opposite the Sun at the September equinox: the light
    reaches the Earth ~500 s before the barycentre, so the barycentric time is later.

    >>> bary = barycentric_times([59479.0], ra=0.0, dec=0.0)
    >>> 480 < float(bary.correction[0]) < 510
    True
    """
    mjd = np.asarray(mjd, float).reshape(-1)
    if mjd.size == 0:
        empty = np.zeros(0)
        return BarycentricTimes(empty, empty, empty)
    terrestrial = Time(mjd, format="mjd", scale=scale).tt
    mjd_tt = (terrestrial.jd1 - 2400000.5) + terrestrial.jd2
    cells = np.floor(mjd_tt / NODE_SPACING)
    nodes = np.unique(np.concatenate([cells, cells + 1.0])) * NODE_SPACING
    travel = light_travel_time(nodes, ra, dec)
    offset = np.interp(mjd_tt, nodes, _tdb_minus_tt(nodes) + travel)
    correction = np.interp(mjd_tt, nodes, travel)
    elapsed = ((terrestrial.jd1 - terrestrial.jd1[0]) + (terrestrial.jd2 - terrestrial.jd2[0])) * _DAY
    seconds = elapsed + (offset - offset[0])
    bjd = (terrestrial.jd1 + terrestrial.jd2) + offset / _DAY
    return BarycentricTimes(bjd_tdb=bjd, seconds=seconds, correction=correction)


def target_of(meta: dict[str, Any]) -> tuple[float, float] | None:
    """RA_TARG, DEC_TARG (deg) from a lightcurve's metadata; None when absent or not finite."""
    try:
        ra, dec = float(meta["ra_targ"]), float(meta["dec_targ"])
    except (KeyError, TypeError, ValueError):
        return None
    return (ra, dec) if np.isfinite(ra) and np.isfinite(dec) else None


#: 24 April 1990: no HST time is earlier (ERFA warns of leap seconds before 1960).
HST_LAUNCH_MJD = 48005.0


def bjd_column(mjd: np.ndarray, meta: dict[str, Any]) -> np.ndarray | None:
    """The ``bjd_tdb`` column of a lightcurve with these ``mjd`` and metadata: None without
    a target position, or for times before HST was launched (a corrupt EXPSTART)."""
    target = target_of(meta)
    mjd = np.asarray(mjd, float)
    if target is None or mjd.size == 0 or not np.all(mjd >= HST_LAUNCH_MJD):
        return None
    return barycentric_times(mjd, *target).bjd_tdb


__all__ = ["HST_LAUNCH_MJD", "NODE_SPACING", "BarycentricTimes", "barycentric_times", "bjd_column",
           "light_travel_time", "target_of"]
