"""The Sumo Logic HTTP source kind against the strict receiver: metadata headers per group of
messages, fields that cannot be written, the 1 MB request limit, and the URL as the secret."""

from __future__ import annotations

import dataclasses
import json

import pytest

from collector.choices import ErrorType
from collector.crypto import MASK
from collector.errors import CollectionError
from tests.destinations import http_helpers
from tests.destinations.http_helpers import KINDS, open_kind, varied_messages
from tests.support.receivers import SUMO

# Fixtures shared by the HTTP kinds' tests (a conftest here would be shared with others).
receiver = http_helpers.receiver


def _with(message, **metadata):
    return dataclasses.replace(message, metadata={**message.metadata, **metadata})


def test_each_request_carries_the_metadata_headers_of_its_messages(receiver):
    batch = varied_messages(12)
    with open_kind(receiver, "SumoHTTP") as session:
        result = session.send(batch)
    sent = [s for s in receiver.log if s.protocol == SUMO]
    # Distinct (category, source, collector, fields) combinations in the batch, one request each.
    assert result.summary == f"Sumo Logic accepted 12 messages in {len(sent)} requests."
    assert len(sent) > 3
    for seen in sent:
        assert seen.path == f"/receiver/v1/http/{receiver.secret}"
        assert "authorization" not in seen.headers
        assert seen.headers["content-encoding"] == "gzip"
    by_id = {m.raw: m for m in batch}
    for record in receiver.sumo_records:
        message = next(m for m in batch if json.loads(m.raw) == record.message)
        assert record.category == message.metadata["_sourceCategory"]
        assert record.name == message.metadata["_source"]
        assert record.host == "Hosted EU"
        assert record.fields["tenant"] == message.metadata["tenant"]
    assert len(by_id) == len(receiver.sumo_records) == 12


def test_unicode_header_values_arrive_as_utf8(receiver):
    message = _with(varied_messages(1)[0], _sourceCategory="sophos/ünï 東京", _source="Ünï")
    with open_kind(receiver, "SumoHTTP") as session:
        session.send([message])
    (record,) = receiver.sumo_records
    assert record.category == "sophos/ünï 東京" and record.name == "Ünï"


def test_fields_that_cannot_be_written_are_left_out_and_line_breaks_cannot_inject(receiver):
    message = _with(
        varied_messages(1)[0],
        _sourceCategory="prod/app\r\nX-Evil: 1",
        owner="a,b",
        formula="x=y",
        **{"bad name": "v", "_siemForward": True, "team": "blue"},
    )
    with open_kind(receiver, "SumoHTTP") as session:
        session.send([message])
    (record,) = receiver.sumo_records
    assert record.fields == {
        "_siemEventID": "malware",
        "_siemForward": "true",
        "team": "blue",
        "tenant": message.metadata["tenant"],
    }
    assert record.category == "prod/app X-Evil: 1"
    (seen,) = [s for s in receiver.log if s.protocol == SUMO]
    assert "x-evil" not in seen.headers


def test_a_batch_of_2_5_mb_is_split_into_requests_of_at_most_1_mb(receiver):
    one = {"_source": "S", "_sourceCategory": "c", "_collector": "C", "tenant": "one"}
    batch = [dataclasses.replace(m, metadata=one) for m in varied_messages(500, pad=5000)]
    assert sum(len(m.raw) for m in batch) > 2_500_000
    with open_kind(receiver, "SumoHTTP") as session:
        result = session.send(batch)
    sizes = [s.size for s in receiver.log if s.protocol == SUMO]
    assert len(sizes) >= 3 and max(sizes) <= 1_000_000
    assert result.summary == f"Sumo Logic accepted 500 messages in {len(sizes)} requests."
    assert [r.message for r in receiver.sumo_records] == [json.loads(m.raw) for m in batch]


def test_a_wrong_source_url_is_a_configuration_error_that_never_shows_the_url(receiver):
    wrong = f"{receiver.url}/receiver/v1/http/ZaVnC4dhaV3xaY2ZhcnGkZuWn3kTpQYHo7F9oAFQ0fCn=="
    with (
        open_kind(receiver, "SumoHTTP", url=wrong) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(2))
    error = caught.value
    assert error.error_type is ErrorType.THIRD_PARTY_CONFIG and error.status == 401
    text = f"{error.message} {error.remedy} {error.details()}"
    assert "ZaVnC4dhaV3xaY2ZhcnGkZuWn3kTpQYHo7F9oAFQ0fCn" not in text
    assert "/receiver/" not in text
    assert f"127.0.0.1:{receiver.port}" in error.message


def test_the_url_is_the_secret_shown_masked_and_described_by_its_host():
    class Stored:
        config = {"endpoint": "https://endpoint4.collection.sumologic.com", "caBundle": ""}

    kind = KINDS["SumoHTTP"]
    assert kind.api_config(Stored()) == {"url": MASK, "caBundle": ""}
    assert kind.describe(Stored()) == (
        "Sumo Logic HTTP Logs source at endpoint4.collection.sumologic.com"
    )
