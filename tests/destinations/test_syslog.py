"""The Syslog destination kind against a real rsyslog (started by the tests), plus its frames and
its form. Sessions are driven directly (``kind.open(...).send(batch)``), without the engine."""

import dataclasses
import datetime as dt
import json
import socket

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from collector.choices import ErrorType
from collector.crypto import MASK
from collector.destinations.base import CefEvent, Outgoing
from collector.destinations.cef import format_cef, generic_event, syslog_severity
from collector.destinations.syslog import SyslogKind, frames
from collector.destinations.syslog.forms import SyslogDestinationForm
from collector.destinations.syslog.kind import MAX_DATAGRAM
from collector.errors import CollectionError
from collector.models import Destination
from tests.destinations.cef_parse import parse_cef
from tests.support.rsyslog import Pki, free_port

UTC = dt.UTC
KIND = SyslogKind()
START = dt.datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
# Values that break naive writers: CEF's and JSON's special characters, line breaks, unicode.
NASTY = (
    "plain",
    "pipe|pipe",
    "eq=eq",
    "back\\slash",
    "new\nline",
    "cr\rreturn\r\n",
    "tab\there",
    "ünïcødé ✓ 日本語",
    "emoji 🚀",
    "",
    "=|\\\n",
    '"quoted" {braces}',
)


def make_messages(count: int, *, start: int = 1, with_cef: bool = True) -> list[Outgoing]:
    """``count`` messages with varied metadata; every other one has a kind's CEF view (with
    the same nasty values in its header and extensions), the rest get the generic one."""
    result = []
    for n in range(start, start + count):
        value = NASTY[n % len(NASTY)]
        raw = json.dumps(
            {"id": f"v-{n}", "description": f"item {n}: {value}", "n": n, "nested": {"v": value}}
        )
        cef = None
        if with_cef and n % 2:
            cef = CefEvent(
                device_vendor=f"Vendor {value}",
                device_product="Product|X",
                device_version="1.0",
                signature_id=f"sig-{n % 5}",
                name=f"Name {value}",
                severity=n % 11,
                extensions={"externalId": n, "msg": f"text {value}", "suser": value or None},
            )
        result.append(
            Outgoing(
                id=n,
                raw=raw,
                metadata={
                    "_source": f"Source {value}",
                    "_sourceCategory": f"cat/{n % 7}",
                    "_collector": "Hosted EU",
                    "_sourceName": ("Alerts", "Events")[n % 2],
                    "tenant": f"Tenant {value}",
                    "_siemEventID": "malware",
                    "site": value,
                },
                message_time=START + dt.timedelta(milliseconds=7 * n),
                receipt_time=START + dt.timedelta(seconds=1, milliseconds=7 * n),
                cef=cef,
            )
        )
    return result


def config(receiver, **kw) -> dict:
    base = {
        "host": "127.0.0.1",
        "port": receiver.port if receiver is not None else free_port(),
        "protocol": receiver.protocol if receiver is not None else "tcp",
        "framing": "octet-counting",
        "format": "rfc5424",
        "payload": "json",
        "caBundle": "",
        "clientCert": "",
    }
    base.update(kw)
    return base


def expected_payload(message: Outgoing, payload: str) -> str:
    if payload == "json":
        return frames.json_payload(message).decode()
    return format_cef(message.cef or generic_event(message))


