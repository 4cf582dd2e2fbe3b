"""The ``SplunkHEC`` destination kind: Splunk's HTTP Event Collector, JSON events.

Each message becomes one HEC event object; a batch is one ``POST {url}/services/collector/event``
of the objects one after another (newline-separated, gzipped), ``Authorization: Splunk <token>``:

    {"time": 1764583200.123, "host": "<host or _collector>", "source": "<source or _source>",
     "sourcetype": "_json", "index": "<index>", "fields": {<metadata, as strings>},
     "event": <the raw JSON object>}

``time`` is the message time in epoch seconds with milliseconds; an empty ``index`` is left out
(the token's default index applies). ``fields`` are indexed fields: HEC takes only strings (or
lists of strings) there, so every metadata value is sent as a string, with its Sumo name
(``_sourceCategory``...). A batch over 1 MB (the estimate of ``encoded_size`` can be off) is split
into several requests, all acknowledged before ``send`` returns.

With ``ack`` on (indexer acknowledgement), every request carries the ``channel``
(``X-Splunk-Request-Channel``), HEC answers with an ``ackId`` and the session polls
``POST /services/collector/ack`` with ``{"acks": [ids]}`` until every id reads ``true`` or
``ack_timeout`` passes (ThirdPartyGeneric: the batch is sent again, and may then be indexed twice).

HEC's answer codes decide the class where they are clearer than the status: 1-4 (token disabled,
missing, malformed, invalid), 7 (index), 10/11 (channel) and 14 (ack disabled) are
ThirdPartyConfig; 8 (internal error) and 9 (server busy) ThirdPartyGeneric; 5, 6, 12, 13 and 15
(the event was malformed) FirstPartyGeneric: that would be our bug.
"""

from __future__ import annotations

import time
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
    CONFIG,
    GENERIC,
    ONE_MB,
    OURS,
    RETRY_LATER,
    HTTPDeliverySession,
    compress,
    describe_url,
    host_of,
    metadata_strings,
    parse_retry_after,
    raw_value,
    receiver_text,
    split_sized,
    status_error,
    unexpected_answer,
)
from collector.errors import CollectionError
from collector.kinds.base import BOOLEAN, TEXT

LABEL = "Splunk HEC"
ACK_TIMEOUT = 120.0  # seconds a batch may wait for its indexer acknowledgement
ACK_POLL = (0.05, 2.0)  # first and longest wait between ack polls, doubling in between

# HEC answer codes (Splunk's "Format events for HTTP Event Collector" troubleshooting table).
_CODE_CONFIG = {
    1: ("the token is disabled", "Enable the HEC token in Splunk, or enter another one."),
    2: ("the token is missing", "Edit the destination and enter the HEC token."),
    3: ("the authorization is malformed", "Edit the destination and enter the HEC token again."),
    4: ("the token is not valid", "Edit the destination and enter a valid HEC token."),
    7: (
        "the index is not allowed",
        "Check that the index exists and is among the token's allowed indexes.",
    ),
    10: ("a data channel is required", "Edit the destination and set a channel (a GUID)."),
    11: ("the data channel is not valid", "Edit the destination and set a valid channel GUID."),
    14: (
        "indexer acknowledgement is off for this token",
        "Turn off acknowledgement on the destination, or turn it on for the token in Splunk.",
    ),
}
_CODE_GENERIC = {8: "it had an internal error", 9: "it is busy"}
_CODE_OURS = {5: "no data", 6: "invalid data format", 12: "event field is required",
              13: "event field cannot be blank", 15: "error in handling indexed fields"}  # fmt: skip


