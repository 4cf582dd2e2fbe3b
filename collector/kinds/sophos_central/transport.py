"""HTTP to Sophos Central: one keep-alive session, timeouts, short retries, hosts, tokens, clock.

Everything here is below the level of "which API means what": it moves bytes, retries what is
worth retrying within one call (429, 5xx, connection errors, timeouts, unreadable bodies) and
turns what is left into :class:`collector.errors.CollectionError` through :mod:`.classify`. Long
retry streaks (minutes to 90 minutes) belong to the engine, not here.

Process-wide state, shared by every session of a worker process:

* the token cache, keyed by ``(token_url, client_id, sha256(secret))`` so that many per-tenant tasks
  of one source share one token; the plain secret is never part of a key;
* the server clock offset per origin, learnt from each response's ``Date`` header. The 24-hour
  window of the SIEM API is enforced by the server's clock, so the client judges it by that clock
  (which also lets a simulator move time forward without the client sleeping).
"""

from __future__ import annotations

import email.utils
import hashlib
import logging
import random
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

import sumosources
from collector.errors import CollectionError
from collector.kinds.base import Tenant
from collector.kinds.sophos_central import classify
from collector.kinds.sophos_central.classify import parse_retry_after

log = logging.getLogger("collector.kinds.sophos_central")

USER_AGENT = (
    f"SumoSources/{sumosources.__version__} (Sophos Central collector; "
    f"python-requests/{requests.__version__})"
)
# (connect, read) seconds for every call; a read timeout bounds each socket read, not the body.
TIMEOUT: tuple[float, float] = (10.0, 60.0)
RETRIES = 3  # attempts per call, the first included
BACKOFF = 1.0  # seconds before the second attempt, doubled after each, with jitter
BACKOFF_CAP = 8.0
RETRY_AFTER_CAP = 10.0  # a longer Retry-After is the engine's business: raise at once
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
SOPHOS_DOMAIN = "sophos.com"


# --- hosts ------------------------------------------------------------------------------------


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased: the unit the allow-list and clock work on."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


def is_sophos_host(hostname: str) -> bool:
    hostname = hostname.lower().rstrip(".")
    return hostname == SOPHOS_DOMAIN or hostname.endswith("." + SOPHOS_DOMAIN)


def normalise_host(url: str) -> str:
    """A vendor-returned host URL in one form: no trailing slash, Sophos domains over https.

    Some of the vendor's examples show ``http://`` or a trailing slash; a path prefix (a proxy or the
    simulator's ``/region/eu01``) is kept, because data paths are appended to it.
    """
    url = url.strip()
    parts = urlsplit(url if "://" in url else "https://" + url)
    scheme = parts.scheme.lower()
    if is_sophos_host(parts.hostname or ""):
        scheme = "https"
    return urlunsplit((scheme, parts.netloc.lower(), parts.path.rstrip("/"), "", ""))


def host_allowed(url: str, extra_hosts: tuple[str, ...] | list[str]) -> bool:
    """Whether a host the vendor handed us may receive our token.

    Allowed: ``https`` to ``sophos.com`` or any subdomain on the default port, and any host named in
    ``extra_hosts`` (``host`` allows every port, ``host:port`` that port only), over http or https.
    Only scheme, host and port are judged; a path prefix is irrelevant.
    """
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    hostname = (parts.hostname or "").lower()
    try:
        port = parts.port
    except ValueError:
        return False
    if scheme not in ("http", "https") or not hostname or parts.username or parts.password:
        return False
    if scheme == "https" and port in (None, 443) and is_sophos_host(hostname):
        return True
    netloc = parts.netloc.lower()
    for entry in extra_hosts:
        entry = entry.strip().lower()
        if "://" in entry:
            entry = urlsplit(entry).netloc
        entry = entry.rstrip("/")
        if not entry:
            continue
        if entry == netloc:
            return True
        bare = entry[1:-1] if entry.startswith("[") and entry.endswith("]") else entry
        if bare == hostname:
            return True
    return False


