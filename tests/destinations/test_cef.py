"""The generic CEF writer, proved against a strict parser, and the Sophos Central CEF mapping."""

import datetime as dt
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.destinations.base import CefEvent, Outgoing
from collector.destinations.cef import (
    format_cef,
    generic_event,
    severity_text,
    syslog_severity,
)
from collector.kinds.sophos_central.cef import cef_event
from collector.kinds.sophos_central.kind import SophosCentralKind
from tests.destinations.cef_parse import CefSyntaxError, parse_cef

UTC = dt.UTC
header_text = st.text().filter(lambda s: "\r" not in s and "\n" not in s)
keys = st.from_regex(r"[A-Za-z0-9]{1,16}", fullmatch=True)


def event(**kw) -> CefEvent:
    fields = dict(
        device_vendor="V",
        device_product="P",
        device_version="1",
        signature_id="sig",
        name="n",
        severity=5,
        extensions={},
    )
    fields.update(kw)
    return CefEvent(**fields)


# --- the writer -------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    vendor=header_text,
    product=header_text,
    version=header_text,
    signature=header_text,
    name=header_text,
    extensions=st.dictionaries(keys, st.text(), max_size=8),
)
def test_any_strings_survive_format_then_parse(
    vendor, product, version, signature, name, extensions
):
    line = format_cef(CefEvent(vendor, product, version, signature, name, 7, extensions=extensions))
    parsed = parse_cef(line)
    assert (
        parsed.device_vendor,
        parsed.device_product,
        parsed.device_version,
        parsed.signature_id,
        parsed.name,
        parsed.severity,
    ) == (vendor, product, version, signature, name, "7")
    assert parsed.extensions == extensions


@settings(max_examples=200, deadline=None)
@given(header=st.text(), value=st.text())
def test_line_breaks_never_reach_the_line(header, value):
    line = format_cef(event(name=header, extensions={"msg": value}))
    assert "\n" not in line and "\r" not in line
    parsed = parse_cef(line)
    # A header cannot carry a line break: each becomes one space; the extension keeps them.
    assert parsed.name == header.replace("\r\n", " ").replace("\r", " ").replace("\n", " ")
    assert parsed.extensions["msg"] == value


def test_escapes_are_the_specifications():
    line = format_cef(
        event(
            device_vendor="a|b\\c",
            name="x\ny",
            extensions={"msg": "p|q=r\\s\nt\ru", "cs1": "=", "cs2": "\\"},
        )
    )
    assert line == ("CEF:0|a\\|b\\\\c|P|1|sig|x y|5|msg=p|q\\=r\\\\s\\nt\\ru cs1=\\= cs2=\\\\")


def test_extension_keys_are_cleaned_and_empty_or_clashing_ones_dropped():
    line = format_cef(
        event(
            extensions={
                "source_info.ip": "10.0.0.1",
                "sourceinfoip": "clash",
                "!!!": "dropped",
                "ok": "yes",
                "none": None,
            }
        )
    )
    assert parse_cef(line).extensions == {"sourceinfoip": "10.0.0.1", "ok": "yes"}


def test_extension_values_of_other_types():
    moment = dt.datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    parsed = parse_cef(format_cef(event(extensions={"a": True, "b": 12, "rt": moment})))
    assert parsed.extensions == {"a": "true", "b": "12", "rt": "1777629600123"}


@pytest.mark.parametrize(
    ("given", "text", "syslog"),
    [
        (0, "0", 6),
        (3, "3", 6),
        (4, "4", 4),
        (6, "6", 4),
        (7, "7", 3),
        (8, "8", 3),
        (9, "9", 2),
        (10, "10", 2),
        (42, "10", 2),
        (-3, "0", 6),
        ("5", "5", 4),
        ("very_high", "Very-High", 2),
        ("High", "High", 3),
        ("medium", "Medium", 4),
        ("low", "Low", 6),
        ("whatever", "Unknown", 6),
        ("²", "Unknown", 6),
        (None, "Unknown", 6),
    ],
)
def test_severity(given, text, syslog):
    assert severity_text(given) == text
    assert syslog_severity(given) == syslog
    assert parse_cef(format_cef(event(severity=given))).severity == text


def test_empty_extension():
    assert parse_cef(format_cef(event())).extensions == {}
    assert format_cef(event()).endswith("|5|")


