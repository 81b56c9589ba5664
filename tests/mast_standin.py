"""A stand-in for MAST's web API on 127.0.0.1: tests and benchmarks without the internet.

It answers the requests astroquery's ``MastMissions(mission='hst')`` and hstlc's
downloader send, with responses shaped like MAST's (the column list is astroquery's own
test data ``mission_columns.json``; searches and product lists have the keys of
``mission_results.json`` and ``mission_products.json``)::

    GET  /search/util/api/v0.1/column_list?mission=hst       the mission's columns
    POST /search/hst/api/v0.1/search                          {"info", "results", ...}
    POST /search/hst/api/v0.1/post_list_products              {"products": [...]}
    GET  /search/hst/api/v0.1/retrieve_product?product_name=  the file (Content-Length,
                                                              Range -> 206 Content-Range)
    GET  /whoami                                              {"anon": ..., "attrib": ...}

The search applies MAST's condition syntax (``a,b`` either, ``!a`` not, ``<d``, ``>d``,
``d1..d2``, ``*`` wildcard) unless ``honour_conditions`` is off (a server that ignores
them).  Exclusive-access datasets are served only to a request carrying the token (the
``mast_token`` cookie, or ``Authorization: Bearer|token``).

Faults, per file name or endpoint (``search``, ``products``, ``columns``), are consumed one
per request, in order: ``Fault.status(500)``, ``Fault.status(429, retry_after=1)``,
``Fault.cut(1000)`` (the connection is closed after that many bytes of the body),
``Fault.slow(2.0)`` (nothing is sent for that long), ``Fault.corrupt()`` (one byte of the
body changed), ``Fault.short()`` (a file shorter than the listed size, its own
Content-Length consistent).  Every request is recorded (method, path, query, headers).
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import hashlib
import json
import socket
import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import astroquery

ASTROQUERY_DATA = Path(astroquery.__file__).parent / "mast" / "tests" / "data"
BLOCK = 256 * 1024
#: MAST's column types (column list ``qual_type``) as the search's ``info`` types.
INFO_TYPES = {"string": "VARCHAR", "substring": "VARCHAR", "datetime": "DATETIME",
              "integer": "INTEGER", "float": "FLOAT", "ra": "FLOAT", "dec": "FLOAT",
              "boolean": "BOOLEAN"}
#: The ordinary columns of a search result, besides those asked for (as MAST sends them).
DEFAULT_COLUMNS = ("sci_data_set_name", "sci_targname", "sci_instrume", "sci_release_date")


@dataclass(frozen=True)
class Fault:
    kind: str
    status: int = 0
    value: float = 0.0
    retry_after: str | None = None

    @classmethod
    def status_code(cls, status: int, retry_after: float | str | None = None) -> Fault:
        return cls("status", status=status,
                   retry_after=None if retry_after is None else str(retry_after))

    @classmethod
    def cut(cls, after_bytes: int) -> Fault:
        return cls("cut", value=after_bytes)

    @classmethod
    def slow(cls, seconds: float) -> Fault:
        return cls("slow", value=seconds)

    @classmethod
    def corrupt(cls) -> Fault:
        return cls("corrupt")

    @classmethod
    def short(cls) -> Fault:
        return cls("short")


@dataclass
class ArchiveDataset:
    """One row of the stand-in's HST search, with its files."""

    name: str
    targname: str
    files: list[Path] = field(default_factory=list)
    instrument: str = "COS"
    mode: str = "TIME-TAG"
    aec: str = "S"
    release: str = "2018-01-15T12:00:00"
    proposal: int = 14767
    exclusive: bool = False
    #: Files listed but not ingestible (rawtag, asn, jit...): must never be fetched.
    extras: tuple[str, ...] = ("_rawtag.fits", "_asn.fits", "_jit.fits")

    def row(self) -> dict[str, Any]:
        return {"sci_data_set_name": self.name.upper(), "sci_targname": self.targname,
                "sci_instrume": f"{self.instrument:<6}", "sci_operating_mode": self.mode,
                "sci_aec": self.aec, "sci_release_date": self.release, "sci_pep_id": self.proposal,
                "sci_start_time": "2017-12-20T09:39:02.123000", "sci_status":
                "PROPRIETARY" if self.exclusive else "PUBLIC",
                "sci_actual_duration": 1881.2, "sci_spec_1234": "G130M", "sci_aper_1234": "PSA"}


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: Any = None

    @property
    def product(self) -> str | None:
        names = self.query.get("product_name")
        return unquote(names[0]).rsplit("/", 1)[-1] if names else None


