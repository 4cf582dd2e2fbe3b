"""What the HTTP destination kinds share: one keep-alive session per delivery run, TLS trust from a
``caBundle``, timeouts, gzip, size-bounded requests, and one classification of failures.

Classification (design section 11), for every HTTP kind alike:

* refused credentials (401, 403), a wrong address (404, redirects, which are never followed: a
  token must not travel to an address nobody typed) and other 4xx answers are
  ``ThirdPartyConfig``: sending the same bytes again cannot help, an edit can;
* timeouts, refused or reset connections, TLS failures, 408, 429 and 5xx are
  ``ThirdPartyGeneric`` (``retry_after`` from a ``Retry-After`` header, delta seconds or an HTTP
  date); a TLS failure is Generic because a receiver that renews its certificate mends it without
  an edit;
* what is ours (a header we could not encode) is ``FirstPartyGeneric``.

Error sentences name the kind, the host and the HTTP status; receiver text is quoted only through
:func:`collector.redact.redact` with the session's secrets, and capped. No URL path or query is
ever quoted (a Sumo Logic HTTP source URL carries its secret in the path).

Requests are not retried here: a failed batch raises and the delivery engine sends it again whole
with its own backoff, so retry policy lives in one place.
"""

from __future__ import annotations

import email.utils
import gzip
import ipaddress
import os
import tempfile
import time
import weakref
from collections.abc import Iterable, Iterator, Sequence
from typing import Any
from urllib.parse import urlsplit

import orjson
import requests
from requests.adapters import HTTPAdapter

import sumosources
from collector.choices import ErrorType
from collector.destinations.base import DeliverySession
from collector.errors import CollectionError
from collector.redact import redact

CONFIG = ErrorType.THIRD_PARTY_CONFIG
GENERIC = ErrorType.THIRD_PARTY_GENERIC
OURS = ErrorType.FIRST_PARTY_GENERIC

USER_AGENT = f"SumoSources/{sumosources.__version__} (python-requests/{requests.__version__})"
# (connect, read) seconds for every request; tests pass a shorter ``timeout`` to ``open()``.
TIMEOUT: tuple[float, float] = (5.0, 30.0)
# Level 1 compresses JSON about 5-8x at several times the speed of level 6: delivery is bound by
# CPU long before a LAN link is full.
GZIP_LEVEL = 1
QUOTE_LIMIT = 200  # characters of a receiver's own words quoted in an error
ONE_MB = 1_000_000

RETRY_LATER = "Nothing to do: delivery is retried automatically."
CHECK_NETWORK = (
    "Check that the receiver is up and reachable from this machine (address, port, firewall, "
    "proxy); delivery is retried automatically."
)
CHECK_URL = "Edit the destination and check its URL."


# --- small pure helpers -----------------------------------------------------------------------
def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent or
    unreadable. Capped at a day: a receiver must not park a destination for longer."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 86400.0))


def host_of(url: str) -> str:
    """``host[:port]`` of ``url``, without user info, path or query (which may hold secrets)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return "the receiver"
    if ":" in host:
        host = f"[{host}]"
    return f"{host}:{port}" if port else (host or "the receiver")


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an address) is this machine: plain http is allowed only there."""
    host = (host or "").strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def compress(body: bytes) -> bytes:
    """``body`` gzipped (mtime 0: the same bytes give the same body, and it is the fast path)."""
    return gzip.compress(body, compresslevel=GZIP_LEVEL, mtime=0)


def split_sized(
    items: Sequence[bytes], limit: int, *, separator: int = 1, framing: int = 0
) -> Iterator[Sequence[bytes]]:
    """Consecutive runs of ``items`` whose joined size (``separator`` bytes per item, plus
    ``framing`` once per request) stays within ``limit``. An item that alone exceeds the limit
    travels alone: the receiver's answer to it is classified like any other."""
    start, size = 0, framing
    for index, item in enumerate(items):
        cost = len(item) + separator
        if index > start and size + cost > limit:
            yield items[start:index]
            start, size = index, framing
        size += cost
    if start < len(items):
        yield items[start:]