def region_of(api_host: str) -> str:
    """``eu01`` from ``https://api-eu01.central.sophos.com`` or ``http://127.0.0.1:8/region/eu01``."""
    parts = urlsplit(api_host)
    hostname = parts.hostname or ""
    if hostname.startswith("api-") and "." in hostname:
        return hostname[4:].split(".", 1)[0]
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) >= 2 and segments[-2] == "region":
        return segments[-1]
    return ""


# --- server clock -----------------------------------------------------------------------------

_SKEW: dict[str, float] = {}
_LAST_SKEW: list[float] = [0.0]


def _learn_clock(url: str, date_header: str | None) -> float | None:
    if not date_header:
        return None
    try:
        server = email.utils.parsedate_to_datetime(date_header).timestamp()
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    # Date has whole seconds, truncated: add half a second to centre the estimate.
    skew = server + 0.5 - time.time()
    _SKEW[origin(url)] = skew
    _LAST_SKEW[0] = skew
    return server


def server_now(url: str | None = None) -> float:
    """Unix time by the clock of the server behind ``url`` (as of its last answer)."""
    skew = _SKEW.get(origin(url)) if url else None
    return time.time() + (_LAST_SKEW[0] if skew is None else skew)


# --- tokens -----------------------------------------------------------------------------------

TOKEN_EARLY_RENEWAL = 120.0  # seconds before expiry at which a cached token is no longer used
_TOKENS: dict[tuple[str, str, str], tuple[str, float]] = {}
_ID_TYPES: dict[tuple[str, str, str], str] = {}
_TOKENS_LOCK = threading.Lock()


def credential_key(token_url: str, client_id: str, secret: str) -> tuple[str, str, str]:
    return (token_url, client_id, hashlib.sha256(secret.encode("utf-8")).hexdigest())


def cached_token(key: tuple[str, str, str]) -> str | None:
    with _TOKENS_LOCK:
        entry = _TOKENS.get(key)
    if entry and entry[1] > time.monotonic():
        return entry[0]
    return None


def store_token(key: tuple[str, str, str], token: str, expires_in: float) -> None:
    margin = TOKEN_EARLY_RENEWAL if expires_in > 2 * TOKEN_EARLY_RENEWAL else expires_in / 2
    with _TOKENS_LOCK:
        _TOKENS[key] = (token, time.monotonic() + expires_in - margin)


def drop_token(key: tuple[str, str, str], token: str) -> None:
    """Forget ``token`` (refused by the server); a newer token fetched meanwhile is kept."""
    with _TOKENS_LOCK:
        if _TOKENS.get(key, ("",))[0] == token:
            del _TOKENS[key]


def remember_id_type(key: tuple[str, str, str], id_type: str) -> None:
    with _TOKENS_LOCK:
        _ID_TYPES[key] = id_type


def known_id_type(key: tuple[str, str, str]) -> str | None:
    with _TOKENS_LOCK:
        return _ID_TYPES.get(key)


# pages.maxSize of the Common Alerts API per origin, learnt from answers.
ALERTS_MAX_SIZE: dict[str, int] = {}


def clear_token_cache() -> None:
    """Forget every cached token, credential type, clock offset and page size (tests)."""
    with _TOKENS_LOCK:
        _TOKENS.clear()
        _ID_TYPES.clear()
    _SKEW.clear()
    _LAST_SKEW[0] = 0.0
    ALERTS_MAX_SIZE.clear()


# --- requests -----------------------------------------------------------------------------------


@dataclass
class Reply:
    """A complete HTTP answer: status, body bytes, headers and, for a 2xx JSON body, ``data``."""

    status: int
    body: bytes
    headers: Mapping[str, str]
    url: str
    server_time: float | None = None
    data: Any = None


class _Retry(Exception):
    """One attempt failed in a way worth another try; ``error`` is what to raise if none is left."""

    def __init__(self, error: CollectionError, wait: float | None = None):
        super().__init__(error.message)
        self.error = error
        self.wait = wait


