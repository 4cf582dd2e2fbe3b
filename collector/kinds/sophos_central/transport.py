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
import functools
import hashlib
import ipaddress
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

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
#
# A host is judged exactly as the HTTP client will connect to it: the URL is prepared by requests
# (``PreparedRequest.prepare_url``, which IDNA-encodes and re-quotes) and parsed by urllib3
# (``parse_url``, what the connection pool uses), the stdlib's reading of the prepared URL (what
# requests keys its pools by) must agree, and the URL then sent is rebuilt from the components that
# were checked. Anything beyond a plain ``scheme://host[:port][/path]`` of unreserved characters is
# refused outright, so no parser differential (backslashes, userinfo, percent-encoding, IDNA
# look-alikes, trailing dots, odd ports, whitespace) is left to exploit.

# The only characters a URL may hold: letters, digits, ``-._~`` and the delimiters ``:/[]``.
_PLAIN_URL = re.compile(r"[A-Za-z0-9._~:/\[\]-]+")
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_PATH = re.compile(r"(?:/[A-Za-z0-9._~-]+)*")
DEFAULT_PORTS = {"http": 80, "https": 443}
SHOWN_LIMIT = 100


@dataclass(frozen=True)
class CheckedURL:
    """A URL the allow-list accepted, held as the components the client connects to.

    ``host`` is what urllib3 connects to: a lower-case LDH name, a dotted IPv4 address or a
    bracketed IPv6 address; ``port`` is None for the scheme's default; ``path`` is a prefix of
    unreserved characters without a trailing slash. :attr:`url` is the only string to send.
    """

    scheme: str
    host: str
    port: int | None
    path: str = ""

    @property
    def authority(self) -> str:
        return self.host if self.port is None else f"{self.host}:{self.port}"

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.authority}"

    @property
    def url(self) -> str:
        return self.origin + self.path


class HostRefused(ValueError):
    """A URL the allow-list refused. ``shown`` names the host as the client would have connected
    to it (``host[:port]``, escaped), or the escaped URL when no client could parse it;
    ``reason`` is ``outside`` (a plain URL to a host not allowed) or ``malformed``."""

    def __init__(self, shown: str, reason: str):
        super().__init__(f"{reason}: {shown}")
        self.shown = shown
        self.reason = reason


def _escape(char: str) -> str:
    if 0x20 < ord(char) < 0x7F:
        return char
    return "\\x20" if char == " " else ascii(char)[1:-1]