def ndjson(items: Iterable[bytes]) -> bytes:
    """Newline-delimited JSON with the trailing newline ``_bulk`` and NDJSON readers expect."""
    body = b"\n".join(items)
    return body + b"\n" if body else body


def json_array(items: Iterable[bytes]) -> bytes:
    return b"[" + b",".join(items) + b"]"


def raw_json(raw: str) -> bytes:
    """A stored message's raw JSON as bytes, on one line (see :func:`raw_value`)."""
    if "\n" in raw or "\r" in raw:
        return orjson.dumps(orjson.loads(raw))
    return raw.encode("utf-8")


def raw_value(raw: str) -> Any:
    """A stored message's raw JSON as a value for ``orjson.dumps`` to embed.

    The ingest stores compact JSON (one line), so it is embedded as it is (an ``orjson.Fragment``:
    no parse and no dump per message); a raw with a line break (stored by something else) is
    parsed, so that line-delimited bodies stay one message per line."""
    if "\n" in raw or "\r" in raw:
        return orjson.loads(raw)
    return orjson.Fragment(raw)


def metadata_strings(metadata: dict[str, Any]) -> dict[str, Any]:
    """Metadata with every value a string (or a list of strings); None values left out. Receivers
    with typed indexed fields (Splunk HEC) accept nothing else."""
    out: dict[str, Any] = {}
    for key, value in metadata.items():
        if value is None:
            continue
        if isinstance(value, list | tuple):
            out[key] = [str(v) for v in value if v is not None]
        elif isinstance(value, bool):
            out[key] = "true" if value else "false"
        else:
            out[key] = value if isinstance(value, str) else str(value)
    return out


def receiver_text(response: requests.Response, secrets: Sequence[str] = ()) -> tuple[str, str]:
    """(code, message) the receiver gave in its answer body, redacted and capped; '' if none.

    Reads the usual shapes: ``{"text", "code"}`` (Splunk), ``{"error": {"type", "reason"}}``
    (Elasticsearch), ``{"error": {"code", "message"}}`` (Azure), ``{"error",
    "error_description"}`` (OAuth2), ``{"message"}``, or else the first words of a text body."""
    code = message = ""
    try:
        data = orjson.loads(response.content) if response.content else None
    except (orjson.JSONDecodeError, requests.RequestException):
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            code = error.get("code") or error.get("type") or ""
            message = error.get("message") or error.get("reason") or ""
            causes = error.get("root_cause")
            if not message and isinstance(causes, list) and causes and isinstance(causes[0], dict):
                message = causes[0].get("reason") or ""
        elif isinstance(error, str):
            code = error
            message = data.get("error_description") or ""
        if not message:
            message = data.get("text") or data.get("message") or data.get("detail") or ""
        if not code and data.get("code") not in (None, ""):
            code = data.get("code")
    elif data is None and response.content:
        message = response.content[:400].decode("utf-8", "replace")
    secrets = tuple(s for s in secrets if s)
    return (
        redact(str(code), secrets=secrets, limit=64),
        redact(str(message), secrets=secrets, limit=QUOTE_LIMIT),
    )


