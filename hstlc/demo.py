"""A demo set for a first run: real HST files when present beside the project, else synthetic.

Real files (``../shared/data/real``, or the folder in ``$HSTLC_DEMO_DATA``; set it to
``synthetic`` for the synthetic sample) are *copied* into
``ingest/``: the GJ-436 COS FUV pair with its x1d files and the files that must be
refused.  Without them, hstlc writes a realistic synthetic sample: a COS FUV pair,
a COS NUV dataset, a STIS first-order tag with its x1d, and two bad files.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from hstlc.config import Settings

logger = logging.getLogger(__name__)

DEMO_ENV = "HSTLC_DEMO_DATA"


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


def copy_real(folder: Path, ingest: Path) -> list[Path]:
    """Copy the real demo files into ``ingest`` (originals untouched)."""
    placed = []
    for sub in ("cos_fuv_g130m_gj436", "reject"):
        for source in sorted((folder / sub).iterdir()):
            if source.is_file() and ".fits" in source.name:
                target = ingest / source.name
                shutil.copy2(source, target)
                placed.append(target)
    return placed


def write_synthetic(ingest: Path, *, seed: int = 2016) -> list[Path]:
    """Write the synthetic demo sample into ``ingest``."""
    from hstlc import testing as synthetic

    placed: list[Path] = []
    fuv = synthetic.build_cos_fuv_pair(ingest, rootname="lb1c01d1q", seed=seed,
                                       targname="DEMO-FLARE-STAR",
                                       flare=synthetic.Flare(start=300.0, duration=60.0, counts=4000))
    nuv = synthetic.build_cos_nuv(ingest, rootname="lb1c02d2q", seed=seed + 1, targname="DEMO-NUV-STAR")
    stis = synthetic.build_stis_tag(ingest, rootname="o5d601d3q", seed=seed + 2, mode="first_order",
                                    targname="DEMO-STIS-STAR")
    for result in (fuv, nuv, stis):
        placed.extend(Path(p) for key, p in result.items() if key != "truth" and p is not None)
    placed.append(synthetic.build_bad(ingest, "bad_expflag", rootname="lb1c03d4q"))
    placed.append(synthetic.build_bad(ingest, "short_exposure", rootname="lb1c04d5q"))
    return placed


def prepare_demo(settings: Settings) -> list[Path]:
    """Fill ``ingest/`` with the demo set; return the files placed."""
    ingest = settings.folder("ingest_dir")
    ingest.mkdir(parents=True, exist_ok=True)
    folder = real_data_dir()
    if folder is not None:
        logger.info("demo: real HST files from %s", folder)
        return copy_real(folder, ingest)
    logger.info("demo: no real files found; writing a synthetic sample")
    return write_synthetic(ingest)