def check_arrival(records, messages, *, syslog_format: str, payload: str, exact_count=True):
    """Every message arrived exactly once, whole, in order, with the header rsyslog parsed as
    we meant it, and its MSG parses as JSON or as strict CEF."""
    if exact_count:
        assert len(records) == len(messages)
    host = frames.our_hostname()
    ids = []
    for record, message in zip(records, messages, strict=True):
        msg = record["msg"]
        if syslog_format == "rfc3164":
            # rsyslog keeps the space after "TAG:" as the first character of MSG.
            assert msg.startswith(" ")
            msg = msg[1:]
        assert msg == expected_payload(message, payload)  # whole, byte for byte
        assert record["host"] == host
        assert record["app"] == "sumosources"
        if syslog_format == "rfc5424":
            assert record["version"] == "1"
            assert record["msgid"] == message.metadata["_sourceName"]
            assert record["procid"] == "-" and record["sd"] == "-"
            assert record["time"] == frames.iso_ms(message.message_time)
        else:
            assert record["version"] == "0"
        if payload == "json":
            body = json.loads(msg)
            assert body["message"] == json.loads(message.raw)
            assert {k: body[k] for k in message.metadata} == message.metadata
            assert body["_messageTime"] == frames.iso_ms(message.message_time)
            assert int(record["pri"]) == 16 * 8 + 6
            ids.append(body["_messageId"])
        else:
            event = message.cef or generic_event(message)
            parsed = parse_cef(msg)
            assert parsed.name == event.name.replace("\r\n", " ").replace("\r", " ").replace(
                "\n", " "
            )
            assert int(record["pri"]) == 16 * 8 + syslog_severity(event.severity)
            if message.cef is None:
                assert json.loads(parsed.extensions["msg"]) == json.loads(message.raw)
            else:
                assert parsed.extensions["msg"] == event.extensions["msg"]
            ids.append(int(parsed.extensions["externalId"]))
    assert ids == [m.id for m in messages]  # in order, none twice


def send_all(session, messages, size=100):
    results = [session.send(messages[i : i + size]) for i in range(0, len(messages), size)]
    return results


def sentinel_after(receiver, session, count):
    """Send one more message and wait for it, so "exactly ``count`` before it" is a fact rather
    than a race: anything duplicated or late would have come before the sentinel."""
    last = make_messages(1, start=10**9)
    session.send(last)
    records = receiver.wait_records(count + 1)
    assert len(records) == count + 1, "more messages arrived than were sent"
    return records[:count]


# --- delivery to a real rsyslog ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("protocol", "framing", "syslog_format", "payload"),
    [
        ("udp", "octet-counting", "rfc5424", "json"),
        ("udp", "lf", "rfc3164", "cef"),
        ("tcp", "octet-counting", "rfc5424", "json"),
        ("tcp", "octet-counting", "rfc3164", "cef"),
        ("tcp", "lf", "rfc5424", "cef"),
        ("tcp", "lf", "rfc3164", "json"),
        ("tls", "octet-counting", "rfc5424", "cef"),
        ("tls", "lf", "rfc3164", "json"),
    ],
)
def test_messages_arrive_exactly_once_whole_and_in_order(
    rsyslog, pki, protocol, framing, syslog_format, payload
):
    receiver = rsyslog(protocol, tls=pki.server if protocol == "tls" else None)
    messages = make_messages(500)
    cfg = config(
        receiver,
        framing=framing,
        format=syslog_format,
        payload=payload,
        caBundle=pki.ca_pem if protocol == "tls" else "",
    )
    with KIND.open(config=cfg, secret="") as session:
        results = send_all(session, messages)
        records = sentinel_after(receiver, session, len(messages))
        assert session.connections == 1  # one persistent connection (or UDP socket)
    check_arrival(records, messages, syslog_format=syslog_format, payload=payload)
    word = "datagrams" if protocol == "udp" else "messages"
    assert results[0].summary.startswith(f"{'Sent' if protocol == 'udp' else 'Wrote'} 100 {word}")
    assert f"{protocol}://127.0.0.1:{receiver.port}" in results[0].summary


def test_tls_with_a_client_certificate(rsyslog, pki):
    """rsyslog in x509/certvalid mode only takes clients whose certificate our CA signed."""
    receiver = rsyslog("tls", tls=dataclasses.replace(pki.server, auth_mode="x509/certvalid"))
    messages = make_messages(200)
    cfg = config(receiver, caBundle=pki.ca_pem, clientCert=pki.client_cert_pem)
    with KIND.open(config=cfg, secret=pki.client_key_pem) as session:
        send_all(session, messages)
        records = sentinel_after(receiver, session, len(messages))
    check_arrival(records, messages, syslog_format="rfc5424", payload="json")


