"""The Elasticsearch ``_bulk`` kind against the strict receiver: NDJSON framing, stable ids and
exactly-once re-sends, per-item results, authentication."""

from __future__ import annotations

import base64
import dataclasses
import gzip
import json

import pytest
import requests

from collector.choices import ErrorType
from collector.destinations.elastic import document_id
from collector.errors import CollectionError
from tests.destinations import http_helpers
from tests.destinations.http_helpers import open_kind, varied_messages
from tests.support.receivers import BULK, Answer, ItemErrors

# Fixtures shared by the HTTP kinds' tests (a conftest here would be shared with others).
receiver = http_helpers.receiver

INDEX = "sumo-logs"


def test_documents_are_created_with_stable_ids_timestamps_and_metadata(receiver):
    batch = varied_messages(50)
    with open_kind(receiver, "ElasticBulk") as session:
        result = session.send(batch)
    assert result.summary == "Elasticsearch stored 50 documents."
    (seen,) = [s for s in receiver.log if s.protocol == BULK]
    assert seen.path == "/_bulk"
    assert seen.headers["content-type"] == "application/x-ndjson"
    assert seen.headers["authorization"] == f"ApiKey {receiver.secret}"
    assert list(receiver.bulk_store) == [(INDEX, document_id(m)) for m in batch]
    for message, doc in zip(batch, receiver.docs(), strict=True):
        assert doc["@timestamp"] == message.message_time.strftime("%Y-%m-%dT%H:%M:%S.123Z")
        assert doc["sumo"] == json.loads(json.dumps(message.metadata))
        assert {k: v for k, v in doc.items() if k not in ("@timestamp", "sumo")} == json.loads(
            message.raw
        )


def test_the_body_is_ndjson_with_a_trailing_newline(receiver):
    """Read back what went on the wire by posting it again ourselves, with and without the
    trailing newline: the receiver, like Elasticsearch, refuses the latter."""
    batch = varied_messages(3)
    session = open_kind(receiver, "ElasticBulk")
    lines = [line for m in batch for line in session.encode(m)]
    session.close()
    body = b"\n".join(lines) + b"\n"
    headers = {"Authorization": f"ApiKey {receiver.secret}", "Content-Type": "application/x-ndjson"}
    cut = requests.post(f"{receiver.url}/_bulk", data=body[:-1], headers=headers, timeout=5)
    assert cut.status_code == 400
    assert "terminated by a newline" in cut.json()["error"]["reason"]
    whole = requests.post(
        f"{receiver.url}/_bulk", data=gzip.compress(body),
        headers={**headers, "Content-Encoding": "gzip"}, timeout=5,
    )  # fmt: skip
    assert whole.status_code == 200 and whole.json()["errors"] is False
    assert json.loads(lines[0]) == {"create": {"_index": INDEX, "_id": document_id(batch[0])}}


def test_a_resent_batch_is_all_duplicates_and_stores_nothing_twice(receiver):
    batch = varied_messages(300)
    with open_kind(receiver, "ElasticBulk") as session:
        first = session.send(batch)
        again = session.send(batch)
    assert first.duplicates == 0
    assert again.duplicates == len(batch) == 300
    assert again.summary == "Elasticsearch stored 0 documents; 300 were already there."
    assert len(receiver.bulk_store) == 300
    assert receiver.accepted[BULK] == 300


def test_the_id_depends_on_the_message_alone():
    message = varied_messages(1)[0]
    assert document_id(message) == document_id(dataclasses.replace(message))
    assert document_id(message).startswith(f"ss-{message.id}-")
    other = dataclasses.replace(message, raw='{"another":"message"}')
    assert document_id(other) != document_id(message)  # same id, another installation's message
    assert len(document_id(message)) < 512  # Elasticsearch's limit


