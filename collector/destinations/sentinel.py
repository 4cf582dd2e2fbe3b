"""The ``SentinelLogsIngestion`` destination kind: Microsoft Sentinel through the Azure Monitor
Logs Ingestion API.

A batch is ``POST {url}/dataCollectionRules/{dcrImmutableId}/streams/{streamName}
?api-version=2023-01-01`` of a JSON array (gzipped; at most 1 MB uncompressed per request, the
API's limit: a larger batch is split, every request acknowledged before ``send`` returns), with
``Authorization: Bearer <token>``. 204 (or any 2xx) means accepted.

Each message is one record; the rule's stream (and the custom table behind it) needs these
columns:

===============  ========  ====================================================
TimeGenerated    datetime  the message time
RawData          string    the vendor's JSON, as stored
SourceCategory   string    ``_sourceCategory``
Source           string    ``_source``
Collector        string    ``_collector``
SourceName       string    ``_sourceName`` (the stream)
Tenant           string    ``tenant``
SiemEventId      string    ``_siemEventID`` (empty when not forwarded to SIEM)
Index            string    ``_index`` (health-event records only)
ReceiptTime      datetime  when it was collected
MessageId        long      the stored message's id
Fields           dynamic   every other metadata key (custom fields, ``_siem*``)
===============  ========  ====================================================

**Token.** OAuth2 client credentials against ``tokenUrl`` (``grant_type=client_credentials``,
``client_id``, ``client_secret``, ``scope=https://monitor.azure.com//.default``; the
``.azure.us`` and ``.azure.cn`` clouds get their own scope, read from the endpoint's host). The
token is cached per process, keyed by token URL, client id, scope and a hash of the secret (never
the secret), until :data:`TOKEN_MARGIN` before it expires, so many delivery runs share one. A
401 from the ingestion endpoint drops the token and retries the request once with a new one;
the token endpoint's 400/401 (``invalid_client`` and the other OAuth2 errors) is
ThirdPartyConfig.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode, urlsplit

import orjson

from collector.destinations.base import (
    ConfigKey,
    DeliverySession,
    DestinationKind,
    Outgoing,
    SendResult,
)
from collector.destinations.http import (
    CONFIG,
    ONE_MB,
    HTTPDeliverySession,
    compress,
    host_of,
    json_array,
    receiver_text,
    split_sized,
    status_error,
    unexpected_answer,
)
from collector.errors import CollectionError
from collector.kinds.base import TEXT

LABEL = "Azure Monitor"
TOKEN_LABEL = "The Microsoft identity platform"
API_VERSION = "2023-01-01"
TOKEN_MARGIN = 300.0  # seconds before expiry when a cached token is no longer used
_KNOWN = {"_source", "_sourceCategory", "_collector", "_sourceName", "_index", "_siemEventID",
          "tenant"}  # fmt: skip
_OAUTH_CONFIG_ERRORS = {
    "invalid_client", "unauthorized_client", "invalid_request", "invalid_scope", "invalid_grant",
    "unsupported_grant_type",
}  # fmt: skip

# Process-wide token cache: key -> (access token, monotonic expiry).
_TOKENS: dict[tuple[str, str, str, str], tuple[str, float]] = {}
_TOKENS_LOCK = threading.Lock()


def clear_token_cache() -> None:
    with _TOKENS_LOCK:
        _TOKENS.clear()


def scope_for(endpoint: str) -> str:
    host = (urlsplit(endpoint).hostname or "").lower()
    if host.endswith(".azure.us"):
        return "https://monitor.azure.us//.default"
    if host.endswith(".azure.cn"):
        return "https://monitor.azure.cn//.default"
    return "https://monitor.azure.com//.default"


def record(message: Outgoing) -> dict[str, Any]:
    """The record of one message (the columns in the module docstring)."""
    metadata = message.metadata
    return {
        "TimeGenerated": message.message_time,
        "RawData": message.raw,
        "SourceCategory": metadata.get("_sourceCategory") or "",
        "Source": metadata.get("_source") or "",
        "Collector": metadata.get("_collector") or "",
        "SourceName": metadata.get("_sourceName") or "",
        "Tenant": metadata.get("tenant") or "",
        "SiemEventId": metadata.get("_siemEventID") or "",
        "Index": metadata.get("_index") or "",
        "ReceiptTime": message.receipt_time,
        "MessageId": message.id,
        "Fields": {k: v for k, v in metadata.items() if k not in _KNOWN},
    }


class SentinelSession(HTTPDeliverySession):
    label = LABEL

    def __init__(
        self, *, config: dict[str, Any], secret: str, timeout: tuple[float, float] | None = None
    ):
        super().__init__(ca_bundle=config.get("caBundle") or "", timeout=timeout)
        endpoint = str(config.get("url") or "").rstrip("/")
        self.host = host_of(endpoint)
        self.url = (
            f"{endpoint}/dataCollectionRules/{config.get('dcrImmutableId', '')}"
            f"/streams/{config.get('streamName', '')}?api-version={API_VERSION}"
        )
        self.token_url = str(config.get("tokenUrl") or "")
        self.client_id = str(config.get("clientId") or "")
        self.secret = secret or ""
        self.scope = scope_for(endpoint)
        self.cache_key = (
            self.token_url,
            self.client_id,
            self.scope,
            hashlib.sha256(self.secret.encode("utf-8")).hexdigest(),
        )
        self.token_requests = 0  # for tests and the summary of a test message

    # --- the token ----------------------------------------------------------------------------
    def token(self) -> str:
        with _TOKENS_LOCK:
            cached = _TOKENS.get(self.cache_key)
        if cached and cached[1] > time.monotonic():
            return cached[0]
        return self._fetch_token()

    def drop_token(self, token: str) -> None:
        with _TOKENS_LOCK:
            if _TOKENS.get(self.cache_key, ("",))[0] == token:
                del _TOKENS[self.cache_key]

    def _fetch_token(self) -> str:
        body = urlencode(
            {
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self.secret,
                "scope": self.scope,
            }
        ).encode("ascii")
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "Accept": "application/json",
        }
        self.token_requests += 1
        response = self.http.post(self.token_url, body, headers)
        secrets = (self.secret,)
        if response.status_code in (400, 401):
            code, text = receiver_text(response, secrets)
            if code in _OAUTH_CONFIG_ERRORS or response.status_code == 401:
                said = f"{code}: {text}" if text else code or f"HTTP {response.status_code}"
                raise CollectionError(
                    CONFIG,
                    f"{TOKEN_LABEL} at {host_of(self.token_url)} refused the client credentials "
                    f"(HTTP {response.status_code}, {said}).",
                    remedy="Edit the destination and check the token URL (its tenant), the "
                    "application (client) ID and the client secret.",
                    status=response.status_code,
                    vendor_code=code,
                    api="token",
                )
        if not 200 <= response.status_code < 300:
            raise status_error(
                response, label=TOKEN_LABEL, credential="client credentials", secrets=secrets
            )
        try:
            answer = orjson.loads(response.content)
            token = answer["access_token"]
            lifetime = float(answer.get("expires_in", 3600))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            raise unexpected_answer(response, label=TOKEN_LABEL, what="without an access token")
        if not isinstance(token, str) or not token:
            raise unexpected_answer(response, label=TOKEN_LABEL, what="without an access token")
        # Refresh ahead of expiry; for a short-lived token, use at most its first half.
        usable = max(0.0, lifetime - min(TOKEN_MARGIN, lifetime / 2))
        with _TOKENS_LOCK:
            _TOKENS[self.cache_key] = (token, time.monotonic() + usable)
        return token

    # --- ingestion ----------------------------------------------------------------------------
    def send(self, batch: Sequence[Outgoing]) -> SendResult:
        if not batch:
            return SendResult(summary="Nothing to send.")
        records = [orjson.dumps(record(m), option=orjson.OPT_UTC_Z) for m in batch]
        sent = 0
        for chunk in split_sized(records, ONE_MB, separator=1, framing=2):
            self._post(compress(json_array(chunk)))
            sent += 1
        plural = "" if sent == 1 else "s"
        return SendResult(
            summary=f"{LABEL} accepted {len(batch)} records in {sent} request{plural}."
        )

    def _post(self, body: bytes) -> None:
        for attempt in (1, 2):
            token = self.token()
            headers = {
                "Authorization": f"Bearer {token}",
                "Content-Type": "application/json",
                "Content-Encoding": "gzip",
            }
            response = self.http.post(self.url, body, headers)
            if 200 <= response.status_code < 300:
                return
            if response.status_code == 401 and attempt == 1:
                # Revoked or expired early: one new token, one more try.
                self.drop_token(token)
                continue
            secrets = (self.secret, token)
            if response.status_code == 403:
                code, text = receiver_text(response, secrets)
                raise CollectionError(
                    CONFIG,
                    f"{LABEL} at {self.host} refused access (HTTP 403"
                    f"{f', {code}' if code else ''}{f': {text}' if text else ''}).",
                    remedy="Give the application the Monitoring Metrics Publisher role on the "
                    "data collection rule (it can take a few minutes to apply).",
                    status=403,
                    vendor_code=code,
                    api=LABEL,
                )
            error = status_error(response, label=LABEL, credential="access token", secrets=secrets)
            if response.status_code == 401:
                error.remedy = (
                    "A new token was refused too: check that the token URL names the tenant of "
                    "the data collection rule, and the application (client) ID."
                )
            raise error
        raise AssertionError("unreachable")  # pragma: no cover


class SentinelKind(DestinationKind):
    name = "SentinelLogsIngestion"
    label = "Microsoft Sentinel (Logs Ingestion API)"
    description = "Records to a Log Analytics table through a data collection rule."
    config_keys = {
        "url": ConfigKey("url", TEXT),
        "dcrImmutableId": ConfigKey("dcr_immutable_id", TEXT),
        "streamName": ConfigKey("stream_name", TEXT),
        "tokenUrl": ConfigKey("token_url", TEXT),
        "clientId": ConfigKey("client_id", TEXT),
        "clientSecret": ConfigKey("client_secret", TEXT),
        "caBundle": ConfigKey("ca_bundle", TEXT),
    }
    secret_key = "clientSecret"
    max_batch_messages = 2000
    max_batch_bytes = ONE_MB  # the API's limit per request

    @property
    def form_class(self):
        from collector.destinations.http_forms import SentinelForm

        return SentinelForm

    def api_config(self, destination) -> dict[str, Any]:
        from collector.crypto import MASK

        config = destination.config or {}
        return {
            "url": config.get("url", ""),
            "dcrImmutableId": config.get("dcrImmutableId", ""),
            "streamName": config.get("streamName", ""),
            "tokenUrl": config.get("tokenUrl", ""),
            "clientId": config.get("clientId", ""),
            "clientSecret": MASK,
            "caBundle": config.get("caBundle", ""),
        }

    def open(self, *, config: dict[str, Any], secret: str, **options: Any) -> DeliverySession:
        """``options``: ``timeout`` (connect, read) for tests."""
        return SentinelSession(config=config, secret=secret, **options)

    def encoded_size(self, message: Outgoing) -> int:
        # RawData is a JSON string: its quotes escaped, so a little more than the raw itself.
        return (
            len(message.raw) * 11 // 10
            + sum(len(k) + len(str(v)) + 6 for k, v in message.metadata.items())
            + 260
        )

    def describe(self, destination) -> str:
        config = destination.config or {}
        return f"Sentinel {host_of(config.get('url', ''))} · {config.get('streamName', '')}"