@pytest.mark.parametrize(
    "bad",
    [
        "CEF:0|a|b|c|d|e|5",  # six pipes
        "CEF:0|a|b|c|d|e|11|",  # severity out of range
        "CEF:0|a\\x|b|c|d|e|5|",  # bad header escape
        "CEF:0|a|b|c|d|e|5|k=v\\x",  # bad extension escape
        "CEF:0|a|b|c|d|e|5|k=v\nw",  # raw line break
        "CEF:0|a|b|c|d|e|5|k=v k_2=w",  # a key that is not alphanumeric
        "CEF:0|a|b|c|d|e|5|k=v k=w",  # a key twice
        "CEF:0|a|b|c|d|e|5|novalue",
    ],
)
def test_the_parser_is_strict(bad):
    with pytest.raises(CefSyntaxError):
        parse_cef(bad)


# --- the generic event ------------------------------------------------------------------------
def outgoing(**kw) -> Outgoing:
    moment = dt.datetime(2026, 5, 1, 10, 0, 0, 123000, tzinfo=UTC)
    fields = dict(
        id=77,
        raw='{"id":"x","text":"a=b|c\\\\d"}',
        metadata={
            "_source": "Sophos | East",
            "_sourceCategory": "sophos/east",
            "_collector": "Hosted EU",
            "_sourceName": "Alerts",
            "tenant": "Acme",
            "_siemEventID": "malware",
        },
        message_time=moment,
        receipt_time=moment,
    )
    fields.update(kw)
    return Outgoing(**fields)


def test_generic_event_carries_the_metadata_and_the_raw_json():
    message = outgoing()
    parsed = parse_cef(format_cef(generic_event(message)))
    assert (parsed.device_vendor, parsed.device_product, parsed.signature_id, parsed.name) == (
        "Sumo Sources",
        "Sophos | East",
        "malware",
        "Alerts",
    )
    assert parsed.severity == "Unknown"
    assert json.loads(parsed.extensions["msg"]) == json.loads(message.raw)
    assert parsed.extensions["rt"] == "1777629600123"
    assert parsed.extensions["externalId"] == "77"
    assert parsed.extensions["cs1Label"] == "sourceCategory"
    assert parsed.extensions["cs1"] == "sophos/east"
    assert parsed.extensions["cs3"] == "Acme"


def test_generic_event_of_a_health_record_and_of_pretty_printed_json():
    message = outgoing(
        raw=json.dumps({"eventName": "x", "nested": {"a": 1}}, indent=2),
        metadata={"_source": "", "_sourceName": "", "_index": "sumologic_system_events"},
    )
    parsed = parse_cef(format_cef(generic_event(message)))
    assert parsed.signature_id == "message"
    assert parsed.name == "sumologic_system_events"
    assert parsed.device_product == "Sumo Sources"
    assert parsed.extensions["msg"] == '{"eventName":"x","nested":{"a":1}}'
    assert "cs1" not in parsed.extensions


# --- Sophos Central ---------------------------------------------------------------------------
EVENT = {
    "id": "5bc48f19-3905-4f72-9f79-cd381c8e92ce",
    "type": "Event::Endpoint::Threat::Detected",
    "name": "Malware detected: 'Eicar-AV-Test' at 'C:\\Users\\x\\eicar.com'",
    "severity": "medium",
    "group": "MALWARE",
    "when": "2019-04-01T15:11:41.000Z",
    "created_at": "2019-04-01T15:11:41.053Z",
    "customer_id": "816f36ee-dd2e-4ccd-bb12-cea766c28ade",
    "endpoint_id": "c80c2a87-0000",
    "endpoint_type": "server",
    "location": "mercury-1",
    "source": "CORP\\jdoe",
    "source_info": {"ip": "10.1.39.32"},
    "origin": None,
    "user_id": None,
    "threat": "Eicar-AV-Test",
}
ALERT = {
    "id": "a5ded91c-6575-435c-a6b4-64b94f9048ff",
    "allowedActions": ["acknowledge"],
    "category": "updating",
    "description": "John-PC is out of date.",
    "groupKey": "MSxFdmVudDo6RW5kcG9pbnQ6Ok91dE9mRGF0ZSw1MTMs",
    "managedAgent": {"id": "bb90527d", "type": "computer", "name": "John-PC"},
    "person": {"id": "17dd896f", "name": "John Doe"},
    "product": "endpoint",
    "raisedAt": "2021-02-12T15:04:53.780Z",
    "severity": "high",
    "tenant": {"id": "79067fa3", "name": "Acme Corp"},
    "type": "Event::Endpoint::OutOfDate",
}