@pytest.mark.parametrize("protocol", ["tcp", "tls"])
def test_the_peer_restarting_between_two_batches(rsyslog, pki, protocol):
    receiver = rsyslog(protocol, tls=pki.server if protocol == "tls" else None)
    first, second = make_messages(50), make_messages(50, start=51)
    cfg = config(receiver, caBundle=pki.ca_pem if protocol == "tls" else "")
    with KIND.open(config=cfg, secret="") as session:
        session.send(first)
        receiver.wait_records(50)
        receiver.restart()  # closes our connection; the session only finds out when it sends
        session.send(second)
        records = sentinel_after(receiver, session, 100)
        assert session.connections == 2
    check_arrival(records, first + second, syslog_format="rfc5424", payload="json")


def test_a_large_message_over_tcp_arrives_whole(rsyslog):
    receiver = rsyslog("tcp")
    big = dataclasses.replace(
        make_messages(1)[0],
        raw=json.dumps({"id": "big", "blob": "ü" * 100_000}, ensure_ascii=False),
    )
    messages = [*make_messages(3), big, *make_messages(3, start=10)]
    with KIND.open(config=config(receiver), secret="") as session:
        session.send(messages)
        records = sentinel_after(receiver, session, len(messages))
    check_arrival(records, messages, syslog_format="rfc5424", payload="json")


def test_udp_cuts_an_oversized_message_and_says_so(rsyslog):
    receiver = rsyslog("udp")
    big = dataclasses.replace(
        make_messages(1)[0], raw=json.dumps({"id": "big", "blob": "ü" * 40_000}, ensure_ascii=False)
    )
    messages = [make_messages(1, start=5)[0], big]
    with KIND.open(config=config(receiver), secret="") as session:
        result = session.send(messages)
        records = sentinel_after(receiver, session, 2)
    assert "1 message was longer than 65,507 bytes and cut to fit a datagram" in result.summary
    check_arrival(records[:1], messages[:1], syslog_format="rfc5424", payload="json")
    whole = KIND.open(config=config(receiver), secret="").encoder.message(big).decode()
    cut = frames.truncate_utf8(whole.encode(), MAX_DATAGRAM).decode()
    assert len(whole.encode()) > MAX_DATAGRAM >= len(cut.encode())
    # What arrived is the start of the message, cut at a character boundary.
    assert cut.endswith(records[1]["msg"])
    assert expected_payload(big, "json").startswith(records[1]["msg"])


# --- failures ---------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol", ["tcp", "tls"])
def test_a_closed_port_is_a_generic_error_that_retries(protocol):
    port = free_port()
    cfg = config(None, port=port, protocol=protocol)
    with KIND.open(config=cfg, secret="") as session, pytest.raises(CollectionError) as caught:
        session.send(make_messages(3))
    error = caught.value
    assert error.error_type == ErrorType.THIRD_PARTY_GENERIC and error.retries
    assert f"127.0.0.1:{port}" in error.message
    assert "refused" in error.message


def test_a_closed_udp_port_is_a_generic_error():
    """The ICMP "port unreachable" of the first datagram makes a later send of the batch fail
    on the connected socket."""
    port = free_port(socket.SOCK_DGRAM)
    cfg = config(None, port=port, protocol="udp")
    with KIND.open(config=cfg, secret="") as session, pytest.raises(CollectionError) as caught:
        session.send(make_messages(50))
    assert caught.value.error_type == ErrorType.THIRD_PARTY_GENERIC
    assert f"127.0.0.1:{port}" in caught.value.message


def test_an_unknown_host_is_a_generic_error():
    cfg = config(None, host="no-such-receiver.invalid")
    with KIND.open(config=cfg, secret="") as session, pytest.raises(CollectionError) as caught:
        session.send(make_messages(1))
    assert caught.value.error_type == ErrorType.THIRD_PARTY_GENERIC
    assert "no-such-receiver.invalid" in caught.value.message


def test_a_certificate_our_ca_did_not_sign_is_a_config_error(rsyslog, pki):
    receiver = rsyslog("tls", tls=pki.stray_server)
    cfg = config(receiver, caBundle=pki.ca_pem)
    with KIND.open(config=cfg, secret="") as session, pytest.raises(CollectionError) as caught:
        session.send(make_messages(1))
    error = caught.value
    assert error.error_type == ErrorType.THIRD_PARTY_CONFIG and not error.retries
    assert f"127.0.0.1:{receiver.port}" in error.message
    assert "could not be verified" in error.message
    assert receiver.records() == []