class HECSession(HTTPDeliverySession):
    label = LABEL

    def __init__(
        self,
        *,
        config: dict[str, Any],
        secret: str,
        timeout: tuple[float, float] | None = None,
        ack_timeout: float = ACK_TIMEOUT,
        ack_poll: tuple[float, float] = ACK_POLL,
    ):
        super().__init__(ca_bundle=config.get("caBundle") or "", timeout=timeout)
        base = str(config.get("url") or "").rstrip("/")
        self.event_url = f"{base}/services/collector/event"
        self.ack_url = f"{base}/services/collector/ack"
        self.host = host_of(base)
        self.secrets = (secret,)
        self.ack = bool(config.get("ack"))
        self.ack_timeout = ack_timeout
        self.ack_poll = ack_poll
        self.headers = {"Authorization": f"Splunk {secret}", "Content-Type": "application/json"}
        channel = str(config.get("channel") or "")
        if channel:
            self.headers["X-Splunk-Request-Channel"] = channel
        self.post_headers = {**self.headers, "Content-Encoding": "gzip"}
        # Fixed event keys; empty ones fall back per message (host, source) or are left out.
        self.index = str(config.get("index") or "")
        self.sourcetype = str(config.get("sourcetype") or "_json")
        self.source = str(config.get("source") or "")
        self.event_host = str(config.get("host") or "")

    def encode(self, message: Outgoing) -> bytes:
        metadata = message.metadata
        head: dict[str, Any] = {"time": round(message.message_time.timestamp(), 3)}
        host = self.event_host or metadata.get("_collector")
        if host:
            head["host"] = str(host)
        source = self.source or metadata.get("_source")
        if source:
            head["source"] = str(source)
        head["sourcetype"] = self.sourcetype
        if self.index:
            head["index"] = self.index
        head["fields"] = metadata_strings(metadata)
        head["event"] = raw_value(message.raw)  # embedded as stored: no parse, no dump
        return orjson.dumps(head)

    def send(self, batch: Sequence[Outgoing]) -> SendResult:
        if not batch:
            return SendResult(summary="Nothing to send.")
        events = [self.encode(message) for message in batch]
        ack_ids: list[int] = []
        for chunk in split_sized(events, ONE_MB):
            response = self.http.post(
                self.event_url, compress(b"\n".join(chunk)), self.post_headers
            )
            answer = self._answer(response)
            if self.ack:
                ack_id = answer.get("ackId")
                if not isinstance(ack_id, int):
                    raise CollectionError(
                        CONFIG,
                        f"{LABEL} at {self.host} accepted the events but sent no ackId: "
                        "indexer acknowledgement is off for this token.",
                        remedy="Turn off acknowledgement on the destination, or turn it on for "
                        "the token in Splunk.",
                        status=response.status_code,
                        api=LABEL,
                    )
                ack_ids.append(ack_id)
        if ack_ids:
            self._wait_for_acks(ack_ids)
            return SendResult(summary=f"{LABEL} indexed {len(batch)} events (acknowledged).")
        return SendResult(summary=f"{LABEL} accepted {len(batch)} events.")

    def _answer(self, response) -> dict:
        """The JSON answer of a successful request; raises the classified failure otherwise."""
        try:
            data = orjson.loads(response.content) if response.content else {}
        except orjson.JSONDecodeError:
            data = None
        code = data.get("code") if isinstance(data, dict) else None
        if 200 <= response.status_code < 300 and code in (0, None) and isinstance(data, dict):
            return data
        if 200 <= response.status_code < 300 and not isinstance(data, dict):
            raise unexpected_answer(response, label=LABEL, what="not with a JSON object")
        if not isinstance(code, int):
            raise status_error(response, label=LABEL, credential="HEC token", secrets=self.secrets)
        _, text = receiver_text(response, self.secrets)
        said = f" (HTTP {response.status_code}, code {code}{f': {text}' if text else ''})"
        if code in _CODE_CONFIG:
            why, remedy = _CODE_CONFIG[code]
            error_type, message = CONFIG, f"{LABEL} at {self.host} refused the events: {why}{said}."
        elif code in _CODE_GENERIC:
            error_type, remedy = GENERIC, RETRY_LATER
            message = (
                f"{LABEL} at {self.host} could not take the events: {_CODE_GENERIC[code]}{said}."
            )
        elif code in _CODE_OURS:
            event = data.get("invalid-event-number")
            which = f" (event {event} of the request)" if isinstance(event, int) else ""
            error_type, remedy = OURS, "Report this to the Sumo Sources maintainers."
            message = f"{LABEL} at {self.host} found the events malformed{which}{said}."
        else:
            raise status_error(response, label=LABEL, credential="HEC token", secrets=self.secrets)
        return_after = None
        if error_type is GENERIC:
            return_after = parse_retry_after(response.headers.get("Retry-After"))
        raise CollectionError(
            error_type,
            message,
            remedy=remedy,
            status=response.status_code,
            vendor_code=str(code),
            api=LABEL,
            retry_after=return_after,
        )

    def _wait_for_acks(self, ack_ids: list[int]) -> None:
        pending = set(ack_ids)
        deadline = time.monotonic() + self.ack_timeout
        delay = self.ack_poll[0]
        while True:
            body = orjson.dumps({"acks": sorted(pending)})
            answer = self._answer(self.http.post(self.ack_url, body, self.headers))
            acks = answer.get("acks")
            if not isinstance(acks, dict):
                raise CollectionError(
                    GENERIC,
                    f"{LABEL} at {self.host} answered the acknowledgement poll without acks.",
                    remedy=RETRY_LATER,
                    api=LABEL,
                )
            pending -= {int(key) for key, done in acks.items() if done is True and key.isdigit()}
            if not pending:
                return
            if time.monotonic() + delay > deadline:
                raise CollectionError(
                    GENERIC,
                    f"{LABEL} at {self.host} did not confirm indexing of {len(pending)} of "
                    f"{len(ack_ids)} requests within {self.ack_timeout:g} seconds.",
                    remedy="The batch is sent again (it may be indexed twice); check the "
                    "indexers' health if this persists.",
                    api=LABEL,
                )
            time.sleep(delay)  # waiting for the indexers, not a race: the deadline bounds it
            delay = min(delay * 2, self.ack_poll[1])