class MastStandIn:
    """The server; ``with MastStandIn(datasets) as mast: mast.url``."""

    def __init__(self, datasets: list[ArchiveDataset], *, token: str | None = None,
                 checksums: bool = True, honour_conditions: bool = True,
                 latency_s: float = 0.0) -> None:
        self.datasets = {d.name.upper(): d for d in datasets}
        self.token = token
        self.checksums = checksums
        self.honour_conditions = honour_conditions
        self.latency_s = latency_s
        self.faults: dict[str, deque[Fault]] = defaultdict(deque)
        self.requests: list[Recorded] = []
        self._lock = threading.Lock()
        self._digests: dict[Path, str] = {}
        self.columns = json.loads((ASTROQUERY_DATA / "mission_columns.json").read_text())
        self._types = {c["column_name"]: INFO_TYPES.get(c["qual_type"], "VARCHAR") for c in self.columns}
        self._server: ThreadingHTTPServer | None = None

    # -- control ---------------------------------------------------------------------------------

    def __enter__(self) -> MastStandIn:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> str:
        handler = type("Handler", (_Handler,), {"mast": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, name="mast-standin", daemon=True).start()
        return self.url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def inject(self, name: str, *faults: Fault) -> None:
        """Queue ``faults`` for the next requests of file (or endpoint) ``name``."""
        with self._lock:
            self.faults[name].extend(faults)

    def next_fault(self, name: str) -> Fault | None:
        with self._lock:
            queue = self.faults.get(name)
            return queue.popleft() if queue else None

    def record(self, entry: Recorded) -> None:
        with self._lock:
            self.requests.append(entry)

    def downloads(self, filename: str | None = None) -> list[Recorded]:
        """The file requests received (of one file name)."""
        with self._lock:
            return [r for r in self.requests if r.product is not None
                    and (filename is None or r.product == filename)]

    # -- content ---------------------------------------------------------------------------------

    def files(self) -> dict[str, tuple[ArchiveDataset, Path]]:
        return {path.name: (d, path) for d in self.datasets.values() for path in d.files}

    def sha256(self, path: Path) -> str:
        with self._lock:
            if path not in self._digests:
                self._digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
            return self._digests[path]

    def products(self, names: list[str]) -> list[dict[str, Any]]:
        found = []
        for name in names:
            dataset = self.datasets.get(str(name).upper())
            if dataset is None:
                continue
            root = dataset.files[0].name.split("_")[0] if dataset.files else dataset.name.lower()
            entries = [(p.name, p.stat().st_size, p) for p in dataset.files]
            entries += [(f"{root}{suffix}", 2880, None) for suffix in dataset.extras]
            for filename, size, path in entries:
                item = {"product_key": f"{dataset.name.upper()}_{filename}",
                        "access": "EXCLUSIVE" if dataset.exclusive else "PUBLIC",
                        "dataset": dataset.name.upper(), "instrument_name": f"{dataset.instrument:<6}",
                        "filters": "G130M", "filename": filename, "uri": f"{dataset.name.upper()}/{filename}",
                        "authz_primary_identifier": dataset.name.upper(),
                        "authz_secondary_identifier": "CAL",
                        "file_suffix": filename.split("_", 1)[1].split(".")[0].upper(),
                        "category": "CALIBRATED", "size": size, "type": "science"}
                if self.checksums and path is not None:
                    item["sha256"] = self.sha256(path)
                found.append(item)
        return found

    def search(self, params: dict[str, Any]) -> dict[str, Any]:
        rows = [d.row() for d in self.datasets.values()]
        conditions = params.get("conditions") or []
        if self.honour_conditions:
            for condition in conditions:
                for column, value in condition.items():
                    rows = [row for row in rows if matches(row.get(column), str(value))]
        for key, descending in zip(params.get("sort_by") or [], params.get("sort_desc") or [], strict=False):
            rows.sort(key=lambda row, key=key: str(row.get(key)), reverse=bool(descending))
        columns = list(dict.fromkeys([*(params.get("select_cols") or DEFAULT_COLUMNS),
                                      "sci_data_set_name"]))
        limit = int(params.get("limit") or 5000)
        offset = int(params.get("offset") or 0)
        shown = rows[offset:offset + limit]
        return {"messages": [], "info": [{"name": c, "type": self._types.get(c, "VARCHAR")} for c in columns],
                "search_params": params, "totalResults": len(rows),
                "results": [{**{c: row.get(c) for c in columns}, "search_key": row["sci_data_set_name"]}
                            for row in shown]}

    def authorised(self, headers: Any) -> bool:
        if self.token is None:
            return False
        cookie = headers.get("Cookie") or ""
        pairs = dict(part.strip().split("=", 1) for part in cookie.split(";") if "=" in part)
        auth = (headers.get("Authorization") or "").split(" ", 1)
        return pairs.get("mast_token") == self.token or (len(auth) == 2 and auth[1] == self.token)


def matches(value: Any, condition: str) -> bool:
    """MAST's condition syntax on one value (strings case-insensitive)."""
    text = "" if value is None else str(value).strip().upper()
    positives, negatives = [], []
    for item in (part.strip() for part in condition.split(",")):
        (negatives if item.startswith("!") else positives).append(item.lstrip("!").upper())
    if any(_one(text, item) for item in negatives):
        return False
    return not positives or any(_one(text, item) for item in positives)


def _one(text: str, item: str) -> bool:
    if ".." in item:
        low, high = item.split("..", 1)
        return _compare(text, low) >= 0 and _compare(text, high) <= 0
    for operator in ("<=", ">=", "<", ">"):
        if item.startswith(operator):
            order = _compare(text, item[len(operator):])
            return {"<=": order <= 0, ">=": order >= 0, "<": order < 0, ">": order > 0}[operator]
    if "*" in item:
        return fnmatch.fnmatchcase(text, item)
    return text == item


def _compare(text: str, bound: str) -> int:
    try:
        left, right = float(text), float(bound)
    except ValueError:
        left_time = dt.datetime.fromisoformat(text.replace(" ", "T")[:26])
        right_time = dt.datetime.fromisoformat(bound.strip().replace(" ", "T")[:26])
        return (left_time > right_time) - (left_time < right_time)
    return (left > right) - (left < right)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    mast: MastStandIn

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base's name)
        pass

    def _parts(self) -> tuple[str, dict[str, list[str]]]:
        parts = urlsplit(self.path)
        return parts.path, parse_qs(parts.query)

    def _json(self, payload: Any, status: int = 200) -> None:
        body = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _error(self, status: int, retry_after: str | None = None) -> None:
        body = json.dumps({"error": f"HTTP {status}"}).encode()
        self.send_response(status)
        if retry_after is not None:
            self.send_header("Retry-After", retry_after)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _fault(self, name: str) -> Fault | None:
        """Apply a status or slow fault of ``name``; return a body fault for the caller."""
        fault = self.mast.next_fault(name)
        if fault is not None and fault.kind == "slow":
            time.sleep(fault.value)
            return None
        if fault is not None and fault.kind == "status":
            self._error(fault.status, fault.retry_after)
            return Fault("answered")
        return fault

    def _begin(self, body: Any = None) -> tuple[str, dict[str, list[str]]]:
        path, query = self._parts()
        self.mast.record(Recorded(self.command, path, query, dict(self.headers.items()), body))
        if self.mast.latency_s:
            time.sleep(self.mast.latency_s)
        return path, query

    def do_GET(self) -> None:  # noqa: N802 (the base's name)
        path, query = self._begin()
        if path == "/search/util/api/v0.1/column_list":
            if self._fault("columns") is None:
                self._json(self.mast.columns)
        elif path == "/whoami":
            anonymous = not self.mast.authorised(self.headers)
            self._json({"anon": anonymous, "attrib": {} if anonymous else {"display_name": "Test User"},
                        "ezid": "anonymous" if anonymous else "tester", "scopes": []})
        elif path.endswith("/api/v0.1/retrieve_product"):
            self._retrieve(unquote(query.get("product_name", [""])[0]))
        else:
            self._error(404)

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        params = json.loads(raw or b"{}")
        path, _ = self._begin(params)
        if path == "/search/hst/api/v0.1/search":
            if self._fault("search") is None:
                self._json(self.mast.search(params))
        elif path == "/search/hst/api/v0.1/post_list_products":
            if self._fault("products") is None:
                self._json({"products": self.mast.products(list(params.get("dataset_ids") or []))})
        else:
            self._error(404)

    def _retrieve(self, uri: str) -> None:
        filename = uri.rsplit("/", 1)[-1]
        found = self.mast.files().get(filename)
        fault = self._fault(filename)
        if fault is not None and fault.kind == "answered":
            return
        if found is None:
            self._error(404)
            return
        dataset, path = found
        if dataset.exclusive and not self.mast.authorised(self.headers):
            self._error(401)
            return
        data = path.read_bytes()
        if fault is not None and fault.kind == "corrupt":
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]
        if fault is not None and fault.kind == "short":
            data = data[: len(data) // 2]
        start = _range_start(self.headers.get("Range"))
        if start is not None and start >= len(data):
            self._error(416)
            return
        body = data[start or 0:]
        self.send_response(206 if start else 200)
        self.send_header("Content-Type", "application/fits")
        self.send_header("Accept-Ranges", "bytes")
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        limit = int(fault.value) if fault is not None and fault.kind == "cut" else len(body)
        for begin in range(0, min(limit, len(body)), BLOCK):
            self.wfile.write(body[begin:min(begin + BLOCK, limit)])
        if limit < len(body):  # the connection cut mid-file
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True


def _range_start(header: str | None) -> int | None:
    if not header or not header.startswith("bytes="):
        return None
    first = header[len("bytes="):].split("-", 1)[0]
    return int(first) if first.isdigit() else None


# -- archives ------------------------------------------------------------------------------------


def real_datasets(real: Path) -> list[ArchiveDataset]:
    """The real GJ-436 COS FUV exposures of ``../shared/data/real`` (two datasets), and the
    real acquisitions there as the ACCUM-mode datasets the selection must refuse."""
    gj = real / "cos_fuv_g130m_gj436"
    datasets = [ArchiveDataset(root.upper(), "GJ-436",
                               [gj / f"{root}_corrtag_a.fits", gj / f"{root}_x1d.fits"],
                               release="2018-12-20T10:00:00")
                for root in ("ld9m10ujq", "ld9m10uyq")]
    datasets += [
        ArchiveDataset("LDNGZ2SZQ", "GJ-436", [real / "reject" / "ldngz2szq_rawacq.fits.gz"], mode="ACCUM"),
        ArchiveDataset("O4ER06LLQ", "HD-12345", [real / "reject" / "o4er06llq_raw.fits"], instrument="STIS",
                       mode="ACCUM"),
    ]
    return datasets


def synthetic_datasets(folder: Path, count: int, *, start: int = 0, targname: str = "SYNTH-STAR",
                       release: str = "2019-03-01T00:00:00") -> list[ArchiveDataset]:
    """``count`` synthetic COS NUV datasets (corrtag + x1d), written once into ``folder``."""
    from builders import build_cos_nuv

    folder.mkdir(parents=True, exist_ok=True)
    datasets = []
    for index in range(start, start + count):
        root = f"lbs{index:04d}q"[:9].ljust(9, "q")
        if not (folder / f"{root}_corrtag.fits").exists():
            build_cos_nuv(folder, rootname=root, seed=index, exptime=120.0, targname=targname)
        datasets.append(ArchiveDataset(root.upper(), targname,
                                       [folder / f"{root}_corrtag.fits", folder / f"{root}_x1d.fits"],
                                       release=release, proposal=15000))
    return datasets


def calibration_datasets(folder: Path) -> list[ArchiveDataset]:
    """TIME-TAG calibration exposures (DARK, WAVE ...) and a calibration-purpose one: the
    selection must refuse them all.  Their files are small stand-ins."""
    folder.mkdir(parents=True, exist_ok=True)
    datasets = []
    for index, target in enumerate(("DARK", "BIAS", "DEUTERIUM", "WAVE", "ANY", "NONE")):
        path = folder / f"lcal0{index}aq_corrtag_a.fits"
        path.write_bytes(b"SIMPLE  =                    T" + bytes(2850))
        datasets.append(ArchiveDataset(path.name[:9].upper(), target, [path]))
    flat = folder / "lcalflatq_corrtag.fits"
    flat.write_bytes(b"SIMPLE  =                    T" + bytes(2850))
    datasets.append(ArchiveDataset("LCALFLATQ", "FLAT-FIELD", [flat], aec="C"))
    return datasets
