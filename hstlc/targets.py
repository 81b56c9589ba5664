"""Target names normalised for grouping observations of one object.

HST observers type TARGNAME by hand, so one star turns up as ``GJ-436``,
``GJ436``, ``GL-436`` or ``ROSS-905``.  :func:`normalize_targname` maps such
variants to one canonical name, deterministically and without any network look-up.

The canonical form is a *compact key*: upper case, with whitespace, ``-``, ``_``
and ``.`` removed (``GJ-436`` -> ``GJ436``, ``WD-0308-565`` -> ``WD0308565``).
``+`` is kept, so that ``J1234+5678`` and ``J1234-5678`` (north and south of the
equator) stay apart.  A name made only of removed characters is returned
upper-cased and stripped instead of empty.  Then the Gliese rule (``GL`` or
``GLIESE`` followed by a digit becomes ``GJ``: ``GL436`` -> ``GJ436``), and last
the alias table shipped as package data (``hstlc/data/target_aliases.csv``),
which maps true synonyms from catalogue cross-identifications
(``V645-CEN`` -> ``PROXIMACEN``).  The result is idempotent:
``normalize_targname(normalize_targname(x)) == normalize_targname(x)``.

Examples
--------
>>> normalize_targname("GJ-436"), normalize_targname("gliese 436"), normalize_targname("ROSS-905")
('GJ436', 'GJ436', 'GJ436')
>>> normalize_targname("V645-CEN")
'PROXIMACEN'
>>> normalize_targname("SWIFTJ1357.2-0933")
'SWIFTJ135720933'
"""

from __future__ import annotations

import csv
import functools
import io
import logging
import re
from collections.abc import Mapping
from importlib import resources
from types import MappingProxyType

logger = logging.getLogger(__name__)

__all__ = ["load_aliases", "normalize_targname", "targname_key"]

ALIAS_RESOURCE = "target_aliases.csv"
_REMOVED = frozenset("-_.")
_GLIESE = re.compile(r"^(?:GLIESE|GL)(?=\d)")


def targname_key(name: str) -> str:
    """The generic rule alone: the compact key of a name, before the alias table.

    Upper case, whitespace and ``-``, ``_``, ``.`` removed (``+`` kept); ``GL``/
    ``GLIESE`` + digit -> ``GJ``.  A name made only of removed characters gives
    the name stripped and upper-cased.

    Examples
    --------
    >>> targname_key(" au-mic "), targname_key("GL 876"), targname_key("BD+28-4211")
    ('AUMIC', 'GJ876', 'BD+284211')
    """
    upper = name.strip().upper()
    compact = "".join(ch for ch in upper if not (ch.isspace() or ch in _REMOVED))
    if not compact:
        return upper
    return _GLIESE.sub("GJ", compact)


def _parse_aliases(text: str, source: str) -> dict[str, str]:
    """alias key -> canonical key from CSV text (``#`` lines are comments)."""
    lines = [line for line in text.splitlines()
             if line.strip() and not line.lstrip().startswith("#")]
    aliases: dict[str, str] = {}
    for number, row in enumerate(csv.DictReader(io.StringIO("\n".join(lines))), start=2):
        alias, canonical = (row.get("alias") or "").strip(), (row.get("canonical") or "").strip()
        if not alias or not canonical:
            raise ValueError(f"{source}: data row {number - 1} needs alias and canonical: {row}")
        if targname_key(canonical) != canonical:
            raise ValueError(f"{source}: canonical {canonical!r} is not in compact form "
                             f"({targname_key(canonical)!r})")
        key = targname_key(alias)
        if aliases.get(key, canonical) != canonical:
            raise ValueError(f"{source}: alias {alias!r} maps to both {aliases[key]!r} "
                             f"and {canonical!r}")
        if key != canonical:
            aliases[key] = canonical
    chained = sorted(c for c in set(aliases.values()) if c in aliases)
    if chained:
        raise ValueError(f"{source}: canonical names that are also aliases: {chained}")
    return aliases


@functools.cache
def load_aliases() -> Mapping[str, str]:
    """The shipped alias table: compact alias key -> canonical name (read-only, cached)."""
    text = resources.files("hstlc").joinpath("data", ALIAS_RESOURCE).read_text(encoding="utf-8")
    aliases = _parse_aliases(text, ALIAS_RESOURCE)
    logger.debug("loaded %d target aliases", len(aliases))
    return MappingProxyType(aliases)


def normalize_targname(name: str) -> str:
    """The canonical target name used to group observations of one object.

    Parameters
    ----------
    name : str
        TARGNAME as written in the header.

    Returns
    -------
    str
        :func:`targname_key` of the name, replaced by its canonical name when the
        alias table lists it.  Idempotent and deterministic.
    """
    key = targname_key(name)
    return load_aliases().get(key, key)