def test_sophos_event_in_cef():
    parsed = parse_cef(format_cef(cef_event("Events", EVENT)))
    assert (parsed.device_vendor, parsed.device_product, parsed.device_version) == (
        "sophos",
        "sophos central",
        "1.0",
    )
    assert parsed.signature_id == "Event::Endpoint::Threat::Detected"
    assert parsed.name == EVENT["name"]
    assert parsed.severity == "5"
    assert parsed.extensions == {
        "rt": "1554131501053",
        "end": "1554131501000",
        "suser": "CORP\\jdoe",
        "dhost": "mercury-1",
        "src": "10.1.39.32",
        "deviceExternalId": "c80c2a87-0000",
        "externalId": EVENT["id"],
        "cat": "malware",
        "cs1Label": "customerId",
        "cs1": EVENT["customer_id"],
        "cs2Label": "endpointType",
        "cs2": "server",
        "cs4Label": "threat",
        "cs4": "Eicar-AV-Test",
    }


def test_sophos_alert_in_cef():
    parsed = parse_cef(format_cef(cef_event("Alerts", ALERT)))
    assert parsed.signature_id == "Event::Endpoint::OutOfDate"
    assert parsed.name == "John-PC is out of date."
    assert parsed.severity == "8"
    ext = parsed.extensions
    assert ext["rt"] == ext["end"] == "1613142293780"
    assert (ext["suser"], ext["duid"], ext["dhost"], ext["deviceExternalId"]) == (
        "John Doe",
        "17dd896f",
        "John-PC",
        "bb90527d",
    )
    assert ext["cat"] == "updating"
    assert (ext["cs1"], ext["cs2"], ext["cs3Label"], ext["cs3"]) == (
        "79067fa3",
        "computer",
        "product",
        "endpoint",
    )


@pytest.mark.parametrize(
    ("severity", "expected"),
    [("none", "0"), ("low", "1"), ("medium", "5"), ("high", "8"), ("very_high", "10"),
     ("HIGH", "8"), ("bogus", "0"), (None, "0"), (3, "0")],
)  # fmt: skip
def test_sophos_severity_map(severity, expected):
    assert parse_cef(format_cef(cef_event("Events", {**EVENT, "severity": severity}))).severity == (
        expected
    )


@pytest.mark.parametrize(
    "item",
    [
        None,
        [],
        "text",
        {},
        {"id": 5, "name": ["not", "text"], "when": 12, "managedAgent": "x", "source_info": 3},
        {"type": {"a": 1}, "severity": {"b": 2}, "group": ["x"], "raisedAt": "not a time"},
    ],
)
@pytest.mark.parametrize("stream", ["Alerts", "Events", "Other"])
def test_sophos_mapping_never_raises_on_odd_items(stream, item):
    result = SophosCentralKind().cef_event(stream, item)
    if result is not None:
        parsed = parse_cef(format_cef(result))
        assert parsed.device_vendor == "sophos"
        assert parsed.extensions["cat"] == "uncategorized"
    else:
        assert not isinstance(item, dict)


def test_sophos_kind_uses_the_mapping():
    assert SophosCentralKind().cef_event("Events", EVENT) == cef_event("Events", EVENT)


def test_every_item_the_simulator_makes_maps_to_valid_cef():
    """The stand-in vendor's events and alerts, of every type and category, in strict CEF."""
    from sophos_simulator.catalog import ItemFactory
    from sophos_simulator.config import SimulatorConfig

    factory = ItemFactory(
        seed=7, tenant_id="t-1", tenant_name="Acme | Ltd", config=SimulatorConfig()
    )
    created = 1_700_000_000_000
    for n in range(400):
        event = json.loads(factory.event(created + n)[0])
        _siem, common, _raised = factory.alert(created + n)
        alert = json.loads(common)
        for stream, item in (("Events", event), ("Alerts", alert)):
            parsed = parse_cef(format_cef(cef_event(stream, item)))
            assert parsed.signature_id == item["type"]
            assert parsed.name == (item["name"] if stream == "Events" else item["description"])
            assert parsed.extensions["externalId"] == item["id"]
            assert parsed.severity in {"1", "5", "8", "10", "0"}
            assert int(parsed.extensions["rt"]) > 1_600_000_000_000
