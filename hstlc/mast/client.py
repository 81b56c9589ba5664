"""The connection to MAST and the astroquery calls (the HST search and the product lists).

Everything goes to one base URL, the ``mast_url`` setting (tests point it at a stand-in
server).  astroquery builds its URLs from ``astroquery.mast.conf.server`` when its classes
are *imported* (``ServiceAPI.SERVICE_URL``, ``MISSIONS_DOWNLOAD_URL``,
``MAST_DOWNLOAD_URL``) and when a client is created (``MastAuth.SESSION_INFO_URL``), so
:func:`missions_client` sets those on one fresh ``MastMissionsClass`` instance: no global
setting is changed, and clients of different servers live side by side.

The token (``mast_token``) travels as astroquery sends it, the ``mast_token`` cookie of
the session (``MastAuth.login``), to MAST's search and to its file retrieval; it is a
``SecretStr`` until that moment, and no URL, log line, error or file holds it.
astroquery's response hook, which logs each request's headers (the cookie with them) at
DEBUG, is taken off the session.

Every request has a timeout (connect and between reads, ``download_timeout_s``) and is
retried on timeouts, connection errors, 429 (after its Retry-After) and 5xx, with
exponential backoff (:class:`RetryPolicy`).  What is left after the retries is one
:class:`MastError` line naming the server and what to do.
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, TypeVar
from urllib.parse import quote

from pydantic import SecretStr

from hstlc.errors import HstlcError
from hstlc.mast.query import COLUMNS, Criteria, rows_of

logger = logging.getLogger(__name__)

T = TypeVar("T")

MISSION = "hst"
#: Most rows one search returns (astroquery warns when a search reaches it).
QUERY_LIMIT = 50_000
#: Most datasets per product-list request (astroquery's own batch size).
PRODUCT_BATCH = 1000
#: The cookie astroquery's ``MastAuth.login`` gives the session.
TOKEN_COOKIE = "mast_token"
TOKEN_HELP = "create a new token at https://auth.mast.stsci.edu/token and set mast_token"


class MastError(HstlcError):
    """MAST refused or failed a request; the message names the server and what to do."""


class MastUnreachableError(MastError):
    """MAST did not answer, after the retries."""


# -- retries ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently a request to MAST is retried."""

    retries: int = 5
    backoff_s: float = 1.0
    max_backoff_s: float = 60.0
    #: A Retry-After longer than this is not waited for: the request fails this run.
    max_retry_after_s: float = 600.0

    def wait(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds before retry number ``retry`` (from 1): the server's Retry-After when it
        gave one, else ``backoff_s * 2**(retry - 1)`` (at most ``max_backoff_s``) stretched by
        up to a quarter at random, so that parallel downloads do not retry in step."""
        if retry_after is not None:
            return max(retry_after, 0.0)
        return min(self.backoff_s * 2 ** (retry - 1), self.max_backoff_s) * random.uniform(1.0, 1.25)


def is_transient_status(status: int) -> bool:
    """True for the HTTP statuses worth retrying: 429 and 5xx."""
    return status == 429 or status >= 500


def retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """The seconds a ``Retry-After`` header asks for (a number or an HTTP date), or ``None``.

    >>> retry_after({"Retry-After": "3"})
    3.0
    """
    value = str(headers.get("Retry-After") or "").strip()
    if not value:
        return None
    if re.fullmatch(r"\d+(\.\d+)?", value):
        return float(value)
    try:
        moment = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(moment.timestamp() - (time.time() if now is None else now), 0.0)


_ERRNO_TEXT = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def describe_network_error(error: BaseException) -> str:
    """A short reason for a failed request (``Connection refused``, ``timed out``)."""
    import requests

    text = str(error)
    if isinstance(error, requests.Timeout) or isinstance(error, TimeoutError) or "timed out" in text:
        return "timed out"
    if isinstance(error, requests.exceptions.ChunkedEncodingError) or "IncompleteRead" in text:
        return "the connection was cut before the end of the file"
    found = _ERRNO_TEXT.search(text)
    if found:
        return found.group(1).strip()
    if "RemoteDisconnected" in text or "Connection aborted" in text:
        return "the server closed the connection"
    first = text.strip().splitlines()[0] if text.strip() else type(error).__name__
    return first[:200]


def is_network_error(error: BaseException) -> bool:
    """True for a failure of the connection itself: worth retrying."""
    import requests
    import urllib3

    return isinstance(error, (requests.ConnectionError, requests.Timeout,
                              requests.exceptions.ChunkedEncodingError, urllib3.exceptions.HTTPError,
                              ConnectionError, TimeoutError))


# -- the connection ------------------------------------------------------------------------------


@dataclass(frozen=True)
class MastConnection:
    """Where MAST is and how to talk to it, as plain values (picklable)."""

    base_url: str
    token: SecretStr | None = field(default=None, repr=False)
    timeout_s: float = 120.0
    retry: RetryPolicy = RetryPolicy()

    @classmethod
    def from_settings(cls, settings: Any) -> MastConnection:
        return cls(base_url=settings.mast_url, token=settings.mast_token,
                   timeout_s=settings.download_timeout_s,
                   retry=RetryPolicy(retries=settings.download_retries,
                                     backoff_s=settings.download_backoff_s))

    def retrieve_url(self, uri: str) -> str:
        """The URL of one product, as ``MastMissions.download_file`` builds it for HST."""
        return f"{self.base_url}/search/{MISSION}/api/v0.1/retrieve_product?product_name=" + quote(
            uri, safe="")

    def cookies(self) -> dict[str, str]:
        """The cookies of every request: the token, as astroquery sends it (or none)."""
        return {TOKEN_COOKIE: self.token.get_secret_value()} if self.token is not None else {}

    def retried(self, call: Callable[[], T], what: str, *,
                sleep: Callable[[float], None] = time.sleep) -> T:
        """``call()``, retried on network errors, 429 and 5xx; :class:`MastError` at the end."""
        import requests

        last = ""
        for attempt in range(self.retry.retries + 1):
            try:
                return call()
            except requests.HTTPError as error:
                response = error.response
                status = response.status_code if response is not None else 0
                if not is_transient_status(status):
                    raise MastError(f"MAST at {self.base_url} refused {what}: HTTP {status} "
                                    f"{_reason_phrase(error)}") from None
                last = f"HTTP {status}"
                pause = retry_after(response.headers) if response is not None else None
            except Exception as error:  # astroquery wraps network errors in several types
                if not is_network_error(error):
                    raise
                last, pause = describe_network_error(error), None
            if attempt < self.retry.retries:
                delay = self.retry.wait(attempt + 1, pause)
                logger.info("MAST at %s: %s failed (%s); retry %d of %d in %.1f s", self.base_url,
                            what, last, attempt + 1, self.retry.retries, delay)
                sleep(delay)
        raise MastUnreachableError(
            f"MAST at {self.base_url} did not answer {what} ({last}; {self.retry.retries + 1} "
            "attempts): check the network and the mast_url setting; nothing was downloaded")


def _reason_phrase(error: Any) -> str:
    response = getattr(error, "response", None)
    return str(getattr(response, "reason", "") or "").strip()


# -- astroquery, pointed at the connection's server -------------------------------------------------


def _timeout_adapter(timeout_s: float) -> Any:
    from requests.adapters import HTTPAdapter

    class TimeoutAdapter(HTTPAdapter):
        """Gives every request of a session a timeout (astroquery's MAST calls set none)."""

        def send(self, request: Any, **kwargs: Any) -> Any:  # type: ignore[override]
            if kwargs.get("timeout") is None:
                kwargs["timeout"] = timeout_s
            return super().send(request, **kwargs)

    return TimeoutAdapter()


def missions_client(connection: MastConnection) -> Any:
    """A ``MastMissionsClass`` for the HST mission that talks only to ``connection``."""
    from astroquery.mast import MastMissionsClass

    client = MastMissionsClass(mission=MISSION)
    session = client._session
    session.hooks["response"] = []  # astroquery's hook logs request headers: the token cookie
    adapter = _timeout_adapter(connection.timeout_s)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    api = client._service_api_connection
    api.SERVICE_URL = connection.base_url
    api.MISSIONS_DOWNLOAD_URL = f"{connection.base_url}/search/"
    api.MAST_DOWNLOAD_URL = f"{connection.base_url}/api/v0.1/Download/file"
    client.mission = MISSION  # the request URL again, from this server
    client._auth_obj.SESSION_INFO_URL = f"{connection.base_url}/whoami"
    return client


def _load_columns(client: Any, connection: MastConnection) -> None:
    """The mission's column list (astroquery checks the criteria against it), fetched as
    ``MastMissions.get_column_list`` does, but on the session (with its timeout)."""
    from astropy.table import Table

    response = client._session.get(f"{connection.base_url}/search/util/api/v0.1/column_list",
                                   params={"mission": MISSION}, headers={"Accept": "application/json"})
    response.raise_for_status()
    rows = [(item["column_name"], item["qual_type"], item["description"]) for item in response.json()]
    client.columns[MISSION] = Table(rows=rows, names=("name", "data_type", "description"))


def _login(client: Any, connection: MastConnection) -> None:
    """``MastAuth.login`` with the token (it checks it at ``/whoami``); astroquery's own
    terminal line about it is replaced by a log record."""
    from astroquery import log as astroquery_log
    from astroquery.exceptions import LoginError

    assert connection.token is not None
    level = astroquery_log.level
    astroquery_log.setLevel(logging.WARNING)
    try:
        client._auth_obj.login(connection.token.get_secret_value())
    except LoginError:
        raise MastError(f"MAST at {connection.base_url} did not accept the token (setting "
                        f"mast_token): it may have expired; {TOKEN_HELP}") from None
    finally:
        astroquery_log.setLevel(level)
    logger.info("MAST at %s accepted the token", connection.base_url)


@contextmanager
def opened(connection: MastConnection) -> Iterator[Any]:
    """An astroquery client of ``connection``, logged in when there is a token."""
    client = missions_client(connection)
    try:
        connection.retried(lambda: _load_columns(client, connection), "the column list")
        if connection.token is not None:
            connection.retried(lambda: _login(client, connection), "the token check (whoami)")
        yield client
    finally:
        client._session.close()


def _quietly(call: Callable[[], T]) -> T:
    """``call()`` with astroquery's result warnings (no results, limit reached) logged."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    for warning in caught:
        logger.info("MAST: %s", warning.message)
    return result


def _query_error(connection: MastConnection, error: BaseException) -> MastError:
    return MastError(f"MAST at {connection.base_url} refused the query: {error}; check the "
                     "download options (a renamed column needs a new hstlc)")


def search(client: Any, connection: MastConnection, criteria: Criteria) -> list[dict[str, Any]]:
    """The HST mission search for ``criteria``: its rows as plain dicts, newest release first."""
    from astroquery.exceptions import InvalidQueryError

    def ask() -> Any:
        return _quietly(lambda: client.query_criteria(
            select_cols=list(COLUMNS), limit=QUERY_LIMIT, sort_by=["sci_release_date"],
            sort_desc=[True], **criteria.conditions()))

    try:
        return rows_of(connection.retried(ask, "the search"))
    except InvalidQueryError as error:
        raise _query_error(connection, error) from None


def product_rows(client: Any, connection: MastConnection, names: Sequence[str]
                 ) -> list[dict[str, Any]]:
    """The product lists of the named datasets, as plain dicts."""
    from astroquery.exceptions import InvalidQueryError

    def products_of(batch: list[str]) -> Callable[[], Any]:
        return lambda: _quietly(lambda: client.get_product_list(batch))

    rows: list[dict[str, Any]] = []
    wanted = [name.upper() for name in names]
    for start in range(0, len(wanted), PRODUCT_BATCH):
        batch = wanted[start:start + PRODUCT_BATCH]
        try:
            table = connection.retried(products_of(batch), f"the product lists of {len(batch)} datasets")
        except InvalidQueryError as error:
            raise _query_error(connection, error) from None
        rows.extend(rows_of(table))
    return rows
