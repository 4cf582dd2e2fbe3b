"""The Splunk HEC kind against the strict receiver: event shape, headers, answer codes, indexer
acknowledgement, and the 1 MB request limit."""

from __future__ import annotations

import json

import pytest

from collector.choices import ErrorType
from collector.destinations.http import metadata_strings
from collector.errors import CollectionError
from tests.destinations import http_helpers
from tests.destinations.http_helpers import open_kind, varied_messages
from tests.support.receivers import HEC, HEC_ACK, Answer

# Fixtures shared by the HTTP kinds' tests (a conftest here would be shared with others).
receiver = http_helpers.receiver

CHANNEL = "0B7A1E2C-3D4F-4A5B-8C6D-7E8F9A0B1C2D"
FAST_ACKS = {"ack_poll": (0.001, 0.01)}


def test_events_have_the_hec_shape_and_the_request_the_hec_headers(receiver):
    batch = varied_messages(40)
    with open_kind(receiver, "SplunkHEC") as session:
        result = session.send(batch)
    assert result.summary == "Splunk HEC accepted 40 events."
    (seen,) = [s for s in receiver.log if s.protocol == HEC]
    assert seen.path == "/services/collector/event"
    assert seen.headers["authorization"] == f"Splunk {receiver.secret}"
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["content-encoding"] == "gzip"
    assert "x-splunk-request-channel" not in seen.headers
    for message, event in zip(batch, receiver.hec_events, strict=True):
        assert event == {
            "time": round(message.message_time.timestamp(), 3),
            "host": "Hosted EU",  # no host configured: the message's _collector
            "source": message.metadata["_source"],
            "sourcetype": "_json",
            "index": "main",
            "fields": metadata_strings(message.metadata),
            "event": json.loads(message.raw),
        }
        assert f"{event['time']:.6f}".endswith(".123000")  # milliseconds kept, no more


def test_configured_host_and_source_win_and_an_empty_index_is_left_out(receiver):
    with open_kind(receiver, "SplunkHEC", host="fw-01", source="sophos", index="") as session:
        session.send(varied_messages(3))
    for event in receiver.hec_events:
        assert event["host"] == "fw-01" and event["source"] == "sophos"
        assert "index" not in event
    assert receiver.hec_events[0]["fields"]["_siemForward"] == "true"  # strings only


@pytest.mark.parametrize(
    ("secret", "code", "words"),
    [("wrong-token", "4", "the token is not valid"), ("", "3", "authorization is malformed")],
)
def test_a_refused_token_is_a_configuration_error_by_its_code(receiver, secret, code, words):
    with (
        open_kind(receiver, "SplunkHEC", secret=secret) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(2))
    error = caught.value
    assert error.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert error.vendor_code == code and words in error.message
    assert error.status in (401, 403)


def test_a_disabled_token_is_a_configuration_error(receiver):
    receiver.script(HEC, Answer(403, {"text": "Token disabled", "code": 1}))
    with open_kind(receiver, "SplunkHEC") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert "Enable the HEC token" in caught.value.remedy


def test_server_busy_is_generic_with_its_retry_after(receiver):
    busy = Answer(503, {"text": "Server is busy", "code": 9}, {"Retry-After": "12"})
    receiver.script(HEC, busy)
    with open_kind(receiver, "SplunkHEC") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(2))
    error = caught.value
    assert error.error_type is ErrorType.THIRD_PARTY_GENERIC
    assert error.vendor_code == "9" and "busy" in error.message
    assert error.retry_after == 12.0


def test_an_index_the_token_may_not_write_is_a_configuration_error(receiver):
    receiver.hec_indexes = {"security"}
    with open_kind(receiver, "SplunkHEC") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert caught.value.vendor_code == "7" and "index" in caught.value.message
    assert receiver.hec_events == []


def test_a_batch_over_1_mb_is_split_into_requests_of_at_most_1_mb(receiver):
    batch = varied_messages(400, pad=5000)  # about 2.3 MB of events
    with open_kind(receiver, "SplunkHEC") as session:
        session.send(batch)
    sizes = [s.size for s in receiver.log if s.protocol == HEC]
    assert len(sizes) >= 3 and max(sizes) <= 1_000_000
    assert [json.loads(m.raw) for m in batch] == [e["event"] for e in receiver.hec_events]


def test_indexer_acknowledgement_polls_until_every_request_is_indexed(receiver):
    receiver.hec_ack, receiver.hec_ack_after = True, 2  # true on the third poll
    batch = varied_messages(300, pad=4000)  # two requests, two ack ids
    with open_kind(receiver, "SplunkHEC", ack=True, channel=CHANNEL, options=FAST_ACKS) as session:
        result = session.send(batch)
    assert result.summary == "Splunk HEC indexed 300 events (acknowledged)."
    posts = [s for s in receiver.log if s.protocol == HEC]
    polls = [s for s in receiver.log if s.protocol == HEC_ACK]
    assert len(posts) >= 2 and len(polls) == 3
    for seen in posts + polls:
        assert seen.headers["x-splunk-request-channel"] == CHANNEL
        assert seen.headers["authorization"] == f"Splunk {receiver.secret}"
    assert len(receiver.hec_events) == 300


def test_an_acknowledgement_that_never_comes_is_generic_at_the_deadline(receiver):
    receiver.hec_ack, receiver.hec_ack_after = True, None
    options = {**FAST_ACKS, "ack_timeout": 0.1}
    with (
        open_kind(receiver, "SplunkHEC", ack=True, channel=CHANNEL, options=options) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(5))
    error = caught.value
    assert error.error_type is ErrorType.THIRD_PARTY_GENERIC
    assert "did not confirm indexing of 1 of 1 requests within 0.1 seconds" in error.message
    assert receiver.requests[HEC_ACK] >= 2


def test_ack_on_for_a_token_without_ack_is_a_configuration_error(receiver):
    receiver.hec_ack = False  # the receiver's token: no useACK, so no ackId in the answer
    with (
        open_kind(receiver, "SplunkHEC", ack=True, channel=CHANNEL, options=FAST_ACKS) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert "no ackId" in caught.value.message


def test_a_token_with_ack_needs_a_channel(receiver):
    receiver.hec_ack = True
    with open_kind(receiver, "SplunkHEC") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert caught.value.vendor_code == "10"


def test_a_malformed_event_answer_is_our_failure(receiver):
    receiver.script(
        HEC, Answer(400, {"text": "Invalid data format", "code": 6, "invalid-event-number": 3})
    )
    with open_kind(receiver, "SplunkHEC") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(5))
    assert caught.value.error_type is ErrorType.FIRST_PARTY_GENERIC
    assert "event 3 of the request" in caught.value.message


@pytest.mark.parametrize("body", ["<html>proxy</html>", "[1, 2]"])
def test_a_success_that_is_not_a_json_object_is_generic(receiver, body):
    receiver.script(HEC, Answer(200, body))
    with open_kind(receiver, "SplunkHEC") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_GENERIC
    assert "not with a JSON object" in caught.value.message


def test_describe_names_the_address_and_index():
    from tests.destinations.http_helpers import KINDS

    class Stored:
        config = {"url": "https://splunk.example:8088", "index": "main", "ack": True}

    assert KINDS["SplunkHEC"].describe(Stored()) == (
        "Splunk HEC https://splunk.example:8088 · index main, acknowledged"
    )
