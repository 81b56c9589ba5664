"""A demo set for a first run: real HST files when present beside the project, else synthetic.

Real files (``../shared/data/real``, or the folder in ``$HSTLC_DEMO_DATA``; set it to
``synthetic`` for the synthetic sample) are *copied* into
``ingest/``: the GJ-436 COS FUV pair with its x1d files and the files that must be
refused.  Without them, hstlc writes a realistic synthetic sample: a COS FUV pair,
a COS NUV dataset, a STIS first-order tag with its x1d, and two bad files.

The demo places each file once: one already in ``ingest/``, filed under ``filesystem/``
or ``bad_data/``, or known to the catalogue (ingested or refused) is left out.
"""

from __future__ import annotations

import glob
import itertools
import logging
import os
import re
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from hstlc.config import Settings
from hstlc.fs import Layout, move_file
from hstlc.ingest.dataset import PipelineConfig
from hstlc.ingest.plan import unseen

logger = logging.getLogger(__name__)

DEMO_ENV = "HSTLC_DEMO_DATA"
#: What :func:`hstlc.fs.refused_destination` adds to a refused file's name when that name
#: is taken in ``bad_data/``: a dot and 8 (or 64) hex digits of its sha256.
_REFUSED_COPY_SUFFIX = re.compile(r"\.(?:[0-9a-f]{8}|[0-9a-f]{64})")


@dataclass(frozen=True)
class DemoPlacement:
    """What :func:`prepare_demo` did: the files it placed in ``ingest/``, and the names of
    the demo files it left out because they are already there or catalogued."""

    placed: tuple[Path, ...]
    present: tuple[str, ...]


def real_data_dir() -> Path | None:
    """The folder of real files, if there is one."""
    explicit = os.environ.get(DEMO_ENV)
    if explicit:  # a folder, or "synthetic" to force the synthetic sample
        candidates = [Path(explicit)]
    else:
        candidates = [Path.cwd().parent / "shared" / "data" / "real",
                      Path(__file__).resolve().parents[2] / "shared" / "data" / "real"]
    for folder in candidates:
        if (folder / "cos_fuv_g130m_gj436").is_dir():
            return folder
    return None


def real_files(folder: Path) -> list[Path]:
    """The real demo files in ``folder``: the GJ-436 COS FUV pair with its x1d files, and
    files that must be refused."""
    return [source for sub in ("cos_fuv_g130m_gj436", "reject")
            for source in sorted((folder / sub).iterdir())
            if source.is_file() and ".fits" in source.name]


def copy_real(sources: Iterable[Path], folder: Path) -> list[Path]:
    """Copy real files into ``folder`` (originals untouched); return the copies."""
    return [Path(shutil.copy2(source, folder / source.name)) for source in sources]


def write_synthetic(folder: Path, *, seed: int = 2016) -> list[Path]:
    """Write the synthetic demo sample into ``folder``."""
    from hstlc import testing as synthetic

    placed: list[Path] = []
    fuv = synthetic.build_cos_fuv_pair(folder, rootname="lb1c01d1q", seed=seed,
                                       targname="DEMO-FLARE-STAR",
                                       flare=synthetic.Flare(start=300.0, duration=60.0, counts=4000))
    nuv = synthetic.build_cos_nuv(folder, rootname="lb1c02d2q", seed=seed + 1, targname="DEMO-NUV-STAR")
    stis = synthetic.build_stis_tag(folder, rootname="o5d601d3q", seed=seed + 2, mode="first_order",
                                    targname="DEMO-STIS-STAR")
    for result in (fuv, nuv, stis):
        placed.extend(Path(p) for key, p in result.items() if key != "truth" and p is not None)
    placed.append(synthetic.build_bad(folder, "bad_expflag", rootname="lb1c03d4q"))
    placed.append(synthetic.build_bad(folder, "short_exposure", rootname="lb1c04d5q"))
    return placed


def _filed(layout: Layout, name: str) -> bool:
    """True when a file called ``name`` is in ``ingest/``, in a target folder of
    ``filesystem/``, or in ``bad_data/`` (under its name or a content-named one)."""
    if os.path.lexists(layout.ingest / name):
        return True
    pattern = glob.escape(name)
    found = itertools.chain(layout.filesystem.glob(f"*/{pattern}"), layout.bad_data.glob(f"{pattern}*"))
    return any(path.name == name or _REFUSED_COPY_SUFFIX.fullmatch(path.name[len(name):])
               for path in found)


def already_there(settings: Settings, names: Iterable[str]) -> set[str]:
    """The ``names`` that are in ``ingest/``, filed in ``filesystem/`` or ``bad_data/``, or
    known to the catalogue (ingested or refused): demo files not to place again."""
    config = PipelineConfig.from_settings(settings)
    names = set(names)
    known = names - unseen(config, names)
    return known | {name for name in names - known if _filed(config.layout, name)}


def prepare_demo(settings: Settings) -> DemoPlacement:
    """Fill ``ingest/`` with the demo files that are neither there nor catalogued.

    Files are copied or written in a hidden folder inside ``ingest/`` (which discovery
    ignores), then renamed into place, never over a file: a run never sees half a file.
    """
    ingest = settings.folder("ingest_dir")
    ingest.mkdir(parents=True, exist_ok=True)
    folder = real_data_dir()
    with tempfile.TemporaryDirectory(prefix=".demo-", dir=ingest) as staging:
        if folder is not None:
            logger.info("demo: real HST files from %s", folder)
            sources = real_files(folder)
            present = already_there(settings, (source.name for source in sources))
            made = copy_real((s for s in sources if s.name not in present), Path(staging))
        else:
            logger.info("demo: no real files found; writing a synthetic sample")
            made = write_synthetic(Path(staging))
            present = already_there(settings, (path.name for path in made))
        placed = [move_file(path, ingest / path.name) for path in made if path.name not in present]
    logger.info("demo: %d files placed in %s, %d already there or catalogued",
                len(placed), ingest, len(present))
    return DemoPlacement(tuple(placed), tuple(sorted(present)))