@pytest.mark.parametrize("client", ["none", "untrusted"])
def test_a_receiver_that_refuses_our_client_certificate_is_a_config_error(rsyslog, pki, client):
    """rsyslog (x509/certvalid) closes the connection right after a TLS 1.3 handshake when the
    client certificate is missing or untrusted; a write would still succeed, so the session
    must notice before writing, or every batch would be lost while counted as delivered."""
    receiver = rsyslog("tls", tls=dataclasses.replace(pki.server, auth_mode="x509/certvalid"))
    cert, key = ("", "") if client == "none" else (pki.stranger_cert_pem, pki.stranger_key_pem)
    cfg = config(receiver, caBundle=pki.ca_pem, clientCert=cert)
    with KIND.open(config=cfg, secret=key) as session:
        for _attempt in range(2):  # and again on the next try: no batch is ever claimed sent
            with pytest.raises(CollectionError) as caught:
                session.send(make_messages(5))
            assert caught.value.error_type == ErrorType.THIRD_PARTY_CONFIG
            assert "client certificate" in caught.value.message
            assert f"127.0.0.1:{receiver.port}" in caught.value.message
    # With the certificate our CA signed, the same receiver takes the messages.
    cfg = config(receiver, caBundle=pki.ca_pem, clientCert=pki.client_cert_pem)
    with KIND.open(config=cfg, secret=pki.client_key_pem) as session:
        messages = make_messages(5)
        session.send(messages)
        records = sentinel_after(receiver, session, 5)
    check_arrival(records, messages, syslog_format="rfc5424", payload="json")


def test_a_tcp_receiver_that_drops_us_on_arrival_is_a_generic_error(rsyslog):
    receiver = rsyslog("tcp", allowed_sender="192.0.2.1")  # anyone but us
    session = KIND.open(config=config(receiver), secret="")
    with session, pytest.raises(CollectionError) as caught:
        session.send(make_messages(5))
    assert caught.value.error_type == ErrorType.THIRD_PARTY_GENERIC
    assert "as soon as it was opened" in caught.value.message
    assert receiver.records() == []


def test_a_client_key_that_does_not_match_is_a_config_error_without_the_key(pki):
    cfg = config(None, protocol="tls", caBundle=pki.ca_pem, clientCert=pki.client_cert_pem)
    other_key = Pki._key_pem(ec.generate_private_key(ec.SECP256R1()))
    session = KIND.open(config=cfg, secret=other_key)
    with session, pytest.raises(CollectionError) as caught:
        session.send(make_messages(1))
    error = caught.value
    assert error.error_type == ErrorType.THIRD_PARTY_CONFIG
    text = f"{error.message} {error.remedy} {error!r} {error.details()} {session!r}"
    assert "PRIVATE KEY" not in text and other_key[40:80] not in text
    assert "could not be used" in error.message


def test_a_bad_stored_config_is_a_config_error():
    with pytest.raises(CollectionError) as caught:
        KIND.open(config={"host": "x", "port": "514"}, secret="")
    assert caught.value.error_type == ErrorType.THIRD_PARTY_CONFIG
    with pytest.raises(CollectionError) as caught:
        KIND.open(config={"host": "x", "port": 514, "protocol": "sctp"}, secret="")
    assert "protocol 'sctp'" in caught.value.message


# --- frames -----------------------------------------------------------------------------------
def test_octet_counting_counts_bytes_and_lf_framing_has_one_lf_per_message():
    messages = make_messages(40)
    for payload in ("json", "cef"):
        octets = frames.Encoder(payload=payload, framing="octet-counting").stream(messages)
        parts = []
        rest = octets
        while rest:
            length, _, rest = rest.partition(b" ")
            parts.append(rest[: int(length)])
            rest = rest[int(length) :]
        assert len(parts) == len(messages)
        assert all(part.startswith(b"<") and b"\n" not in part for part in parts)
        lines = frames.Encoder(payload=payload, framing="lf").stream(messages)
        assert lines.count(b"\n") == len(messages) and lines.endswith(b"\n")
        assert lines.split(b"\n")[:-1] == parts


