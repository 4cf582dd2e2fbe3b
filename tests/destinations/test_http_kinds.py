"""What every HTTP destination kind does alike, against the strict local receiver: a varied batch
arrives whole and unchanged, in order; failures are classified as design section 11 says; TLS
trusts exactly the CA bundle; secrets stay out of error text and the API's config."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
import os
import stat

import pytest

from collector.choices import ErrorType
from collector.crypto import MASK
from collector.destinations.http import metadata_strings, parse_retry_after, split_sized
from collector.errors import CollectionError
from tests.destinations import http_helpers
from tests.destinations.http_helpers import KIND_NAMES, KINDS, SHORT, open_kind, varied_messages
from tests.support.receivers import PROTOCOL_OF_KIND, Answer, Hang, Receiver, Reset, Slow

# Fixtures shared by the HTTP kinds' tests (a conftest here would be shared with others).
receiver = http_helpers.receiver
tls_pem = http_helpers.tls_pem

CONFIG = ErrorType.THIRD_PARTY_CONFIG
GENERIC = ErrorType.THIRD_PARTY_GENERIC


def recorded(receiver: Receiver, kind: str) -> list[tuple]:
    """(message object, metadata as the receiver holds it) of everything accepted, in order."""
    if kind == "SplunkHEC":
        return [(e["event"], e["fields"]) for e in receiver.hec_events]
    if kind == "ElasticBulk":
        out = []
        for doc in receiver.docs():
            doc = dict(doc)
            metadata = doc.pop("sumo")
            doc.pop("@timestamp")
            out.append((doc, metadata))
        return out
    if kind == "SumoHTTP":
        return [
            (r.message, (r.category, r.name, r.host, sorted(r.fields.items())))
            for r in receiver.sumo_records
        ]
    if kind == "SentinelLogsIngestion":
        return [(json.loads(r["RawData"]), r["SourceCategory"]) for r in receiver.sentinel_records]
    return [(item["message"], item["metadata"]) for item in receiver.webhook_items]


def sumo_headers(metadata: dict) -> tuple:
    """What Sumo should read from the headers: category, name, host and the custom fields that
    can be written as k=v pairs (values with ',' or '=' cannot)."""
    fields = {
        k: v
        for k, v in metadata_strings(metadata).items()
        if k not in {"_source", "_sourceCategory", "_collector", "_sourceName", "_index"}
        and "," not in v
        and "=" not in v
    }
    return (
        metadata["_sourceCategory"],
        metadata["_source"],
        metadata["_collector"],
        sorted(fields.items()),
    )


def expected(batch, kind: str) -> list[tuple]:
    if kind == "SplunkHEC":
        return [(json.loads(m.raw), metadata_strings(m.metadata)) for m in batch]
    if kind == "SumoHTTP":
        return [(json.loads(m.raw), sumo_headers(m.metadata)) for m in batch]
    if kind == "SentinelLogsIngestion":
        return [(json.loads(m.raw), m.metadata["_sourceCategory"]) for m in batch]
    # JSON has no tuples or True-vs-"true" ambiguity here: metadata round-trips as it is.
    return [(json.loads(m.raw), json.loads(json.dumps(m.metadata))) for m in batch]


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_varied_batch_arrives_whole_unchanged_and_in_order(receiver, kind):
    batch = varied_messages(300)
    with open_kind(receiver, kind) as session:
        result = session.send(batch)
    assert result.duplicates == 0 and result.rejected == 0
    got, want = recorded(receiver, kind), expected(batch, kind)
    if kind == "SumoHTTP":
        # Sumo requests are grouped by their metadata headers: order holds within each group.
        assert sorted(map(repr, got)) == sorted(map(repr, want))
        for key in {repr(w[1]) for w in want}:
            assert [g for g in got if repr(g[1]) == key] == [w for w in want if repr(w[1]) == key]
    else:
        assert got == want
    assert receiver.accepted[PROTOCOL_OF_KIND[kind]] == 300
    # gzip on every request that carried messages, and the body decoded to what was counted
    sent = [s for s in receiver.log if s.protocol == PROTOCOL_OF_KIND[kind]]
    assert sent and all(s.headers.get("content-encoding") == "gzip" for s in sent)
    assert all(s.wire_size < s.size for s in sent)
    assert all(s.headers["user-agent"].startswith("SumoSources/") for s in sent)


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_connections_are_kept_alive_across_batches(receiver, kind):
    batches = [varied_messages(20, start=1 + 20 * i) for i in range(3)]
    with open_kind(receiver, kind) as session:
        for batch in batches:
            session.send(batch)
    assert receiver.accepted[PROTOCOL_OF_KIND[kind]] == 60
    # One TCP connection (one client port) served every request, the token request included.
    assert len(receiver.log) >= 3
    assert len({seen.peer for seen in receiver.log}) == 1
    assert receiver.errors == 0


def _fail(receiver, kind, *actions, options=None, **overrides):
    receiver.script(PROTOCOL_OF_KIND[kind], *actions)
    with (
        open_kind(receiver, kind, options=options, **overrides) as session,
        pytest.raises(CollectionError) as caught,
    ):
        session.send(varied_messages(3))
    return caught.value


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_401_is_a_configuration_error_and_quotes_no_secret(receiver, kind):
    secret = receiver.secret
    echo = Answer(401, {"message": f"token {secret} is not valid", "code": "auth"})
    # Sentinel takes a new token once after a 401; a second 401 is the verdict.
    actions = (echo, echo) if kind == "SentinelLogsIngestion" else (echo,)
    error = _fail(receiver, kind, *actions)
    assert error.error_type is CONFIG and error.status == 401
    assert f"127.0.0.1:{receiver.port}" in error.message
    assert "401" in error.message
    for text in (error.message, error.remedy, repr(error.details())):
        assert secret not in text
    assert receiver.accepted[PROTOCOL_OF_KIND[kind]] == 0


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_403_is_a_configuration_error(receiver, kind):
    error = _fail(receiver, kind, Answer(403, {"message": "not allowed to write"}))
    assert error.error_type is CONFIG and error.status == 403
    assert "403" in error.message and "not allowed to write" in error.message


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_429_with_retry_after_seconds_is_generic_with_the_wait(receiver, kind):
    error = _fail(receiver, kind, Answer(429, {"message": "slow down"}, {"Retry-After": "7"}))
    assert error.error_type is GENERIC and error.status == 429
    assert error.retry_after == 7.0
    assert "7 seconds" in error.message


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_429_with_retry_after_http_date_is_generic_with_the_wait(receiver, kind):
    when = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=120)
    header = email.utils.format_datetime(when, usegmt=True)
    error = _fail(receiver, kind, Answer(429, b"", {"Retry-After": header}))
    assert error.error_type is GENERIC
    # The date has one-second resolution and a little time passes: within a few seconds of 120.
    assert 110 <= error.retry_after <= 120


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_503_is_generic(receiver, kind):
    error = _fail(receiver, kind, Answer(503, "<html>maintenance</html>"))
    assert error.error_type is GENERIC and error.status == 503
    assert error.retry_after is None
    assert "503" in error.message


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_slow_answer_is_a_generic_timeout(receiver, kind):
    error = _fail(receiver, kind, Hang(), options={"timeout": SHORT})
    receiver.release()
    assert error.error_type is GENERIC
    assert f"did not answer within {SHORT[1]:g} seconds" in error.message


@pytest.mark.parametrize("kind", ["SplunkHEC", "SumoHTTP"])
def test_netrc_credentials_never_replace_the_kinds_own(receiver, kind, tmp_path, monkeypatch):
    netrc = tmp_path / "netrc"
    netrc.write_text("machine 127.0.0.1 login someone password elsewhere-password\n")
    netrc.chmod(0o600)
    monkeypatch.setenv("NETRC", str(netrc))
    with open_kind(receiver, kind) as session:
        session.send(varied_messages(2))
    for seen in receiver.log:
        assert not seen.headers.get("authorization", "").startswith("Basic")


def test_a_slow_answer_within_the_timeout_is_accepted(receiver):
    receiver.script(PROTOCOL_OF_KIND["Webhook"], Slow(0.05))
    with open_kind(receiver, "Webhook", options={"timeout": (2.0, 10.0)}) as session:
        session.send(varied_messages(3))
    assert len(receiver.webhook_items) == 3


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_reset_connection_is_generic(receiver, kind):
    error = _fail(receiver, kind, Reset())
    assert error.error_type is GENERIC
    assert "closed or reset the connection" in error.message
    assert error.status is None


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_a_stopped_receiver_is_generic_and_a_restarted_one_takes_the_batch(receiver, kind):
    batch = varied_messages(5)
    with open_kind(receiver, kind) as session:
        session.send(batch)
        receiver.stop()
        with pytest.raises(CollectionError) as caught:
            session.send(batch)
        assert caught.value.error_type is GENERIC
        assert "refused" in caught.value.message
        receiver.start()  # the same port, what was stored kept
        session.send(varied_messages(5, start=2001))
    assert receiver.accepted[PROTOCOL_OF_KIND[kind]] == 10


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_tls_trusts_the_ca_bundle_and_removes_its_file_at_close(tls_pem, kind):
    cert, key, pem = tls_pem
    with Receiver(tls=(cert, key)) as receiver:
        session = open_kind(receiver, kind, caBundle=pem)
        path = session.http.verify
        assert isinstance(path, str) and os.path.exists(path)
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        with open(path) as handle:
            assert handle.read() == pem
        try:
            session.send(varied_messages(4))
        finally:
            session.close()
        assert not os.path.exists(path)
        assert receiver.accepted[PROTOCOL_OF_KIND[kind]] == 4
        assert receiver.problems == []


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_tls_without_the_ca_bundle_is_an_untrusted_certificate(tls_pem, kind):
    cert, key, _pem = tls_pem
    with Receiver(tls=(cert, key)) as receiver:
        with open_kind(receiver, kind) as session, pytest.raises(CollectionError) as caught:
            session.send(varied_messages(2))
        assert caught.value.error_type is GENERIC
        assert "not trusted" in caught.value.message
        assert "CA bundle" in caught.value.remedy
        assert sum(receiver.accepted.values()) == 0


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_an_empty_batch_sends_nothing(receiver, kind):
    with open_kind(receiver, kind) as session:
        assert session.send([]).summary == "Nothing to send."
    assert receiver.log == []


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_the_api_config_masks_the_secret(kind):
    spec = KINDS[kind]

    class Stored:  # what api_config reads of a Destination row
        config = {"url": "https://receiver.example:8443", "index": "main", "auth": "apikey"}
        has_secret = True

    shown = spec.api_config(Stored())
    assert shown[spec.secret_key] == MASK
    assert set(shown) == set(spec.config_keys)
    assert spec.secret_key in spec.config_keys
    assert spec.secret_field == spec.config_keys[spec.secret_key].form_field


@pytest.mark.parametrize("kind", KIND_NAMES)
def test_batch_limits_and_sizes_are_sane(kind):
    spec = KINDS[kind]
    assert 100 <= spec.max_batch_messages <= 5000
    assert spec.max_batch_bytes <= 5_000_000
    message = varied_messages(1, pad=5000)[0]
    assert spec.encoded_size(message) >= len(message.raw)


def test_parse_retry_after_reads_seconds_dates_and_nonsense():
    assert parse_retry_after("30") == 30.0
    assert parse_retry_after(" 1.5 ") == 1.5
    assert parse_retry_after("-4") == 0.0
    assert parse_retry_after("9999999") == 86400.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("") is None and parse_retry_after(None) is None
    past = email.utils.format_datetime(dt.datetime(2000, 1, 1, tzinfo=dt.UTC), usegmt=True)
    assert parse_retry_after(past) == 0.0


def test_split_sized_keeps_every_request_within_the_limit():
    items = [b"a" * n for n in (10, 20, 30, 200, 5, 5, 5)]
    runs = list(split_sized(items, 64, separator=1, framing=2))
    assert [len(run) for run in runs] == [2, 1, 1, 3]  # 200 travels alone
    assert [b for run in runs for b in run] == items
    for run in runs:
        if len(run) > 1:
            assert sum(len(b) + 1 for b in run) + 2 <= 64
