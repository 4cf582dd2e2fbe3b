"""The ``Webhook`` destination kind: batches POSTed to any HTTP receiver.

A batch is one ``POST <url>``, as NDJSON (``application/x-ndjson``: one item per line, trailing
newline) or as a JSON array (``application/json``), gzipped unless ``gzip`` is off. Each item:

    {"id": <message id>, "time": "<message time, RFC 3339 UTC>", "metadata": {<metadata>},
     "message": <the raw JSON object>}

plus ``"test": true`` on the clearly marked message of *Send test message*. ``id`` is the stored
message's commit-ordered id: a receiver that wants exactly once can drop ids it has seen.

Any 2xx answer means accepted (the body is not read); other answers and failures are classified
as every HTTP kind's are (:mod:`collector.destinations.http`). Authentication is none, a bearer
token, or basic with ``username`` and the password; custom ``headers`` (not secret: they are shown
back) are sent with every request.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from typing import Any

import orjson

from collector.destinations.base import (
    ConfigKey,
    DeliverySession,
    DestinationKind,
    Outgoing,
    SendResult,
)
from collector.destinations.http import (
    HTTPDeliverySession,
    compress,
    describe_url,
    host_of,
    json_array,
    ndjson,
    raw_value,
    status_error,
)
from collector.kinds.base import BOOLEAN, OBJECT, TEXT

LABEL = "The webhook"


class WebhookSession(HTTPDeliverySession):
    label = LABEL

    def __init__(
        self, *, config: dict[str, Any], secret: str, timeout: tuple[float, float] | None = None
    ):
        super().__init__(ca_bundle=config.get("caBundle") or "", timeout=timeout)
        self.url = str(config.get("url") or "")
        self.host = host_of(self.url)
        self.array = config.get("payload") == "array"
        self.gzip = config.get("gzip") is not False
        headers = {str(k): str(v) for k, v in (config.get("headers") or {}).items()}
        headers["Content-Type"] = "application/json" if self.array else "application/x-ndjson"
        if self.gzip:
            headers["Content-Encoding"] = "gzip"
        auth = config.get("auth") or "none"
        self.secrets: tuple[str, ...] = ()
        if auth == "bearer":
            headers["Authorization"] = f"Bearer {secret}"
            self.secrets = (secret,)
            self.credential = "bearer token"
        elif auth == "basic":
            pair = f"{config.get('username') or ''}:{secret}".encode()
            encoded = base64.b64encode(pair).decode("ascii")
            headers["Authorization"] = f"Basic {encoded}"
            self.secrets = (secret, encoded)
            self.credential = "user name and password"
        else:
            self.credential = "credentials"
        self.headers = headers

    @staticmethod
    def encode(message: Outgoing) -> bytes:
        item = {
            "id": message.id,
            "time": message.message_time,
            "metadata": message.metadata,
            "message": raw_value(message.raw),  # embedded as stored: no parse, no dump
        }
        if message.test:
            item["test"] = True
        return orjson.dumps(item, option=orjson.OPT_UTC_Z)

    def send(self, batch: Sequence[Outgoing]) -> SendResult:
        if not batch:
            return SendResult(summary="Nothing to send.")
        encode = self.encode
        items = [encode(message) for message in batch]
        body = json_array(items) if self.array else ndjson(items)
        response = self.http.post(self.url, compress(body) if self.gzip else body, self.headers)
        if not 200 <= response.status_code < 300:
            raise status_error(
                response, label=LABEL, credential=self.credential, secrets=self.secrets
            )
        plural = "" if len(batch) == 1 else "s"
        return SendResult(
            summary=f"{self.host} accepted {len(batch)} message{plural} (HTTP {response.status_code})."
        )


class WebhookKind(DestinationKind):
    name = "Webhook"
    label = "HTTP webhook"
    description = "Batches of JSON messages POSTed to any HTTP receiver, as NDJSON or an array."
    config_keys = {
        "url": ConfigKey("url", TEXT),
        "payload": ConfigKey("payload", TEXT),
        "headers": ConfigKey("headers", OBJECT),
        "auth": ConfigKey("auth", TEXT),
        "username": ConfigKey("username", TEXT),
        "token": ConfigKey("token", TEXT),
        "gzip": ConfigKey("gzip", BOOLEAN),
        "caBundle": ConfigKey("ca_bundle", TEXT),
    }
    secret_key = "token"
    max_batch_messages = 2000
    max_batch_bytes = 2_000_000

    @property
    def form_class(self):
        from collector.destinations.http_forms import WebhookForm

        return WebhookForm

    def api_config(self, destination) -> dict[str, Any]:
        from collector.crypto import MASK

        config = destination.config or {}
        auth = config.get("auth") or "none"
        return {
            "url": config.get("url", ""),
            "payload": config.get("payload", "ndjson"),
            "headers": dict(config.get("headers") or {}),
            "auth": auth,
            "username": config.get("username", ""),
            "token": MASK if auth != "none" and destination.has_secret else "",
            "gzip": config.get("gzip") is not False,
            "caBundle": config.get("caBundle", ""),
        }

    def open(self, *, config: dict[str, Any], secret: str, **options: Any) -> DeliverySession:
        """``options``: ``timeout`` (connect, read) for tests."""
        return WebhookSession(config=config, secret=secret or "", **options)

    def encoded_size(self, message: Outgoing) -> int:
        return (
            len(message.raw)
            + sum(len(k) + len(str(v)) + 6 for k, v in message.metadata.items())
            + 80
        )

    def describe(self, destination) -> str:
        config = destination.config or {}
        payload = "JSON array" if config.get("payload") == "array" else "NDJSON"
        gzip = ", gzip" if config.get("gzip") is not False else ""
        return f"Webhook {describe_url(config.get('url', ''))} · {payload}{gzip}"