def test_headers_are_printable_ascii_and_times_utc():
    encoder = frames.Encoder(hostname="bad host\nname ü")
    assert encoder.hostname == "badhostname"
    assert frames.Encoder(hostname="").hostname == "-"
    assert frames.printusascii("x" * 300, 255) == "x" * 255
    paris = dt.timezone(dt.timedelta(hours=2))
    moment = dt.datetime(2026, 5, 1, 12, 0, 0, 5000, tzinfo=paris)
    assert frames.iso_ms(moment) == "2026-05-01T10:00:00.005Z"
    assert frames.iso_ms(moment.replace(tzinfo=None)) == "2026-05-01T12:00:00.005Z"
    assert frames.bsd_time(moment) == "May  1 10:00:00"
    message = dataclasses.replace(
        make_messages(1)[0], metadata={"_sourceName": "Strange stream\n"}, message_time=moment
    )
    line = frames.Encoder(hostname="h").message(message)
    assert line.startswith(b"<134>1 2026-05-01T10:00:00.005Z h sumosources - Strangestream - {")
    bsd = frames.Encoder(hostname="h", syslog_format="rfc3164").message(message)
    assert bsd.startswith(b"<134>May  1 10:00:00 h sumosources: {")


def test_json_payload_is_one_line_and_keeps_everything():
    message = dataclasses.replace(
        make_messages(1)[0],
        raw=json.dumps({"id": "p", "lines": "a\nb"}, indent=2),  # pretty-printed: raw LFs
        metadata={"_source": "S", "message": "a custom field named message"},
        test=True,
    )
    data = frames.json_payload(message)
    assert b"\n" not in data and b"\r" not in data
    body = json.loads(data)
    assert body["message"] == {"id": "p", "lines": "a\nb"}
    assert body["message_field"] == "a custom field named message"
    assert body["_test"] is True and body["_messageId"] == message.id
    assert list(body)[-1] == "message"


def test_json_payload_without_a_dict_per_message_is_the_same_object():
    """The common case is built from the metadata's JSON and an f-string; it must be exactly
    what the general case (one dict, one dump) gives."""
    for message in [*make_messages(30), dataclasses.replace(make_messages(1)[0], metadata={})]:
        data = frames.json_payload(message)
        body = json.loads(data)
        assert list(body) == [*message.metadata, "_messageId", "_messageTime", "_receiptTime",
                              "message"]  # fmt: skip
        assert body == {
            **message.metadata,
            "_messageId": message.id,
            "_messageTime": frames.iso_ms(message.message_time),
            "_receiptTime": frames.iso_ms(message.receipt_time),
            "message": json.loads(message.raw),
        }
        # The general path (taken for test messages) gives the same bytes but for "_test".
        marked = frames.json_payload(dataclasses.replace(message, test=True))
        assert marked.replace(b',"_test":true', b"") == data


