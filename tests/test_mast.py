"""The MAST client, selection, new-only plan and safe downloads, against the stand-in server.

No test reaches the internet and nothing is mocked below HTTP: the real client code
(astroquery for the search and product lists, requests for the files) talks to
``tests/mast_standin.py`` on 127.0.0.1 through the ``mast_url`` setting.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
import time
from pathlib import Path

import pytest
from astropy.table import Table
from mast_standin import (
    ASTROQUERY_DATA,
    ArchiveDataset,
    Fault,
    MastStandIn,
    calibration_datasets,
    synthetic_datasets,
)

from hstlc.catalogue.engine import create_catalogue_engine, session_scope
from hstlc.catalogue.migrate import upgrade
from hstlc.catalogue.store import record_bad_data, upsert_metadata
from hstlc.fs import Layout, sha256_file
from hstlc.mast.client import (
    MastConnection,
    MastError,
    MastUnreachableError,
    RetryPolicy,
    missions_client,
    opened,
    product_rows,
    search,
)
from hstlc.mast.fetch import FAILED, FETCHED, PART_SUFFIX, PRESENT, Fetcher, deliver, fetch_dataset
from hstlc.mast.plan import IN_CATALOGUE, IN_FILESYSTEM, IN_INGEST, REFUSED, plan_downloads
from hstlc.mast.query import (
    CALIBRATION_TARGETS,
    Criteria,
    criteria_for,
    refusal,
    rows_of,
    select_datasets,
    select_products,
)

NOW = dt.datetime(2026, 12, 1, 5, 0)


@pytest.fixture(scope="session")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> list[ArchiveDataset]:
    """Four synthetic COS NUV datasets (corrtag + x1d), built once."""
    return synthetic_datasets(tmp_path_factory.mktemp("archive"), 4)


def connect(mast: MastStandIn, *, retries: int = 3, token: str | None = None,
            timeout_s: float = 5.0) -> MastConnection:
    from pydantic import SecretStr

    return MastConnection(mast.url, token=SecretStr(token) if token else None, timeout_s=timeout_s,
                          retry=RetryPolicy(retries=retries, backoff_s=0.01))


def products(mast: MastStandIn, *names: str):
    return select_products(mast.products(list(names)))


# -- the selection ----------------------------------------------------------------------------------


def search_row(name: str, **changes) -> dict:
    row = {"sci_data_set_name": name, "sci_targname": "GJ-436", "sci_instrume": "COS   ",
           "sci_operating_mode": "TIME-TAG", "sci_aec": "S", "sci_release_date": "2018-12-20T10:00:00",
           "sci_pep_id": 14767}
    row.update(changes)
    return row


def test_the_selection_refuses_calibration_targets_and_other_data_on_a_table():
    rows = [search_row("LGOOD001Q"), search_row("OGOOD002Q", sci_instrume="STIS  "),
            *[search_row(f"LCAL{i:04d}Q", sci_targname=name) for i, name in enumerate(CALIBRATION_TARGETS)],
            search_row("LACQ0001Q", sci_operating_mode="ACCUM"),
            search_row("LIMG0001Q", sci_operating_mode="IMAGE"),
            search_row("IWFC0001Q", sci_instrume="WFC3"),
            search_row("LCALC001Q", sci_aec="C"),
            search_row("LNEW0001Q", sci_release_date="2027-01-01T00:00:00"),
            search_row("LNODATE1Q", sci_release_date=None)]
    table = Table(rows=[[row.get(k) for k in rows[0]] for row in rows], names=list(rows[0]),
                  dtype=[str, str, str, str, str, str, int], masked=True)
    table["sci_release_date"].mask = [row["sci_release_date"] is None for row in rows]
    chosen, refused = select_datasets(rows_of(table), Criteria(until=NOW, limit=10))
    assert [d.name for d in chosen] == ["lgood001q", "ogood002q"]
    assert [d.instrument for d in chosen] == ["COS", "STIS"]  # MAST pads instrument names
    assert refused["lcal0000q"] == "target DARK is a calibration target"
    assert {name for name, why in refused.items() if "calibration target" in why} == {
        f"lcal{i:04d}q" for i in range(len(CALIBRATION_TARGETS))}
    assert refused["lacq0001q"] == "operating mode ACCUM is not TIME-TAG"
    assert refused["limg0001q"] == "operating mode IMAGE is not TIME-TAG"
    assert refused["iwfc0001q"] == "instrument WFC3 is not COS or STIS"
    assert refused["lcalc001q"] == "not a science exposure (sci_aec C)"
    assert refused["lnew0001q"].startswith("not released before 2026-12-01 05:00 UTC")
    assert "no date" in refused["lnodate1q"]


def test_the_options_narrow_the_selection():
    criteria = criteria_for(5, since="2018-06-01", instruments=["stis"], target="gj 436",
                            proposal="14767", now=NOW)
    assert refusal(search_row("O1", sci_instrume="STIS", sci_targname="GJ436"), criteria) is None
    assert refusal(search_row("L1"), criteria) == "instrument COS is not STIS"
    assert refusal(search_row("O2", sci_instrume="STIS", sci_release_date="2018-01-01T00:00:00"),
                   criteria) == "released 2018-01-01, before 2018-06-01"
    assert refusal(search_row("O3", sci_instrume="STIS", sci_targname="GJ-1214"), criteria) == (
        "target GJ-1214 is not gj 436")
    assert refusal(search_row("O4", sci_instrume="STIS", sci_pep_id=1), criteria) == (
        "proposal 1 is not 14767")
    with pytest.raises(ValueError, match="--since: expected a date"):
        criteria_for(5, since="yesterday")
    with pytest.raises(ValueError, match="--instrument: expected COS or STIS; got ACS"):
        criteria_for(5, instruments=["ACS"])


def test_the_query_sent_is_the_2016_selection():
    assert Criteria(until=NOW, limit=10).conditions() == {
        "sci_instrume": "COS,STIS",
        "sci_operating_mode": "TIME-TAG",
        "sci_aec": "S",
        "sci_release_date": "<2026-12-01",
        "sci_targname": "!DARK,!BIAS,!DEUTERIUM,!WAVE,!ANY,!NONE",
    }
    narrowed = criteria_for(3, since="2026-11-01", instruments=["COS"], target="GJ-436",
                            proposal=14767, now=NOW).conditions()
    assert narrowed == {"sci_instrume": "COS", "sci_operating_mode": "TIME-TAG", "sci_aec": "S",
                        "sci_release_date": "2026-11-01..2026-12-01", "sci_targname": "GJ-436,GJ436",
                        "sci_pep_id": "14767"}


def test_products_kept_are_the_ingestible_science_files():
    listed = json.loads((ASTROQUERY_DATA / "mission_products.json").read_text())["products"]
    assert select_products(listed) == []  # astroquery's sample: GHRS files, none of ours
    rows = [{"filename": f"ld9m10ujq_{suffix}", "uri": f"LD9M10UJQ/ld9m10ujq_{suffix}",
             "dataset": "LD9M10UJQ", "size": 100, "type": "science"}
            for suffix in ("corrtag_a.fits", "corrtag_b.fits", "x1d.fits", "rawtag_a.fits",
                           "asn.fits", "x1dsum.fits", "lampflash.fits")]
    rows += [{"filename": "oc5r01abq_tag.fits", "uri": "OC5R01ABQ/oc5r01abq_tag.fits", "size": 5,
              "type": "science", "md5": "0" * 32},
             {"filename": "oc5r01abq_x1d.fits", "type": "auxiliary"},
             {"filename": "lb1c02nuq_corrtag.fits", "checksum": "sha256:" + "a" * 64, "size": 0}]
    kept = select_products(rows + rows[:1])
    assert [p.filename for p in kept] == ["ld9m10ujq_corrtag_a.fits", "ld9m10ujq_corrtag_b.fits",
                                          "ld9m10ujq_x1d.fits", "oc5r01abq_tag.fits",
                                          "lb1c02nuq_corrtag.fits"]
    assert kept[0].rootname == "ld9m10ujq" and kept[0].size == 100 and kept[0].checksum is None
    assert str(kept[3].checksum) == "md5:" + "0" * 32
    assert str(kept[4].checksum) == "sha256:" + "a" * 64 and kept[4].size is None


# -- astroquery, pointed at one server ----------------------------------------------------------------


def test_the_retrieve_url_is_the_one_astroquery_uses(tmp_path):
    """Our file URL is what ``MastMissions.download_file`` would fetch, on our server."""
    connection = MastConnection("http://127.0.0.1:9")
    client = missions_client(connection)
    asked = []
    client._download_file = lambda url, path, **kwargs: asked.append(url)
    client.download_file("LD9M10UJQ/ld9m10ujq_corrtag_a.fits", local_path=tmp_path)
    assert asked == [connection.retrieve_url("LD9M10UJQ/ld9m10ujq_corrtag_a.fits")]
    assert asked[0].startswith("http://127.0.0.1:9/search/hst/api/v0.1/retrieve_product?product_name=")


def test_two_servers_side_by_side_and_no_global_setting_changes(synthetic):
    from astroquery.mast import conf
    from astroquery.mast.services import ServiceAPI

    before = (conf.server, ServiceAPI.SERVICE_URL)
    with MastStandIn(synthetic[:1]) as one, MastStandIn(synthetic[1:2]) as two:
        found = {}
        for mast in (one, two):
            connection = connect(mast)
            with opened(connection) as client:
                found[mast.url] = [r["sci_data_set_name"] for r in
                                   search(client, connection, Criteria(until=NOW, limit=5))]
        assert found == {one.url: [synthetic[0].name], two.url: [synthetic[1].name]}
        assert [r.path for r in one.requests] == ["/search/util/api/v0.1/column_list",
                                                  "/search/hst/api/v0.1/search"]
    assert (conf.server, ServiceAPI.SERVICE_URL) == before


def test_a_server_that_ignores_the_conditions_still_gets_nothing_refused_fetched(tmp_path, synthetic):
    calibration = calibration_datasets(tmp_path / "cal")
    other = ArchiveDataset("LACQAAAAQ", "GJ-436", [synthetic[0].files[0]], mode="ACCUM")
    with MastStandIn([*calibration, other, synthetic[2]], honour_conditions=False) as mast:
        connection = connect(mast)
        home = tmp_path / "home"
        url = catalogue(home)
        plan = plan_downloads(connection, Criteria(until=NOW, limit=10), url, layout(home))
        sent = next(r.body for r in mast.requests if r.path.endswith("/search"))
        listed = next(r.body for r in mast.requests if r.path.endswith("/post_list_products"))
    assert {"sci_targname": "!DARK,!BIAS,!DEUTERIUM,!WAVE,!ANY,!NONE"} in sent["conditions"]
    assert [d.rootname for d in plan.todo] == [synthetic[2].name.lower()]
    assert set(plan.refused) == {d.name.lower() for d in [*calibration, other]}
    assert listed["dataset_ids"] == [synthetic[2].name]  # no product list of a refused dataset


def test_a_search_answered_503_is_retried_and_an_unreachable_mast_is_one_line(synthetic):
    with MastStandIn(synthetic[:1]) as mast:
        mast.inject("search", Fault.status_code(503, retry_after=0), Fault.status_code(502))
        connection = connect(mast)
        with opened(connection) as client:
            assert len(search(client, connection, Criteria(until=NOW, limit=5))) == 1
        assert sum(r.path.endswith("/search") for r in mast.requests) == 3
        closed = mast.url
    started = time.monotonic()
    with pytest.raises(MastUnreachableError) as caught:
        with opened(MastConnection(closed, timeout_s=2, retry=RetryPolicy(2, 0.01))):
            pass
    message = str(caught.value)
    assert "\n" not in message and closed in message and "Connection refused" in message
    assert "3 attempts" in message and "mast_url" in message
    assert time.monotonic() - started < 5


def test_a_token_mast_refuses_is_one_line(synthetic):
    with MastStandIn(synthetic[:1], token="right") as mast:
        with pytest.raises(MastError, match="did not accept the token") as caught:
            with opened(connect(mast, token="wrong")):
                pass
    assert "wrong" not in str(caught.value)


# -- safe downloads ------------------------------------------------------------------------------------


def fetcher(mast: MastStandIn, folder: Path, **options) -> Fetcher:
    return Fetcher(connect(mast, **options), folder)


def test_500_then_200_and_429_with_retry_after_are_retried(tmp_path, synthetic):
    first, second = synthetic[0], synthetic[1]
    with MastStandIn([first, second]) as mast:
        corrtag, x1d = (p.name for p in first.files)
        mast.inject(corrtag, Fault.status_code(500))
        mast.inject(x1d, Fault.status_code(429, retry_after=1))
        with fetcher(mast, tmp_path / "download") as fetch:
            started = time.monotonic()
            results = [fetch.fetch(p) for p in products(mast, first.name)]
            waited = time.monotonic() - started
    assert [(r.status, r.attempts, r.http_status) for r in results] == [(FETCHED, 2, 200), (FETCHED, 2, 200)]
    assert waited >= 1.0  # the Retry-After second was honoured
    for result, source in zip(results, first.files, strict=True):
        assert result.path == tmp_path / "download" / source.name
        assert result.sha256 == sha256_file(source) == sha256_file(result.path)


def test_404_and_401_are_recorded_once_and_a_token_opens_exclusive_data(tmp_path, synthetic):
    secret = ArchiveDataset("LEXCLUS1Q", "SECRET-STAR", [synthetic[3].files[0]], exclusive=True)
    with MastStandIn([synthetic[0], secret], token="tok-123") as mast:
        gone = products(mast, synthetic[0].name)[0]
        mast.inject(gone.filename, Fault.status_code(404))  # listed, but not served
        with fetcher(mast, tmp_path / "a") as fetch:
            missing = fetch.fetch(gone)
            locked = fetch.fetch(products(mast, secret.name)[0])
        with fetcher(mast, tmp_path / "b", token="tok-123") as fetch:
            opened_ = fetch.fetch(products(mast, secret.name)[0])
        asked = mast.downloads(gone.filename)
        cookies = [r.headers.get("Cookie") for r in mast.downloads(secret.files[0].name)]
    assert missing.status == FAILED and missing.unavailable and missing.attempts == 1
    assert missing.reason == "HTTP 404 Not Found: MAST does not serve this file" and len(asked) == 1
    assert locked.status == FAILED and locked.http_status == 401 and "set mast_token" in locked.reason
    assert opened_.status == FETCHED
    assert cookies == [None, "mast_token=tok-123"]  # sent only when set, as astroquery does


def test_a_cut_connection_leaves_no_partial_file_in_ingest_and_the_next_run_resumes(tmp_path, synthetic):
    dataset = synthetic[0]
    download, ingest = tmp_path / "download", tmp_path / "ingest"
    with MastStandIn([dataset]) as mast:
        corrtag = dataset.files[0]
        mast.inject(corrtag.name, *[Fault.cut(50_000)] * 4)  # every attempt of the first run
        wanted = products(mast, dataset.name)
        with fetcher(mast, download) as fetch:
            first = fetch_dataset(wanted, fetch, ingest)
        assert [r.status for r in first] == [FAILED, FETCHED]
        assert "cut before the end" in first[0].reason and first[0].attempts == 4
        assert not ingest.exists()  # the dataset waits, whole, for the next run
        part = download / (corrtag.name + PART_SUFFIX)
        assert part.stat().st_size == 4 * 50_000  # each retry resumed where the cut left it
        assert (download / dataset.files[1].name).is_file()
        with fetcher(mast, download) as fetch:
            second = fetch_dataset(wanted, fetch, ingest)
        ranges = [r.headers.get("Range") for r in mast.downloads(corrtag.name)]
        x1d_requests = len(mast.downloads(dataset.files[1].name))
    assert [r.status for r in second] == [FETCHED, PRESENT]
    assert second[0].transferred == corrtag.stat().st_size - 200_000
    assert ranges == [None, "bytes=50000-", "bytes=100000-", "bytes=150000-", "bytes=200000-"]
    assert x1d_requests == 1  # a complete file is never fetched twice
    assert sorted(p.name for p in ingest.iterdir()) == sorted(p.name for p in dataset.files)
    for source in dataset.files:
        assert sha256_file(ingest / source.name) == sha256_file(source)
    assert not list(download.iterdir())


def test_a_cut_once_is_resumed_within_the_run(tmp_path, synthetic):
    with MastStandIn(synthetic[:1]) as mast:
        x1d = synthetic[0].files[1]
        mast.inject(x1d.name, Fault.cut(100_000))
        with fetcher(mast, tmp_path) as fetch:
            result = fetch.fetch(products(mast, synthetic[0].name)[1])
        ranges = [r.headers.get("Range") for r in mast.downloads(x1d.name)]
    assert result.status == FETCHED and result.attempts == 2 and ranges == [None, "bytes=100000-"]
    assert result.transferred == x1d.stat().st_size and result.sha256 == sha256_file(x1d)


@pytest.mark.parametrize("fault, words", [(Fault.corrupt(), "checksum mismatch: MAST lists sha256"),
                                          (Fault.short(), "size mismatch: MAST lists")])
def test_a_file_that_does_not_match_is_never_renamed_into_ingest(tmp_path, synthetic, fault, words):
    dataset = synthetic[1]
    with MastStandIn([dataset]) as mast:
        mast.inject(dataset.files[0].name, fault)
        with fetcher(mast, tmp_path / "download") as fetch:
            results = fetch_dataset(products(mast, dataset.name), fetch, tmp_path / "ingest")
    assert results[0].status == FAILED and results[0].reason.startswith(words)
    assert not (tmp_path / "ingest").exists()
    assert sorted(p.name for p in (tmp_path / "download").iterdir()) == [dataset.files[1].name]


def test_a_slow_answer_times_out_and_is_retried(tmp_path, synthetic):
    with MastStandIn(synthetic[:1]) as mast:
        mast.inject(synthetic[0].files[1].name, Fault.slow(1.5))
        with fetcher(mast, tmp_path, timeout_s=0.4) as fetch:
            result = fetch.fetch(products(mast, synthetic[0].name)[1])
    assert result.status == FETCHED and result.attempts == 2


def test_a_file_mast_does_not_serve_does_not_hold_back_its_dataset(tmp_path, synthetic):
    dataset = synthetic[2]
    with MastStandIn([dataset]) as mast:
        mast.inject(dataset.files[1].name, Fault.status_code(404))
        with fetcher(mast, tmp_path / "download") as fetch:
            results = fetch_dataset(products(mast, dataset.name), fetch, tmp_path / "ingest")
    assert [r.status for r in results] == [FETCHED, FAILED]
    assert [p.name for p in (tmp_path / "ingest").iterdir()] == [dataset.files[0].name]
    assert deliver([], tmp_path / "ingest") == []


# -- what is new ---------------------------------------------------------------------------------------


def catalogue(home: Path) -> str:
    url = f"sqlite:///{home / 'hstlc.db'}"
    engine = create_catalogue_engine(url)
    upgrade(engine)
    engine.dispose()
    return url


def layout(home: Path) -> Layout:
    return Layout(*(home / name for name in ("ingest", "filesystem", "outputs", "outputs/composite",
                                             "logs", "download", "plots", "bad_data")))


def test_datasets_in_the_catalogue_bad_data_ingest_or_filesystem_are_not_fetched(tmp_path, synthetic):
    home = tmp_path / "home"
    url = catalogue(home)
    names = [d.name.lower() for d in synthetic]
    engine = create_catalogue_engine(url)
    with session_scope(engine) as session:
        upsert_metadata(session, {
            "filename": f"{names[0]}_corrtag.fits", "path": str(home / "filesystem" / "X"),
            "telescop": "HST", "instrume": "COS", "targname": "X", "obstype": "SPECTROSCOPIC",
            "cenwave": 1882, "aperture": "PSA", "detector": "NUV", "opt_elem": "G185M",
            "rootname": names[0], "sha256": "a" * 64})
        record_bad_data(session, f"{names[1].upper()}_x1d.fits", "Bad EXPFLAG", sha256="b" * 64)
    engine.dispose()
    (home / "ingest").mkdir(parents=True)
    shutil.copy2(synthetic[2].files[1], home / "ingest")
    (home / "filesystem" / "SYNTH-STAR").mkdir(parents=True)
    shutil.copy2(synthetic[3].files[0], home / "filesystem" / "SYNTH-STAR")
    with MastStandIn(synthetic) as mast:
        plan = plan_downloads(connect(mast), Criteria(until=NOW, limit=10), url, layout(home))
        assert not any(r.path.endswith("/post_list_products") for r in mast.requests)
    assert plan.todo == () and plan.files == 0
    assert plan.skipped == {names[0]: IN_CATALOGUE, names[1]: REFUSED, names[2]: IN_INGEST,
                            names[3]: IN_FILESYSTEM}


def test_the_limit_caps_a_run_newest_first_and_leaves_the_rest(tmp_path, synthetic):
    home = tmp_path / "home"
    dated = [ArchiveDataset(d.name, d.targname, d.files, release=f"2019-0{i + 1}-01T00:00:00")
             for i, d in enumerate(synthetic)]
    with MastStandIn(dated) as mast:
        connection = connect(mast)
        plan = plan_downloads(connection, Criteria(until=NOW, limit=3), catalogue(home), layout(home))
        with opened(connection) as client:  # 2 files and 3 others (rawtag, asn, jit) each
            assert len(product_rows(client, connection, [d.name for d in synthetic])) == 4 * 5
    assert [d.rootname for d in plan.todo] == [d.name.lower() for d in reversed(synthetic)][:3]
    assert plan.deferred == (synthetic[0].name.lower(),)
    assert plan.files == 6 and plan.bytes == sum(p.stat().st_size for d in dated[1:] for p in d.files)
    assert plan.describe()[-1].startswith("6 files of 3 datasets to fetch")
