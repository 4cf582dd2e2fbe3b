"""The Microsoft Sentinel (Logs Ingestion API) kind against the strict receiver, which also plays
the token endpoint: records, token caching and refresh, OAuth2 errors, the 1 MB limit."""

from __future__ import annotations

import pytest

from collector.choices import ErrorType
from collector.destinations import sentinel
from collector.errors import CollectionError
from tests.destinations import http_helpers
from tests.destinations.http_helpers import open_kind, varied_messages
from tests.support.receivers import SENTINEL, TOKEN, Answer

# Fixtures shared by the HTTP kinds' tests (a conftest here would be shared with others).
receiver = http_helpers.receiver


def test_records_have_the_documented_columns(receiver):
    batch = varied_messages(30)
    with open_kind(receiver, "SentinelLogsIngestion") as session:
        result = session.send(batch)
    assert result.summary == "Azure Monitor accepted 30 records in 1 request."
    (seen,) = [s for s in receiver.log if s.protocol == SENTINEL]
    assert seen.path == f"/dataCollectionRules/{receiver.dcr}/streams/{receiver.stream}"
    assert seen.query == {"api-version": ["2023-01-01"]}
    assert seen.headers["authorization"].startswith("Bearer ")
    assert seen.headers["content-type"] == "application/json"
    known = {"_source", "_sourceCategory", "_collector", "_sourceName", "_index", "_siemEventID",
             "tenant"}  # fmt: skip
    for message, row in zip(batch, receiver.sentinel_records, strict=True):
        md = message.metadata
        assert row == {
            "TimeGenerated": message.message_time.isoformat().replace("+00:00", "Z"),
            "RawData": message.raw,
            "SourceCategory": md["_sourceCategory"],
            "Source": md["_source"],
            "Collector": md["_collector"],
            "SourceName": md["_sourceName"],
            "Tenant": md["tenant"],
            "SiemEventId": md.get("_siemEventID", ""),
            "Index": md.get("_index", ""),
            "ReceiptTime": message.receipt_time.isoformat().replace("+00:00", "Z"),
            "MessageId": message.id,
            "Fields": {k: v for k, v in md.items() if k not in known},
        }


def test_one_token_serves_several_batches_and_sessions(receiver):
    with open_kind(receiver, "SentinelLogsIngestion") as session:
        for start in (1, 101, 201):
            session.send(varied_messages(10, start=start))
    with open_kind(receiver, "SentinelLogsIngestion") as later:
        later.send(varied_messages(10, start=301))
    assert receiver.requests[TOKEN] == 1
    assert receiver.accepted[SENTINEL] == 40


def test_an_expired_cached_token_is_replaced(receiver):
    with open_kind(receiver, "SentinelLogsIngestion") as session:
        session.send(varied_messages(2))
        token, _expiry = sentinel._TOKENS[session.cache_key]
        sentinel._TOKENS[session.cache_key] = (token, 0.0)  # its usable life is over
        session.send(varied_messages(2, start=10))
    assert receiver.requests[TOKEN] == 2


def test_a_short_lived_token_is_used_for_at_most_half_its_life(receiver):
    receiver.token_lifetime = 60
    with open_kind(receiver, "SentinelLogsIngestion") as session:
        session.send(varied_messages(1))
        _token, expiry = sentinel._TOKENS[session.cache_key]
    assert expiry - sentinel.time.monotonic() <= 30


def test_a_revoked_token_is_dropped_and_the_request_retried_once(receiver):
    with open_kind(receiver, "SentinelLogsIngestion") as session:
        session.send(varied_messages(3))
        receiver.revoke_tokens()
        session.send(varied_messages(3, start=50))
    statuses = [s.status for s in receiver.log if s.protocol == SENTINEL]
    assert statuses == [204, 401, 204]
    assert receiver.requests[TOKEN] == 2
    assert receiver.accepted[SENTINEL] == 6


def test_a_wrong_client_secret_is_a_configuration_error_without_the_secret(receiver):
    with (
        open_kind(receiver, "SentinelLogsIngestion", secret="Not-The-Secret~1234567") as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(2))
    error = caught.value
    assert error.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert error.vendor_code == "invalid_client" and error.status == 401
    assert "AADSTS7000215" in error.message
    assert "Not-The-Secret~1234567" not in f"{error.message} {error.remedy}"
    assert receiver.requests[SENTINEL] == 0


def test_an_unknown_application_is_a_configuration_error(receiver):
    with (
        open_kind(
            receiver, "SentinelLogsIngestion", clientId="11111111-2222-4333-8444-555555555555"
        ) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert caught.value.vendor_code == "unauthorized_client"


def test_a_token_endpoint_outage_is_generic(receiver):
    receiver.script(TOKEN, Answer(503, {"error": "temporarily_unavailable"}, {"Retry-After": "3"}))
    with (
        open_kind(receiver, "SentinelLogsIngestion") as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_GENERIC
    assert caught.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("override", "status", "code"),
    [
        ({"dcrImmutableId": "dcr-ffffffffffffffffffffffffffffffff"}, 404, "NotFound"),
        ({"streamName": "Custom-Other"}, 400, "InvalidStream"),
    ],
)
def test_a_wrong_rule_or_stream_is_a_configuration_error(receiver, override, status, code):
    with (
        open_kind(receiver, "SentinelLogsIngestion", **override) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(2))
    assert caught.value.error_type is ErrorType.THIRD_PARTY_CONFIG
    assert caught.value.status == status and caught.value.vendor_code == code


def test_a_batch_of_2_5_mb_is_split_into_requests_of_at_most_1_mb(receiver):
    batch = varied_messages(500, pad=5000)
    with open_kind(receiver, "SentinelLogsIngestion") as session:
        result = session.send(batch)
    sizes = [s.size for s in receiver.log if s.protocol == SENTINEL]
    assert sum(sizes) > 2_500_000
    assert len(sizes) >= 3 and max(sizes) <= 1_000_000
    assert result.summary == f"Azure Monitor accepted 500 records in {len(sizes)} requests."
    assert [r["MessageId"] for r in receiver.sentinel_records] == [m.id for m in batch]


def test_the_scope_follows_the_cloud_of_the_endpoint():
    assert sentinel.scope_for("https://x.westeurope-1.ingest.monitor.azure.com") == (
        "https://monitor.azure.com//.default"
    )
    assert sentinel.scope_for("https://x.usgovvirginia-1.ingest.monitor.azure.us") == (
        "https://monitor.azure.us//.default"
    )
    assert sentinel.scope_for("https://x.chinaeast2-1.ingest.monitor.azure.cn").endswith(
        "azure.cn//.default"
    )