def test_iso_ms_edges():
    import zoneinfo

    assert frames.iso_ms(dt.datetime(2026, 5, 1, tzinfo=UTC)) == "2026-05-01T00:00:00.000Z"
    assert frames.iso_ms(dt.datetime(5, 1, 1, 0, 0, 0, 1999, tzinfo=UTC)) == (
        "0005-01-01T00:00:00.001Z"
    )
    assert frames.iso_ms(dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)) == (
        "9999-12-31T23:59:59.999Z"
    )
    berlin = dt.datetime(2026, 7, 1, 12, 0, 0, 250000, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    assert frames.iso_ms(berlin) == "2026-07-01T10:00:00.250Z"


def test_truncation_keeps_utf8_whole():
    text = "aü日🚀" * 10
    data = text.encode()
    for limit in range(len(data) + 2):
        cut = frames.truncate_utf8(data, limit)
        assert len(cut) <= limit and data.startswith(cut)
        cut.decode()  # never a broken character
        assert len(cut) >= limit - 3 or cut == data


def test_encoded_size_is_close_to_the_real_size():
    messages = make_messages(300)
    for payload in ("json", "cef"):
        encoder = frames.Encoder(payload=payload)
        for message in messages:
            real = len(encoder.stream([message]))
            estimate = KIND.encoded_size(message)
            assert estimate >= 0.7 * real, (payload, message.id)
            if payload == "json" or message.cef is None:
                # A kind's CEF view is mostly smaller than the item; then it may overestimate.
                assert estimate <= 1.5 * real, (payload, message.id)


# --- the kind's page-facing parts -------------------------------------------------------------
def test_api_config_masks_the_key_and_describe_reads_well():
    destination = Destination(
        kind="Syslog",
        config={
            "host": "siem.example",
            "port": 6514,
            "protocol": "tls",
            "framing": "lf",
            "format": "rfc5424",
            "payload": "cef",
            "caBundle": "",
            "clientCert": "",
        },
        secret_encrypted="stored",
    )
    config = KIND.api_config(destination)
    assert list(config) == list(KIND.config_keys)
    assert config["clientKey"] == MASK and config["port"] == 6514
    assert KIND.describe(destination) == "tls://siem.example:6514 · RFC 5424 · CEF · LF"
    destination.config = {"host": "::1", "port": 514, "protocol": "udp", "format": "rfc3164"}
    destination.secret_encrypted = ""
    assert KIND.describe(destination) == "udp://[::1]:514 · RFC 3164 · JSON"
    assert KIND.api_config(destination)["clientKey"] == ""
    assert KIND.secret_field == "client_key"


# --- the form ---------------------------------------------------------------------------------
def form_data(**kw) -> dict:
    data = {
        "name": "SOC syslog",
        "description": "",
        "route": "",
        "siem": False,
        "host": "siem.example.net",
        "port": 6514,
        "protocol": "tls",
        "framing": "",
        "syslog_format": "",
        "payload": "",
        "ca_bundle": "",
        "client_cert": "",
        "client_key": "",
    }
    data.update(kw)
    return data


def test_form_accepts_a_full_tls_config(db, pki):
    form = SyslogDestinationForm(
        data=form_data(
            ca_bundle=pki.ca_pem, client_cert=pki.client_cert_pem, client_key=pki.client_key_pem
        )
    )
    assert form.is_valid(), form.errors
    assert form.kind_config() == {
        "host": "siem.example.net",
        "port": 6514,
        "protocol": "tls",
        "framing": "octet-counting",
        "format": "rfc5424",
        "payload": "json",
        "caBundle": pki.ca_pem.strip(),
        "clientCert": pki.client_cert_pem.strip(),
    }
    assert form.new_secret() == pki.client_key_pem.strip()
    assert "clientKey" not in form.kind_config()


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"port": 0}, "port", "between 1 and 65535"),
        ({"port": 70000}, "port", "between 1 and 65535"),
        ({"port": "abc"}, "port", "whole number"),
        ({"port": ""}, "port", "A port is required"),
        ({"host": ""}, "host", "A host is required"),
        ({"host": "tcp://siem.example.net"}, "host", "without a scheme"),
        ({"host": "siem.example.net:514"}, "host", "Port field"),
        ({"host": "siem.example.net/x"}, "host", "without a path"),
        ({"host": "bad host!"}, "host", "Enter a host name"),
        ({"host": "-bad.example"}, "host", "Enter a host name"),
        ({"protocol": ""}, "protocol", "Choose UDP, TCP or TLS"),
        ({"protocol": "sctp"}, "protocol", "valid choice"),
        ({"framing": "nul"}, "framing", "valid choice"),
        ({"syslog_format": "rfc9999"}, "syslog_format", "valid choice"),
        ({"payload": "xml"}, "payload", "valid choice"),
        ({"ca_bundle": "not a certificate"}, "ca_bundle", "PEM certificates"),
        ({"client_cert": "-----BEGIN CERTIFICATE-----\nxx\n"}, "client_cert", "PEM"),
        ({"client_key": "garbage"}, "client_key", "must be a PEM private key"),
    ],
)
def test_form_field_errors(db, changes, field, text):
    form = SyslogDestinationForm(data=form_data(**changes))
    assert not form.is_valid()
    assert field in form.errors, form.errors
    assert text in " ".join(form.errors[field])