class Transport:
    """One ``requests.Session`` with this product's timeouts, retries and error classification.

    ``deadline`` (a ``time.monotonic()`` value) bounds everything, retries and waits included: past
    it a call fails as a timeout. ``sleep`` is injectable so tests can check waits without waiting.
    """

    def __init__(
        self,
        *,
        verify: bool | str = True,
        timeout: tuple[float, float] | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        retry_after_cap: float | None = None,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.verify = verify
        self.timeout = tuple(timeout or TIMEOUT)
        self.retries = max(1, RETRIES if retries is None else retries)
        self.backoff = BACKOFF if backoff is None else backoff
        self.retry_after_cap = RETRY_AFTER_CAP if retry_after_cap is None else retry_after_cap
        self.deadline = deadline
        self.sleep = sleep
        self.requests_made = 0
        self._session: requests.Session | None = None

    @property
    def session(self) -> requests.Session:
        if self._session is None:
            session = requests.Session()
            # Our retry loop decides what to retry; urllib3 must not retry behind its back.
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=4, max_retries=0)
            session.mount("https://", adapter)
            session.mount("http://", adapter)
            session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
            session.verify = self.verify
            # Proxies from the environment still apply; a netrc must not add credentials.
            session.trust_env = True
            self._session = session
        return self._session

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def request(
        self,
        method: str,
        url: str,
        *,
        api: str,
        tenant: Tenant | None = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        decode: bool = True,
    ) -> Reply:
        """Send one call, retrying transient failures; a non-retryable answer is returned as is.

        A 2xx answer has its JSON body decoded into ``Reply.data`` (an unreadable body is retried,
        then raised as ThirdPartyGeneric). 429 and 5xx answers that outlive the retries, timeouts
        and connection errors raise :class:`CollectionError`.
        """
        last: _Retry | None = None
        for attempt in range(self.retries):
            if attempt:
                wait = last.wait
                if wait is None:
                    wait = min(BACKOFF_CAP, self.backoff * 2 ** (attempt - 1))
                    wait *= 0.5 + random.random() / 2
                remaining = self._remaining()
                if remaining is not None and remaining <= wait:
                    break
                if wait > 0:
                    self.sleep(wait)
            try:
                return self._attempt(method, url, api, tenant, params, data, headers, decode)
            except _Retry as retry:
                last = retry
                if retry.wait is not None and retry.wait > self.retry_after_cap:
                    break  # the server asked for a longer pause than a call may take
        assert last is not None
        raise last.error

    def _attempt(self, method, url, api, tenant, params, data, headers, decode) -> Reply:
        timeout = self.timeout
        remaining = self._remaining()
        if remaining is not None:
            if remaining <= 0:
                raise classify.deadline_passed(api=api, tenant=tenant)
            timeout = (min(timeout[0], remaining), min(timeout[1], remaining))
        started = time.monotonic()
        self.requests_made += 1
        try:
            response = self.session.request(
                method,
                url,
                params=params,
                data=data,
                headers=headers,
                timeout=timeout,
                allow_redirects=False,
                # Explicit: with trust_env, requests lets REQUESTS_CA_BUNDLE override session.verify.
                verify=self.verify,
            )
            body = response.content  # reads the whole body: a drop mid-body raises here
        except requests.exceptions.RequestException as exc:
            log.info("sophos %s %s failed: %s", method, urlsplit(url).path, type(exc).__name__)
            raise _Retry(
                classify.transport_error(exc, api=api, tenant=tenant, url=url, timeout=timeout)
            )
        server_time = _learn_clock(url, response.headers.get("Date"))
        status = response.status_code
        log.debug(
            "sophos %s %s -> %s (%d bytes, %.0f ms)",
            method,
            urlsplit(url).path,
            status,
            len(body),
            (time.monotonic() - started) * 1000,
        )
        reply = Reply(status, body, response.headers, url, server_time)
        if status in RETRY_STATUSES:
            error = classify.status_error(reply, api=api, tenant=tenant)
            raise _Retry(error, parse_retry_after(response.headers.get("Retry-After")))
        if decode and 200 <= status < 300:
            try:
                reply.data = orjson.loads(body)
            except ValueError:  # UnicodeDecodeError is a ValueError too
                raise _Retry(classify.malformed(reply, api=api, tenant=tenant))
        return reply