# --- classification ---------------------------------------------------------------------------
def status_error(
    response: requests.Response,
    *,
    label: str,
    credential: str = "credentials",
    secrets: Sequence[str] = (),
    code: str | None = None,
    message: str | None = None,
) -> CollectionError:
    """The classified failure for a non-2xx answer (see the module docstring).

    ``code`` and ``message`` override what is read from the body (already redacted)."""
    status = response.status_code
    host = host_of(response.url or "")
    if code is None or message is None:
        read_code, read_message = receiver_text(response, secrets)
        code = read_code if code is None else code
        message = read_message if message is None else message
    said = f": {message}" if message else ""
    what = f"HTTP {status}{f' {code}' if code and code not in message else ''}{said}"
    retry_after = None
    if status == 429 or status >= 500:
        retry_after = parse_retry_after(response.headers.get("Retry-After"))
    if status == 401:
        error_type, text = CONFIG, f"{label} at {host} rejected the {credential} ({what})."
        remedy = f"Edit the destination and check the {credential}."
    elif status == 403:
        error_type, text = CONFIG, f"{label} at {host} refused access ({what})."
        remedy = f"Check that the {credential} may write there, then edit the destination."
    elif 300 <= status < 400:
        target = host_of(response.headers.get("Location") or "")
        error_type = CONFIG
        text = f"{label} at {host} redirected the request to {target} (HTTP {status}); redirects are not followed."
        remedy = "Edit the destination and enter the final address as its URL."
    elif status == 404:
        error_type, text, remedy = (
            CONFIG,
            f"{label} at {host} has no such endpoint ({what}).",
            CHECK_URL,
        )
    elif status == 408 or status == 429 or status >= 500:
        error_type, remedy = GENERIC, RETRY_LATER
        if status == 429:
            text = f"{label} at {host} is throttling deliveries ({what})."
        else:
            text = f"{label} at {host} failed to take the batch ({what})."
        if retry_after is not None:
            text = f"{text[:-1]}; it asked to wait {retry_after:g} seconds."
    elif status == 413:
        error_type, text = CONFIG, f"{label} at {host} refused the request as too large ({what})."
        remedy = "Raise the receiver's request size limit; delivery waits for an edit."
    else:
        error_type, text = CONFIG, f"{label} at {host} refused the request ({what})."
        remedy = "Check the destination's settings against the receiver's, then edit it."
    return CollectionError(
        error_type,
        text,
        remedy=remedy,
        status=status,
        vendor_code=str(code or ""),
        api=label,
        retry_after=retry_after,
    )


def transport_error(
    exc: requests.RequestException,
    *,
    label: str,
    url: str,
    timeout: tuple[float, float],
) -> CollectionError:
    """A failure below HTTP, in words that name the host and never quote the exception (its text
    holds the URL, and a URL may hold a secret)."""
    host = host_of(url)
    text_of = str(exc).lower()
    error_type, remedy = GENERIC, CHECK_NETWORK
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        message = f"Could not connect to {label} at {host} within {timeout[0]:g} seconds."
    elif isinstance(exc, requests.exceptions.ReadTimeout) or (
        isinstance(exc, requests.exceptions.ConnectionError) and "read timed out" in text_of
    ):
        message = f"{label} at {host} did not answer within {timeout[1]:g} seconds."
    elif isinstance(exc, requests.exceptions.SSLError):
        if "certificate_verify_failed" in text_of or "certificate verify failed" in text_of:
            message = f"The certificate of {label} at {host} is not trusted."
            remedy = (
                "Put the CA certificate that signed the receiver's certificate in the "
                "destination's CA bundle (or fix the receiver's certificate); delivery is retried "
                "automatically."
            )
        elif "hostname" in text_of or "doesn't match" in text_of:
            message = f"The certificate of {label} at {host} is for another host name."
            remedy = "Use the host name the certificate names in the URL, or fix the certificate."
        else:
            message = f"The TLS handshake with {label} at {host} failed."
    elif isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        message = f"The connection to {label} at {host} dropped while its answer was being read."
    elif isinstance(exc, requests.exceptions.InvalidHeader):
        error_type, remedy = OURS, "Report this to the Sumo Sources maintainers."
        message = f"A request header for {label} at {host} could not be encoded."
    elif isinstance(
        exc,
        requests.exceptions.InvalidURL
        | requests.exceptions.MissingSchema
        | requests.exceptions.InvalidSchema,
    ):
        error_type, remedy = CONFIG, CHECK_URL
        message = f"The URL of {label} ({host}) is not a valid http(s) address."
    elif isinstance(exc, requests.exceptions.ConnectionError):
        if "refused" in text_of:
            message = f"Could not connect to {label} at {host}: the connection was refused."
        elif "name or service" in text_of or "resolve" in text_of or "nodename" in text_of:
            message = f"Could not connect to {label}: the host name {host} did not resolve."
        elif any(
            w in text_of
            for w in ("reset", "aborted", "remotedisconnected", "closed", "broken pipe")
        ):
            message = f"{label} at {host} closed or reset the connection without answering."
        else:
            message = f"Could not connect to {label} at {host}."
    else:
        message = f"The request to {label} at {host} failed ({type(exc).__name__})."
    return CollectionError(error_type, message, remedy=remedy, api=label)