def test_form_pairs_certificate_and_key(db, pki):
    cert, key = pki.client_cert_pem, pki.client_key_pem
    form = SyslogDestinationForm(data=form_data(client_cert=cert))
    assert not form.is_valid()
    assert form.errors["client_key"] == ["A client certificate needs its key."]
    form = SyslogDestinationForm(data=form_data(client_key=key))
    assert not form.is_valid()
    assert form.errors["client_cert"] == ["Enter the certificate that belongs to the key."]
    stranger = Pki._key_pem(ec.generate_private_key(ec.SECP256R1()))
    form = SyslogDestinationForm(data=form_data(client_cert=cert, client_key=stranger))
    assert not form.is_valid()
    assert form.errors["client_key"] == ["This key does not belong to the client certificate."]
    # The key a user typed is never rendered back, even on a form that failed.
    assert "PRIVATE KEY" not in str(form["client_key"])
    assert stranger[40:80] not in form.as_div()


def test_form_refuses_an_encrypted_key(db, pki):
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(pki.client_key_pem.encode(), password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase"),
    ).decode()
    form = SyslogDestinationForm(
        data=form_data(client_cert=pki.client_cert_pem, client_key=encrypted)
    )
    assert not form.is_valid()
    assert "encrypted" in form.errors["client_key"][0]


def test_form_tls_fields_only_with_tls_and_framing_ignored_for_udp(db, pki):
    form = SyslogDestinationForm(data=form_data(protocol="tcp", ca_bundle=pki.ca_pem))
    assert not form.is_valid()
    assert "only used with TLS" in form.errors["ca_bundle"][0]
    form = SyslogDestinationForm(data=form_data(protocol="udp", port=514, framing="lf"))
    assert form.is_valid(), form.errors
    assert form.kind_config()["protocol"] == "udp"
    form = SyslogDestinationForm(data=form_data(host="[2001:db8::1]", protocol="tcp"))
    assert form.is_valid(), form.errors
    assert form.kind_config()["host"] == "2001:db8::1"


def test_form_keeps_a_stored_key_when_left_blank_or_masked(db, pki):
    destination = Destination.objects.create(
        name="Stored",
        kind="Syslog",
        config={
            "host": "siem.example.net",
            "port": 6514,
            "protocol": "tls",
            "framing": "lf",
            "format": "rfc3164",
            "payload": "cef",
            "caBundle": pki.ca_pem,
            "clientCert": pki.client_cert_pem,
        },
    )
    destination.set_secret(pki.client_key_pem)
    destination.save()
    form = SyslogDestinationForm(instance=destination)
    assert form["syslog_format"].value() == "rfc3164" and form["framing"].value() == "lf"
    for key in ("", MASK):
        form = SyslogDestinationForm(
            data=form_data(name="Stored", client_cert=pki.client_cert_pem, client_key=key),
            instance=destination,
        )
        assert form.is_valid(), form.errors
        assert form.new_secret() == ""  # keep the stored key


def test_a_lone_surrogate_anywhere_does_not_stop_delivery():
    message = dataclasses.replace(
        make_messages(1)[0],
        raw='{"id":"s","text":"bad \ud800 here"}',
        metadata={"_source": "S \udfff", "_sourceName": "Alerts"},
        cef=None,  # the generic event, which carries _source and the raw item
    )
    for payload in ("json", "cef"):
        data = frames.Encoder(payload=payload).stream([message])
        data.decode()  # valid UTF-8
        body = data.split(b" - ", 2)[2]  # after "LEN <PRI>1 ... sumosources - MSGID - "
        if payload == "json":
            assert json.loads(body)["_source"] == "S \udfff"  # escaped, so nothing is lost
            assert json.loads(body)["message"]["text"] == "bad ? here"
        else:
            assert parse_cef(body.decode()).device_product == "S ?"
