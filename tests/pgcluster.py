"""A throwaway PostgreSQL cluster for the tests (initdb + pg_ctl, loopback, free port).

PostgreSQL refuses to run as root, so under root the cluster belongs to an
unprivileged account (``nobody`` by default, ``HSTLC_TEST_PG_USER`` to change it) and
its commands run through ``runuser``/``su``.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path


def find_pg_bin() -> Path | None:
    """The folder holding ``initdb`` and ``pg_ctl``, or ``None``."""
    initdb = shutil.which("initdb")
    if initdb and shutil.which("pg_ctl"):
        return Path(initdb).resolve().parent
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), reverse=True):
        if Path(candidate, "initdb").exists() and Path(candidate, "pg_ctl").exists():
            return Path(candidate)
    return None


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class PostgresCluster:
    bindir: Path
    root: Path
    port: int
    owner: str | None  # the account running the server when we are root
    durable: bool = False  # fsync on (benchmarks); the tests' clusters run with fsync off

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql+psycopg2://postgres@127.0.0.1:{self.port}/{database}"

    def _run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        command = [str(self.bindir / argv[0]), *argv[1:]]
        if self.owner is not None:
            if shutil.which("runuser"):
                command = ["runuser", "-u", self.owner, "--", *command]
            else:
                quoted = " ".join(subprocess.list2cmdline([part]) for part in command)
                command = ["su", "-s", "/bin/sh", self.owner, "-c", quoted]
        return subprocess.run(command, capture_output=True, text=True, check=check, timeout=120)

    def start(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        if self.owner is not None:
            record = pwd.getpwnam(self.owner)
            os.chown(self.root, record.pw_uid, record.pw_gid)
        self._run("initdb", "-D", str(self.datadir), "-U", "postgres", "-A", "trust",
                  "-E", "UTF8", "--no-locale")
        self.start_server()

    def start_server(self) -> None:
        """Start the (initialised) server on its port and socket folder."""
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port}"
                   f" -c unix_socket_directories={self.root}" + ("" if self.durable else " -c fsync=off"))
        self._run("pg_ctl", "-D", str(self.datadir), "-l", str(self.root / "server.log"),
                  "-o", options, "-w", "-t", "60", "start")

    def create_database(self, name: str) -> str:
        import psycopg2

        connection = psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres",
                                      dbname="postgres")
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}"')
            cursor.execute(f'CREATE DATABASE "{name}"')
        connection.close()
        return self.url(name)

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.datadir), "-m", "fast", "-w", "stop", check=False)
        shutil.rmtree(self.root, ignore_errors=True)


def start_cluster(*, durable: bool = False, folder: Path | None = None) -> PostgresCluster:
    """Start a cluster (in a new folder under ``folder``, default the temporary one; fsync
    on when ``durable``) or raise ``RuntimeError`` saying why it cannot be done."""
    bindir = find_pg_bin()
    if bindir is None:
        raise FileNotFoundError("no PostgreSQL server binaries (initdb, pg_ctl) on this machine")
    owner = None
    if os.geteuid() == 0:
        owner = os.environ.get("HSTLC_TEST_PG_USER", "nobody")
        pwd.getpwnam(owner)  # KeyError when the account does not exist
    root = Path(tempfile.mkdtemp(prefix="hstlc-pg-", dir=folder))
    cluster = PostgresCluster(bindir=bindir, root=root, port=free_port(), owner=owner, durable=durable)
    try:
        cluster.start()
    except subprocess.CalledProcessError as error:
        log = cluster.root / "server.log"
        detail = log.read_text() if log.exists() else ""
        cluster.stop()
        raise RuntimeError(f"PostgreSQL did not start: {error.stderr}{detail}") from error
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", cluster.port), timeout=1):
                return cluster
        except OSError:
            time.sleep(0.2)
    cluster.stop()
    raise RuntimeError("PostgreSQL started but does not accept connections")
