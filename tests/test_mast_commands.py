"""``hstlc download`` as an operator runs it (a child process, as from a terminal), against
the stand-in MAST: the token appears nowhere in what a run writes; MAST unreachable is
one line."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mast_standin import ArchiveDataset, Fault, MastStandIn, synthetic_datasets

BIN = Path(sys.executable).parent
TOKEN = "tok-4f3a9c1e-SECRET-b7d2"


def hstlc(home: Path, *args: str, **extra: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HSTLC_", "PREFECT_"))}
    env.update(HSTLC_HOME_DIR=str(home), HSTLC_DOWNLOAD_BACKOFF_S="0.01", MPLBACKEND="Agg",
               PYTHONUNBUFFERED="1", **extra)
    return subprocess.run([str(BIN / args[0]), *args[1:]], env=env, cwd=home.parent,
                          capture_output=True, text=True, timeout=300)


def test_the_token_appears_nowhere_in_what_a_run_writes(tmp_path):
    archive = synthetic_datasets(tmp_path / "archive", 2)
    secret = ArchiveDataset("LEXCLUS1Q", "SECRET-STAR", archive[1].files, exclusive=True)
    home = tmp_path / "home"
    with MastStandIn([archive[0], secret], token=TOKEN) as mast:
        mast.inject(archive[0].files[0].name, Fault.status_code(503, retry_after=0), Fault.cut(20_000))
        mast.inject(archive[1].files[1].name, Fault.status_code(404))
        run = hstlc(home, "hstlc", "download", "--json", HSTLC_MAST_URL=mast.url,
                    HSTLC_MAST_TOKEN=TOKEN)
        shown = hstlc(home, "hstlc", "config", "show", HSTLC_MAST_TOKEN=TOKEN)
        carried = [r.headers.get("Cookie") for r in mast.downloads(archive[1].files[0].name)]
    output = run.stdout + run.stderr
    assert run.returncode == 1, output  # the 404 is a failed file
    assert "FAILED   lbs0001qq_x1d.fits: HTTP 404" in output and "Traceback" not in output
    assert (home / "ingest" / archive[0].files[0].name).is_file()
    assert (home / "ingest" / archive[1].files[0].name).is_file()  # exclusive, with the token
    assert carried == [f"mast_token={TOKEN}"]  # the token was used ...
    with sqlite3.connect(home / "hstlc.db") as db:
        rows = db.execute("SELECT filename, status, http_status, attempts, reason FROM download "
                          "ORDER BY filename").fetchall()
    assert [row[:4] for row in rows] == [("lbs0000qq_corrtag.fits", "fetched", 206, 3),  # resumed
                                         ("lbs0000qq_x1d.fits", "fetched", 200, 1),
                                         ("lbs0001qq_corrtag.fits", "fetched", 200, 1),
                                         ("lbs0001qq_x1d.fits", "failed", 404, 1)]  # once
    assert rows[3][4].startswith("HTTP 404")
    assert '"mast_token": "***"' in shown.stdout
    written = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix == ".log" for p in written) and any(p.name.startswith("manifest-") for p in written)
    assert any(p.suffix == ".db" for p in written)  # the catalogue and Prefect's database
    leaks = [str(p) for p in written if TOKEN.encode() in p.read_bytes()]
    assert leaks == [], leaks  # ... and is in no file of the run
    assert TOKEN not in output + shown.stdout + shown.stderr


def test_mast_unreachable_is_one_line_and_nothing_starts(tmp_path):
    with MastStandIn([]) as gone:
        closed = gone.url
    home = tmp_path / "home"
    result = hstlc(home, "download_hstlc", "--limit", "3", HSTLC_MAST_URL=closed,
                   HSTLC_DOWNLOAD_RETRIES="2")
    lines = [line for line in result.stderr.splitlines() if line.startswith("hstlc: ")]
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert len(lines) == 1 and closed in lines[0] and "did not answer" in lines[0], result.stderr
    assert lines[0] in "\n".join(p.read_text() for p in (home / "logs").glob("*.log"))
    assert not (home / "prefect").exists() and not (home / "ingest").exists()
    manifest = json.loads(next((home / "download").glob("manifest-*.json")).read_text())
    assert f"hstlc: {manifest['error']}" == lines[0] and manifest["fetched"] == {}


@pytest.mark.parametrize("args, words", [(["--limit", "0"], "--limit"),
                                         (["--since", "last week"], "--since"),
                                         (["--instrument", "ACS"], "--instrument")])
def test_invalid_download_options_are_refused(tmp_path, args, words, capsys):
    from hstlc.cli import main

    with pytest.raises(SystemExit) as stopped:
        main(["download", *args])
    assert stopped.value.code == 2 and words in capsys.readouterr().err