def shown(text: str, limit: int = SHOWN_LIMIT) -> str:
    """``text`` safe to quote in a sentence: printable ASCII only, every other character (space,
    control, non-ASCII) as a Python escape, cut at ``limit`` characters."""
    out = "".join(_escape(char) for char in text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def _readings(url: str):
    """``(target, agreed)``: the ``urllib3.util.Url`` requests would connect to for ``url`` (None
    if requests or urllib3 refuse it), and whether the stdlib's reading of the prepared URL (which
    requests keys its connection pools by) names the same host and port."""
    prepared = requests.models.PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        target = parse_url(prepared.url)
    except (requests.exceptions.RequestException, LocationParseError, ValueError, UnicodeError):
        return None, False
    if not target.host:
        return None, False
    host = target.host.lower()
    bare = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        split = urlsplit(prepared.url)
        agreed = split.hostname == bare and split.port == target.port
    except ValueError:
        agreed = False
    return target, agreed


def connect_target(url: str):
    """The ``urllib3.util.Url`` requests connects to for ``url``; None if it would refuse it."""
    return _readings(url)[0]


def _authority(target) -> str:
    host = (target.host or "").lower()
    return host if target.port is None else f"{host}:{target.port}"


def _ip(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address of an IP literal host (``1.2.3.4`` or ``[::1]``); None for a name."""
    if host.startswith("[") and host.endswith("]"):
        try:
            return ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            return None
    try:
        return ipaddress.IPv4Address(host)
    except ValueError:
        return None


def _is_name(host: str) -> bool:
    """An ASCII LDH host name without a trailing dot, whose last label starts with a letter (so
    resolvers cannot read it as a number: ``127.1``, ``2130706433``, ``1.0x7f``)."""
    labels = host.split(".")
    return (
        len(host) <= 253
        and all(_LABEL.fullmatch(label) for label in labels)
        and labels[-1][:1].isalpha()
    )


def is_sophos_host(hostname: str) -> bool:
    """Whether an (already checked, lower-case) host name is ``sophos.com`` or a subdomain."""
    return hostname == SOPHOS_DOMAIN or hostname.endswith("." + SOPHOS_DOMAIN)


@dataclass(frozen=True)
class _Entry:
    scheme: str | None
    host: str  # a name, or the canonical text of an IP address
    port: int | None


def _host_key(host: str) -> str:
    ip = _ip(host)
    return str(ip) if ip is not None else host


@functools.lru_cache(maxsize=64)
def _entries(extra_hosts: tuple[str, ...]) -> tuple[_Entry, ...]:
    """``SOPHOS_EXTRA_HOSTS`` parsed: ``host``, ``host:port``, ``[v6]:port`` or ``scheme://...``.

    Entries are read by the same parser as URLs; one that is not a plain name or IP address
    (``host`` allows every port, ``host:port`` that port only) is ignored, with a warning.
    """
    entries = []
    for raw in extra_hosts:
        entry = str(raw).strip().lower().rstrip("/")
        if not entry:
            continue
        scheme = None
        if "://" in entry:
            scheme = entry.split("://", 1)[0]
        target, agreed = _readings(entry if scheme else "http://" + entry)
        host = (target.host or "").lower() if target else ""
        if (
            not agreed
            or not _PLAIN_URL.fullmatch(entry)
            or target.auth is not None
            or scheme not in (None, "http", "https")
            or not (_ip(host) or _is_name(host))
        ):
            log.warning("SOPHOS_EXTRA_HOSTS entry %s is not a host[:port]; ignored", shown(entry))
            continue
        entries.append(_Entry(scheme, _host_key(host), target.port))
    return tuple(entries)


def _extra_allows(checked: CheckedURL, extra_hosts: tuple[str, ...]) -> bool:
    key = _host_key(checked.host)
    port = checked.port or DEFAULT_PORTS[checked.scheme]
    return any(
        entry.host == key and entry.port in (None, port) and entry.scheme in (None, checked.scheme)
        for entry in _entries(tuple(extra_hosts))
    )


def check_url(url: Any, extra_hosts: tuple[str, ...] | list[str] = ()) -> CheckedURL:
    """The one check of every URL the client sends to (tokens included): a :class:`CheckedURL`,
    or :class:`HostRefused`.

    A URL without a scheme is read as ``https://``; a Sophos host over ``http`` without a port is
    upgraded to ``https``; host and scheme are lower-cased and one trailing slash is dropped.
    Allowed: ``https`` to ``sophos.com`` or a subdomain on the default port, and any host named in
    ``extra_hosts`` over http or https (an IP literal only if an entry names that address). The URL
    must be plain: ASCII LDH labels or an IP literal, a port of 1-65535 written without a sign or
    leading zero, a path of unreserved characters, and no userinfo, query, fragment, percent-escape,
    backslash, whitespace or any other character.
    """
    if not isinstance(url, str) or not url:
        raise HostRefused(shown(repr(url)), "malformed")
    text = url if "://" in url else "https://" + url
    target, agreed = _readings(text)
    where = shown(_authority(target) if target is not None else text)
    if target is None or not agreed or not _PLAIN_URL.fullmatch(text):
        raise HostRefused(where, "malformed")
    scheme = (target.scheme or "").lower()
    host = (target.host or "").lower()
    path = target.path or ""
    if path.endswith("/"):
        path = path[:-1]
    name = _is_name(host)
    if (
        scheme not in DEFAULT_PORTS
        or target.auth is not None
        or target.query is not None
        or target.fragment is not None
        or not (name or _ip(host) is not None)
        or not _PATH.fullmatch(path)
        or any(segment in (".", "..") for segment in path.split("/"))
    ):
        raise HostRefused(where, "malformed")
    checked = CheckedURL(scheme, host, target.port, path)
    # The string checked must be the string given, up to case and one trailing slash: whatever a
    # parser dropped or mended on the way (an empty or zero port, dot segments) is refused.
    given = text[:-1] if text.endswith("/") else text
    if checked.url.lower() != given.lower():
        raise HostRefused(where, "malformed")
    if checked.port is not None and not 1 <= checked.port <= 65535:
        raise HostRefused(where, "malformed")
    if name and scheme == "http" and checked.port is None and is_sophos_host(host):
        checked = CheckedURL("https", host, None, path)
    if checked.scheme == "https" and checked.port in (None, 443) and name and is_sophos_host(host):
        allowed = True
    else:
        allowed = _extra_allows(checked, tuple(extra_hosts))
    if not allowed:
        raise HostRefused(shown(checked.authority), "outside")
    # What is sent is checked.url: make sure the client reads it as the host and port checked.
    again, agreed = _readings(checked.url)
    if not agreed or (again.host.lower(), again.port) != (checked.host, checked.port):
        raise HostRefused(where, "malformed")
    return checked


def origin(url: str) -> str:
    """``scheme://host[:port]`` of a URL, lower-cased: the unit the clock and page sizes key on."""
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"


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

    Every URL goes through :func:`check_url` against ``extra_hosts`` right before it is sent, and
    the string sent is the one checked: whatever a caller built, nothing leaves for a host outside
    the allow-list. ``deadline`` (a ``time.monotonic()`` value) bounds everything, retries and waits
    included: past it a call fails as a timeout. ``sleep`` is injectable so tests can check waits
    without waiting.
    """

    def __init__(
        self,
        *,
        extra_hosts: tuple[str, ...] | list[str] = (),
        verify: bool | str = True,
        timeout: tuple[float, float] | None = None,
        retries: int | None = None,
        backoff: float | None = None,
        retry_after_cap: float | None = None,
        deadline: float | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.extra_hosts = tuple(extra_hosts)
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
        secrets: tuple[str, ...] = (),
    ) -> Reply:
        """Send one call, retrying transient failures; a non-retryable answer is returned as is.

        A URL the allow-list refuses raises ThirdPartyConfig before any connection is made. A 2xx
        answer has its JSON body decoded into ``Reply.data`` (an unreadable body is retried, then
        raised as ThirdPartyGeneric). 429 and 5xx answers that outlive the retries, timeouts and
        connection errors raise :class:`CollectionError`. ``secrets`` (what the caller sent that
        must never come back in an error: a client secret, a token) are redacted from whatever
        the vendor's answer puts into one.
        """
        try:
            url = check_url(url, self.extra_hosts).url
        except HostRefused as refused:
            raise classify.host_refused(refused, api=api, tenant=tenant)
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
                return self._attempt(
                    method, url, api, tenant, params, data, headers, decode, secrets
                )
            except _Retry as retry:
                last = retry
                if retry.wait is not None and retry.wait > self.retry_after_cap:
                    break  # the server asked for a longer pause than a call may take
        assert last is not None
        raise last.error

    def _attempt(self, method, url, api, tenant, params, data, headers, decode, secrets) -> Reply:
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
            error = classify.status_error(reply, api=api, tenant=tenant, secrets=secrets)
            raise _Retry(error, parse_retry_after(response.headers.get("Retry-After")))
        if decode and 200 <= status < 300:
            try:
                reply.data = orjson.loads(body)
            except ValueError:  # UnicodeDecodeError is a ValueError too
                raise _Retry(classify.malformed(reply, api=api, tenant=tenant, secrets=secrets))
        return reply