class SplunkHECKind(DestinationKind):
    name = "SplunkHEC"
    label = "Splunk HTTP Event Collector"
    description = (
        "JSON events to a Splunk HTTP Event Collector, optionally with indexer acknowledgement."
    )
    config_keys = {
        "url": ConfigKey("url", TEXT),
        "token": ConfigKey("token", TEXT),
        "index": ConfigKey("index", TEXT),
        "sourcetype": ConfigKey("sourcetype", TEXT),
        "source": ConfigKey("source", TEXT),
        "host": ConfigKey("host", TEXT),
        "channel": ConfigKey("channel", TEXT),
        "ack": ConfigKey("ack", BOOLEAN),
        "caBundle": ConfigKey("ca_bundle", TEXT),
    }
    secret_key = "token"
    # 1 MB per request keeps well inside HEC's max_content_length everywhere, and a re-sent batch
    # (after a failed ack, say) costs little.
    max_batch_messages = 1000
    max_batch_bytes = ONE_MB

    @property
    def form_class(self):
        from collector.destinations.http_forms import SplunkHECForm

        return SplunkHECForm

    def api_config(self, destination) -> dict[str, Any]:
        from collector.crypto import MASK

        config = destination.config or {}
        return {
            "url": config.get("url", ""),
            "token": MASK,
            "index": config.get("index", ""),
            "sourcetype": config.get("sourcetype", "_json"),
            "source": config.get("source", ""),
            "host": config.get("host", ""),
            "channel": config.get("channel", ""),
            "ack": bool(config.get("ack")),
            "caBundle": config.get("caBundle", ""),
        }

    def open(self, *, config: dict[str, Any], secret: str, **options: Any) -> DeliverySession:
        """``options``: ``timeout`` (connect, read), ``ack_timeout``, ``ack_poll`` (tests)."""
        return HECSession(config=config, secret=secret or "", **options)

    def encoded_size(self, message: Outgoing) -> int:
        return (
            len(message.raw)
            + sum(len(k) + len(str(v)) + 6 for k, v in message.metadata.items())
            + 120
        )

    def describe(self, destination) -> str:
        config = destination.config or {}
        index = config.get("index")
        where = f"index {index}" if index else "the token's default index"
        ack = ", acknowledged" if config.get("ack") else ""
        return f"{LABEL} {describe_url(config.get('url', ''))} · {where}{ack}"
