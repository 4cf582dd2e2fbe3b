"""The ``SumoHTTP`` destination kind: a Sumo Logic HTTP Logs source.

The source's URL *is* the credential (its last path segment is the token), so the URL is the
kind's secret: stored encrypted, shown as ``********``, and never quoted (errors name only the
host; the stored config keeps ``endpoint``, the scheme and host, for lists).

Each message is sent as its raw JSON, one per line, gzipped. Sumo reads its metadata from
request headers, so messages sharing a request must share them: a batch is grouped by

* ``X-Sumo-Category`` ← ``_sourceCategory``,
* ``X-Sumo-Name`` ← ``_source``,
* ``X-Sumo-Host`` ← ``_collector``,
* ``X-Sumo-Fields`` ← ``k=v,k2=v2`` of every other metadata key (``tenant``, custom fields,
  ``_siem*``), sorted by name. ``_sourceName`` (the stream) and ``_index`` have no header and are
  not sent. Sumo has no escaping for these pairs, so a name outside ``[A-Za-z0-9_.-]`` or a value
  holding ``,`` or ``=`` is left out rather than sent wrong.

Groups go in the order of their first message, and messages keep their order within a group
(Sumo orders by message time within a source anyway). Each group is sent in requests of at most
1 MB uncompressed, as Sumo asks; ``send`` returns only when every request was accepted (a
failure re-sends the batch whole, so requests before it may arrive twice).

Header values are stripped of control characters (no header injection) and sent as UTF-8.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from collector.destinations.base import (
    ConfigKey,
    DeliverySession,
    DestinationKind,
    Outgoing,
    SendResult,
)
from collector.destinations.http import (
    ONE_MB,
    HTTPDeliverySession,
    compress,
    host_of,
    raw_json,
    split_sized,
    status_error,
)
from collector.kinds.base import TEXT

LABEL = "Sumo Logic"
HEADER_LIMIT = 1024
_HEADER_KEYS = {"_source", "_sourceCategory", "_collector", "_sourceName", "_index"}
_FIELD_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def header_value(value: Any) -> str | bytes:
    """A metadata value as a header value: no control characters, capped, UTF-8 when not ASCII."""
    text = _CONTROL.sub(" ", "" if value is None else str(value)).strip()[:HEADER_LIMIT]
    return text if text.isascii() else text.encode("utf-8")


def fields_header(metadata: dict[str, Any]) -> str | bytes:
    pairs = []
    for name in sorted(metadata):
        if name in _HEADER_KEYS or not _FIELD_NAME.match(name):
            continue
        value = metadata[name]
        if value is None:
            continue
        if isinstance(value, bool):  # as Sumo writes its own (_siemForward=true)
            value = "true" if value else "false"
        text = _CONTROL.sub(" ", str(value)).strip()
        if "," in text or "=" in text:
            continue  # Sumo cannot read it: left out rather than sent as some other field
        pairs.append(f"{name}={text}")
    return header_value(",".join(pairs))


class SumoSession(HTTPDeliverySession):
    label = LABEL

    def __init__(
        self, *, config: dict[str, Any], secret: str, timeout: tuple[float, float] | None = None
    ):
        super().__init__(ca_bundle=config.get("caBundle") or "", timeout=timeout)
        self.url = (secret or "").strip()
        self.host = host_of(self.url)
        token = urlsplit(self.url).path.rstrip("/").rsplit("/", 1)[-1] if self.url else ""
        self.secrets = (self.url, token)

    def groups(self, batch: Sequence[Outgoing]) -> dict[tuple, list[bytes]]:
        groups: dict[tuple, list[bytes]] = {}
        for message in batch:
            metadata = message.metadata
            key = (
                header_value(metadata.get("_sourceCategory")),
                header_value(metadata.get("_source")),
                header_value(metadata.get("_collector")),
                fields_header(metadata),
            )
            groups.setdefault(key, []).append(raw_json(message.raw))
        return groups

    def send(self, batch: Sequence[Outgoing]) -> SendResult:
        if not batch:
            return SendResult(summary="Nothing to send.")
        requests_sent = 0
        for (category, name, host, fields), lines in self.groups(batch).items():
            headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
            for header, value in (
                ("X-Sumo-Category", category),
                ("X-Sumo-Name", name),
                ("X-Sumo-Host", host),
                ("X-Sumo-Fields", fields),
            ):
                if value:
                    headers[header] = value
            for chunk in split_sized(lines, ONE_MB):
                response = self.http.post(self.url, compress(b"\n".join(chunk)), headers)
                if not 200 <= response.status_code < 300:
                    raise status_error(
                        response, label=LABEL, credential="HTTP source URL", secrets=self.secrets
                    )
                requests_sent += 1
        plural = "" if requests_sent == 1 else "s"
        return SendResult(
            summary=f"{LABEL} accepted {len(batch)} messages in {requests_sent} request{plural}."
        )


class SumoHTTPKind(DestinationKind):
    name = "SumoHTTP"
    label = "Sumo Logic HTTP Logs source"
    description = "Raw messages to a Sumo Logic HTTP Logs source, with their metadata as headers."
    config_keys = {"url": ConfigKey("url", TEXT), "caBundle": ConfigKey("ca_bundle", TEXT)}
    secret_key = "url"
    # One request per batch in the common case: Sumo asks for at most 1 MB per request.
    max_batch_messages = 5000
    max_batch_bytes = ONE_MB

    @property
    def form_class(self):
        from collector.destinations.http_forms import SumoHTTPForm

        return SumoHTTPForm

    def api_config(self, destination) -> dict[str, Any]:
        from collector.crypto import MASK

        return {"url": MASK, "caBundle": (destination.config or {}).get("caBundle", "")}

    def open(self, *, config: dict[str, Any], secret: str, **options: Any) -> DeliverySession:
        """``secret`` is the HTTP source URL; ``options``: ``timeout`` (connect, read)."""
        return SumoSession(config=config, secret=secret, **options)

    def encoded_size(self, message: Outgoing) -> int:
        return len(message.raw) + 1

    def describe(self, destination) -> str:
        endpoint = (destination.config or {}).get("endpoint", "")
        return f"{self.label} at {host_of(endpoint)}" if endpoint else self.label
