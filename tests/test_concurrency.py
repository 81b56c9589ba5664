"""Runs started at once on one home, and a catalogue database lost in the middle of a run.

The campaign itself (``python -m tests.campaigns.concurrency``) runs here with one pair
per database; docs/RELIABILITY.md has the figures of the full one.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from campaigns import concurrency, kill_processes_of, make_home, start_run

from hstlc.cli import EXIT_BUSY, EXIT_OK
from hstlc.fs import run_lock


@pytest.fixture
def fresh_home(tmp_path: Path):
    home = make_home(tmp_path / "home", seed=11)
    yield home
    kill_processes_of(home)


def test_a_run_on_a_fresh_home_busy_with_another_says_why_on_the_terminal(fresh_home, tmp_path):
    """The other run holds the lock and is creating the catalogue: this one must not
    wait on the database, nor fail silently with "database is locked" in its log."""
    fresh_home.root.mkdir(exist_ok=True)
    creating = sqlite3.connect(fresh_home.root / "hstlc.db")
    creating.execute("BEGIN EXCLUSIVE")
    try:
        with run_lock(fresh_home.root):
            process = start_run(fresh_home, tmp_path / "loser.out")
            code = process.wait(timeout=120)
    finally:
        creating.rollback()
        creating.close()
    lines = (tmp_path / "loser.out").read_text().splitlines()
    busy = [line for line in lines if line.startswith(concurrency.BUSY_LINE)]
    assert code == EXIT_BUSY, lines
    assert len(busy) == 1, lines
    assert str(fresh_home.root) in busy[0] and "run this command again" in busy[0]
    assert sorted(p.name for p in (fresh_home.root / "ingest").iterdir()) == sorted(fresh_home.inputs)


@pytest.mark.slow
def test_two_runs_at_once_on_a_fresh_sqlite_home(fresh_home, tmp_path):
    outcome = concurrency.simultaneous_pair(fresh_home, tmp_path, "pair", "sqlite")
    assert outcome.problems == [], outcome


@pytest.fixture
def pg_home(pg_cluster, tmp_path: Path, request: pytest.FixtureRequest):
    """A home whose catalogue is a fresh PostgreSQL database."""
    name = f"hstlc_{request.node.name[5:40]}"
    home = make_home(tmp_path / "home", seed=12, database_url=pg_cluster.create_database(name))
    yield home
    kill_processes_of(home)


@pytest.mark.slow
@pytest.mark.postgres
def test_two_runs_at_once_on_a_fresh_postgresql_home(pg_home, tmp_path):
    outcome = concurrency.simultaneous_pair(pg_home, tmp_path, "pair", "postgresql")
    assert outcome.problems == [], outcome


@pytest.mark.slow
@pytest.mark.postgres
def test_a_run_recovers_when_postgresql_restarts_mid_run(pg_home, pg_cluster, tmp_path):
    outcome = concurrency.run_across_restart(
        pg_home, tmp_path, lambda: concurrency.restart_postgres(pg_cluster), "restart")
    assert outcome.problems == [], (outcome, (tmp_path / "restart.out").read_text()[-4000:])
    assert outcome.codes == [EXIT_OK] and outcome.retries >= 1