def test_items_refused_for_now_raise_generic_and_a_resend_completes_the_batch(receiver):
    batch = varied_messages(10)
    receiver.script(BULK, ItemErrors({2: 429, 7: 503}))
    with open_kind(receiver, "ElasticBulk") as session:
        with pytest.raises(CollectionError) as caught:
            session.send(batch)
        error = caught.value
        assert error.error_type is ErrorType.THIRD_PARTY_GENERIC
        assert "refused 2 of 10 documents (HTTP 429, es_rejected_execution_exception" in (
            error.message
        )
        assert len(receiver.bulk_store) == 8
        result = session.send(batch)  # the engine sends the batch again whole
    assert result.duplicates == 8
    assert result.summary == "Elasticsearch stored 2 documents; 8 were already there."
    assert list(receiver.bulk_store) != [] and len(receiver.bulk_store) == 10


def test_a_document_the_mapping_refuses_is_delivered_and_reported(receiver):
    batch = varied_messages(6)
    bad = document_id(batch[3])
    receiver.elastic_reject[bad] = (
        400,
        "document_parsing_exception",
        "[1:42] failed to parse field [severity] of type [long]",
    )
    with open_kind(receiver, "ElasticBulk") as session:
        result = session.send(batch)
        again = session.send(batch)
    assert result.rejected == 1 and result.duplicates == 0
    assert "1 was refused for good and not retried" in result.summary
    assert "document_parsing_exception: [1:42] failed to parse field [severity]" in result.summary
    assert (INDEX, bad) not in receiver.bulk_store and len(receiver.bulk_store) == 5
    assert again.duplicates == 5 and again.rejected == 1


def test_a_missing_index_is_a_configuration_error(receiver):
    receiver.elastic_indexes = {"another-index"}  # auto-creation off, ours does not exist
    with open_kind(receiver, "ElasticBulk") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(4))
    error = caught.value
    assert error.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert error.vendor_code == "index_not_found_exception"
    assert f"index {INDEX} exists" in error.remedy


def test_basic_authentication_with_a_user_name(receiver):
    with open_kind(receiver, "ElasticBulk", username="elastic", auth="basic") as session:
        session.send(varied_messages(3))
    (seen,) = [s for s in receiver.log if s.protocol == BULK]
    pair = base64.b64encode(f"elastic:{receiver.secret}".encode()).decode()
    assert seen.headers["authorization"] == f"Basic {pair}"
    assert len(receiver.bulk_store) == 3


def test_a_wrong_password_is_a_configuration_error_without_the_secret(receiver):
    with (
        open_kind(
            receiver, "ElasticBulk", username="elastic", auth="basic", secret="Wrong-Passw0rd!"
        ) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(3))
    error = caught.value
    assert error.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert "rejected the user name and password" in error.message
    assert "security_exception" in error.message
    assert "Wrong-Passw0rd!" not in error.message


def test_an_api_key_given_as_id_and_key_is_encoded(receiver):
    receiver.secret = base64.b64encode(b"VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw").decode()
    with open_kind(
        receiver, "ElasticBulk", secret="VuaCfGcBCdbkQm-e5aOx:ui2lp2axTNmsyakw9tvNnw"
    ) as session:
        session.send(varied_messages(2))
    assert len(receiver.bulk_store) == 2


def test_a_raw_value_that_is_not_an_object_is_wrapped(receiver):
    message = dataclasses.replace(varied_messages(1)[0], raw='["a", 1]')
    with open_kind(receiver, "ElasticBulk") as session:
        session.send([message])
    (doc,) = receiver.docs()
    assert doc["message"] == ["a", 1] and "@timestamp" in doc


@pytest.mark.parametrize(
    ("answer", "words"),
    [
        (Answer(200, "<html>proxy</html>"), "its answer had no item results"),
        (Answer(200, {"errors": False, "items": []}), "with 0 item results for 4 documents"),
    ],
)
def test_an_unreadable_success_is_generic(receiver, answer, words):
    receiver.script(BULK, answer)
    with open_kind(receiver, "ElasticBulk") as session, pytest.raises(CollectionError) as caught:
        session.send(varied_messages(4))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_GENERIC
    assert words in caught.value.message
