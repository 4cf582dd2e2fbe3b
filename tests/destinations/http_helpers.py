"""Shared pieces of the HTTP destination kinds' tests: the receiver fixture, varied messages, and a
way to open any kind against the receiver.

Kinds are instantiated directly (not through the registry): the other destination kinds are
written in parallel and may not be installed in this tree.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from collector.destinations.base import Outgoing
from collector.destinations.elastic import ElasticBulkKind
from collector.destinations.sentinel import SentinelKind, clear_token_cache
from collector.destinations.splunk_hec import SplunkHECKind
from collector.destinations.sumo_http import SumoHTTPKind
from collector.destinations.webhook import WebhookKind
from tests.support.receivers import Receiver, destination

KINDS = {
    kind.name: kind
    for kind in (SplunkHECKind(), ElasticBulkKind(), SumoHTTPKind(), SentinelKind(), WebhookKind())
}
KIND_NAMES = list(KINDS)
SHORT = (2.0, 0.4)  # (connect, read) for tests whose receiver will not answer

TEXTS = [
    "plain ascii alert",
    "ünïcödé – “curly quotes” and ‘single’ ones",
    "emoji 🛡️🔥 and a flag 🇪🇺",
    "中文 日本語 한국어",
    "RTL עברית العربية \u202e override",
    'a "double quote", a \\ backslash and a \\" pair',
    "new\nline, carriage\r\nreturn and\ttab",
    "control \u0001\u001f characters",
    "</script><b>html</b> & entities &amp;",
    "key=value, comma, equals",
    "",
    "x" * 300,
]
CATEGORIES = ["sophos/east", "sophos/west", "sophos/ünï"]


def varied_messages(count: int = 300, *, start: int = 1001, pad: int = 0) -> list[Outgoing]:
    """``count`` messages unlike each other: unicode, quotes, newlines inside JSON strings, some
    raw JSON stored pretty-printed (line breaks between tokens), metadata that varies (custom
    fields, SIEM fields, health-event records with ``_index``). ``pad`` adds that many bytes."""
    base = dt.datetime(2026, 12, 1, 10, 0, tzinfo=dt.UTC)
    messages = []
    for n in range(count):
        text = TEXTS[n % len(TEXTS)]
        item = {
            "id": f"evt-{n}",
            "type": "Event::Endpoint::Threat::Detected",
            "description": text,
            "nested": {"list": [n, n * 1.5, True, None, text], "deep": {"k": text[:20]}},
            "severity": ["low", "medium", "high"][n % 3],
        }
        if pad:
            item["padding"] = "p" * pad
        if n % 50 == 7:
            raw = json.dumps(item, indent=1, ensure_ascii=False)  # line breaks between tokens
        else:
            raw = json.dumps(item, ensure_ascii=n % 2 == 0, separators=(",", ":"))
        metadata = {
            "_source": ["Sophos East", "Sophos West", "Sophos Ünï"][n % 3],
            "_sourceCategory": CATEGORIES[n % 3],
            "_collector": "Hosted EU",
            "_sourceName": "Alerts" if n % 2 else "Events",
            "tenant": f"Tenant {n % 4}",
        }
        if n % 5 == 0:
            metadata["team"] = "blue"
        if n % 7 == 0:
            metadata["_siemForward"] = True
            metadata["_siemEventID"] = "malware"
        if n % 11 == 0:
            metadata["owner"] = "a,b=c"  # no way to put this in X-Sumo-Fields
        if n % 97 == 0:
            metadata = {**metadata, "_index": "sumologic_system_events"}
        moment = base + dt.timedelta(seconds=n, microseconds=123456)
        messages.append(
            Outgoing(
                id=start + n,
                raw=raw,
                metadata=metadata,
                message_time=moment,
                receipt_time=moment + dt.timedelta(seconds=30),
            )
        )
    return messages


def open_kind(receiver: Receiver, kind_name: str, *, secret=None, options=None, **overrides):
    """A session of ``kind_name`` pointed at ``receiver`` (see receivers.destination)."""
    if secret is not None:
        overrides["secret"] = secret
    config, secret_value = destination(receiver, kind_name, **overrides)
    return KINDS[kind_name].open(config=config, secret=secret_value, **(options or {}))


@pytest.fixture
def receiver():
    clear_token_cache()
    with Receiver() as running:
        yield running
    clear_token_cache()
    assert running.problems == []


@pytest.fixture(scope="session")
def tls_pem(tls_files):
    """(cert path, key path, the certificate's PEM text) of a self-signed 127.0.0.1 certificate."""
    cert, key = tls_files
    with open(cert) as handle:
        return cert, key, handle.read()