# --- the session ------------------------------------------------------------------------------
def _no_netrc(request):
    """An explicit no-op auth: requests then never applies ~/.netrc credentials, which would
    replace the kind's own Authorization header (environment proxies still apply)."""
    return request


def _unlink(path: str) -> None:
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


class HTTPClient:
    """One ``requests.Session`` (keep-alive) for one delivery run, with this product's timeouts
    and TLS trust, that turns every failure below HTTP into a classified error.

    ``ca_bundle`` (PEM text) is written to a temporary file readable only by this process's user
    (``mkstemp`` creates it 0600) and trusted instead of the system store; the file is removed at
    :meth:`close`, or when the client is garbage-collected if nobody closed it.
    """

    def __init__(
        self,
        *,
        label: str,
        ca_bundle: str = "",
        timeout: tuple[float, float] | None = None,
    ):
        self.label = label
        self.timeout: tuple[float, float] = tuple(timeout or TIMEOUT)  # type: ignore[assignment]
        self.verify: bool | str = True
        self._cleanup = None
        self._session = requests.Session()
        self._session.headers["User-Agent"] = USER_AGENT
        # A few pools (Sentinel talks to a token host and an ingestion host); no urllib3 retries:
        # the engine retries whole batches.
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=2, max_retries=0)
        self._session.mount("https://", adapter)
        self._session.mount("http://", adapter)
        if ca_bundle and ca_bundle.strip():
            fd, path = tempfile.mkstemp(prefix="sumosources-ca-", suffix=".pem")
            with os.fdopen(fd, "w", encoding="ascii", errors="replace") as handle:
                handle.write(ca_bundle)
            self.verify = path
            self._cleanup = weakref.finalize(self, _unlink, path)

    def post(
        self, url: str, body: bytes, headers: dict[str, Any], *, auth: Any = None
    ) -> requests.Response:
        """POST ``body``; the response is read whole. Raises a classified CollectionError for any
        failure below HTTP; any HTTP status is returned for the caller to judge."""
        try:
            return self._session.post(
                url,
                data=body,
                headers=headers,
                auth=auth or _no_netrc,
                timeout=self.timeout,
                verify=self.verify,
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            raise transport_error(exc, label=self.label, url=url, timeout=self.timeout) from None
        except UnicodeEncodeError:
            raise CollectionError(
                OURS,
                f"A request header for {self.label} at {host_of(url)} could not be encoded.",
                remedy="Report this to the Sumo Sources maintainers.",
                api=self.label,
            ) from None

    def close(self) -> None:
        self._session.close()
        if self._cleanup is not None:
            self._cleanup()


class HTTPDeliverySession(DeliverySession):
    """A delivery session over one :class:`HTTPClient`; kinds implement ``send``."""

    label = "The receiver"

    def __init__(self, *, ca_bundle: str = "", timeout: tuple[float, float] | None = None):
        self.http = HTTPClient(label=self.label, ca_bundle=ca_bundle, timeout=timeout)

    def close(self) -> None:
        self.http.close()


def unexpected_answer(response: requests.Response, *, label: str, what: str) -> CollectionError:
    """A 2xx answer we cannot read (a proxy's page, a cut body): retrying is the safe course."""
    return CollectionError(
        GENERIC,
        f"{label} at {host_of(response.url or '')} answered HTTP {response.status_code} but "
        f"{what}.",
        remedy=RETRY_LATER,
        status=response.status_code,
        api=label,
    )


def describe_url(url: str) -> str:
    """``scheme://host[:port]/path`` for lists: no user info, no query (it may hold a key)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return ""
    path = parts.path.rstrip("/")
    return f"{parts.scheme}://{host_of(url)}{path}" if parts.scheme else ""
