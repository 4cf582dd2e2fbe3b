"""The webhook kind against the strict receiver: both payloads, gzip on and off, custom headers,
the three authentications, redirects not followed."""

from __future__ import annotations

import base64
import dataclasses
import json

import pytest

from collector.choices import ErrorType
from collector.errors import CollectionError
from tests.destinations import http_helpers
from tests.destinations.http_helpers import open_kind, varied_messages
from tests.support.receivers import WEBHOOK, Answer

# Fixtures shared by the HTTP kinds' tests (a conftest here would be shared with others).
receiver = http_helpers.receiver


def _items(batch):
    return [
        {
            "id": m.id,
            "time": m.message_time.isoformat().replace("+00:00", "Z"),
            "metadata": json.loads(json.dumps(m.metadata)),
            "message": json.loads(m.raw),
        }
        for m in batch
    ]


@pytest.mark.parametrize(
    ("payload", "content_type"),
    [("ndjson", "application/x-ndjson"), ("array", "application/json")],
)
def test_items_arrive_as_documented_in_either_payload(receiver, payload, content_type):
    batch = varied_messages(25)
    with open_kind(receiver, "Webhook", payload=payload) as session:
        result = session.send(batch)
    assert result.summary == f"127.0.0.1:{receiver.port} accepted 25 messages (HTTP 200)."
    (seen,) = [s for s in receiver.log if s.protocol == WEBHOOK]
    assert seen.headers["content-type"] == content_type
    assert seen.headers["content-encoding"] == "gzip"
    assert "authorization" not in seen.headers
    assert receiver.webhook_items == _items(batch)


def test_gzip_can_be_turned_off(receiver):
    with open_kind(receiver, "Webhook", gzip=False) as session:
        session.send(varied_messages(5))
    (seen,) = [s for s in receiver.log if s.protocol == WEBHOOK]
    assert "content-encoding" not in seen.headers
    assert seen.wire_size == seen.size
    assert len(receiver.webhook_items) == 5


def test_custom_headers_go_with_every_request(receiver):
    receiver.webhook_headers = {"X-Env": "prod", "X-Team": "soc blue"}
    with open_kind(receiver, "Webhook", headers={"X-Env": "prod", "X-Team": "soc blue"}) as ok:
        ok.send(varied_messages(2))
        ok.send(varied_messages(2, start=5))
    assert len(receiver.webhook_items) == 4
    with (
        open_kind(receiver, "Webhook", headers={"X-Env": "dev"}) as wrong,
        pytest.raises(CollectionError) as caught,
    ):
        wrong.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG and caught.value.status == 400


def test_bearer_authentication(receiver):
    receiver.webhook_auth = "bearer"
    with open_kind(receiver, "Webhook") as session:
        session.send(varied_messages(2))
    (seen,) = [s for s in receiver.log if s.protocol == WEBHOOK]
    assert seen.headers["authorization"] == f"Bearer {receiver.secret}"
    with (
        open_kind(receiver, "Webhook", secret="Other-Token-abc123") as wrong,
        pytest.raises(CollectionError) as caught,
    ):
        wrong.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert "rejected the bearer token" in caught.value.message


def test_basic_authentication(receiver):
    receiver.webhook_auth = "basic"
    with open_kind(receiver, "Webhook") as session:
        session.send(varied_messages(2))
    (seen,) = [s for s in receiver.log if s.protocol == WEBHOOK]
    pair = base64.b64encode(f"hook:{receiver.secret}".encode()).decode()
    assert seen.headers["authorization"] == f"Basic {pair}"
    assert len(receiver.webhook_items) == 2


def test_the_test_message_is_marked(receiver):
    message = dataclasses.replace(varied_messages(1)[0], id=0, test=True)
    with open_kind(receiver, "Webhook") as session:
        session.send([message])
    (item,) = receiver.webhook_items
    assert item["test"] is True and item["id"] == 0


@pytest.mark.parametrize("status", [201, 202, 204])
def test_any_2xx_is_accepted(receiver, status):
    receiver.script(WEBHOOK, Answer(status, b""))
    with open_kind(receiver, "Webhook") as session:
        result = session.send(varied_messages(2))
    assert f"(HTTP {status})" in result.summary


def test_a_redirect_is_not_followed(receiver):
    receiver.script(WEBHOOK, Answer(302, b"", {"Location": "https://elsewhere.example/hook"}))
    with open_kind(receiver, "Webhook") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert "redirected the request to elsewhere.example" in caught.value.message
    assert receiver.requests[WEBHOOK] == 1
