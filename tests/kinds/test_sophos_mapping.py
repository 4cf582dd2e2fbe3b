"""Item mapping and host rules of the Sophos Central kind: pure functions, no network."""

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from collector.kinds.sophos_central import kind
from collector.kinds.sophos_central.mapping import SIEM_EVENT_IDS, parse_time, siem_event_id
from collector.kinds.sophos_central.transport import HostRefused, check_url, region_of
from sophos_simulator.catalog import CATEGORIES, EVENT_TYPES

UTC = dt.UTC


def test_the_vocabulary_is_the_seeds():
    with _seed() as seed:
        text = seed.read()
    listed = text.split("This will be one of the following values: ")[1].split(".")[0]
    values = [v.strip().removeprefix("or ").strip() for v in listed.split(",")]
    assert tuple(values) == SIEM_EVENT_IDS
    assert len(SIEM_EVENT_IDS) == 33


def _seed():
    for base in (Path(__file__).resolve().parents[3] / "shared", Path("/work/shared")):
        path = base / "seed" / "sophos-central-source.txt"
        if path.exists():
            return path.open()
    pytest.fail("the seed document is not beside the repository")


def test_kind_identity():
    assert kind.name == "Sophos Central"
    # Endpoints last: endpoint details of endpoint alerts, collected with Alerts.
    assert kind.stream_names == ("Alerts", "Events", "Endpoints")
    assert kind.icon == "kinds/sophos_central/icon.svg"


@pytest.mark.parametrize(
    "group, expected",
    [
        ("RUNTIME_DETECTIONS", "runtimeDetections"),
        ("APPLICATION_CONTROL", "applicationControl"),
        ("MALWARE", "malware"),
        ("UPDATING", "updating"),
        ("PUA", "pua"),
        ("PROTECTION", "protection"),
        ("POLICY", "policy"),
        ("ENDPOINT_FIREWALL", "endpointFirewall"),
        ("DOWNLOAD_REPUTATION", "downloadReputation"),
        ("SYSTEM_HEALTH", "systemHealth"),
        ("BLOCKLISTED", "blockListed"),
        ("WEB", "uncategorized"),
        ("DEVICE_CONTROL", "uncategorized"),
        ("", "uncategorized"),
        (None, "uncategorized"),
        (["MALWARE"], "uncategorized"),
    ],
)
def test_event_groups_map_to_the_alert_vocabulary(group, expected):
    meta = kind.map_item("Events", {"id": "e1", "group": group, "when": "2019-04-01T15:11:41.000Z"})
    assert meta.siem_event_id == expected


def test_every_category_maps_to_itself_and_unknown_ones_to_uncategorized():
    for value in SIEM_EVENT_IDS:
        assert kind.map_item("Alerts", {"id": "a", "category": value}).siem_event_id == value
    for value in ("ztnaGateway", "emailSecurity", 42):
        assert (
            kind.map_item("Alerts", {"id": "a", "category": value}).siem_event_id == "uncategorized"
        )


def test_simulated_vocabularies_cover_the_seed():
    assert {c[0] for c in CATEGORIES} == set(SIEM_EVENT_IDS)
    assert {"RUNTIME_DETECTIONS", "APPLICATION_CONTROL", "WEB"} <= {e[1] for e in EVENT_TYPES}


@pytest.mark.parametrize(
    "value, expected",
    [
        ("2021-02-12T15:04:53.780Z", dt.datetime(2021, 2, 12, 15, 4, 53, 780000, UTC)),
        ("2021-02-12T15:04:53.780", dt.datetime(2021, 2, 12, 15, 4, 53, 780000, UTC)),
        ("2021-02-12T15:04:53Z", dt.datetime(2021, 2, 12, 15, 4, 53, tzinfo=UTC)),
        ("2021-02-12T17:04:53.780+02:00", dt.datetime(2021, 2, 12, 15, 4, 53, 780000, UTC)),
        ("not a time", None),
        ("", None),
        (None, None),
        (1613142293, None),
    ],
)
def test_message_times(value, expected):
    parsed = parse_time(value)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == dt.timedelta(0)


def test_message_time_fields_per_stream():
    alert = {"id": "a1", "raisedAt": "2021-02-12T15:04:53.780", "when": "1999-01-01T00:00:00Z"}
    event = {"id": "e1", "when": "2019-04-01T15:11:41.000Z", "raisedAt": "1999-01-01T00:00:00Z"}
    assert kind.map_item("Alerts", alert).message_time.year == 2021
    assert kind.map_item("Events", event).message_time.year == 2019
    assert kind.map_item("Events", {"id": "e2"}).message_time is None


def test_items_without_an_id_get_a_stable_one():
    first = kind.map_item("Events", {"when": "x", "name": "no id"})
    again = kind.map_item("Events", {"name": "no id", "when": "x"})
    assert first.vendor_id == again.vendor_id and first.vendor_id.startswith("sha256:")
    assert kind.map_item("Events", {"id": 17}).vendor_id == "17"
    assert kind.map_item("Events", ["not", "a", "dict"]).siem_event_id == "uncategorized"


ODD_VALUES = st.none() | st.text() | st.integers() | st.floats() | st.lists(st.integers())


@given(
    st.dictionaries(
        st.sampled_from(["id", "when", "raisedAt", "group", "category", "lastSeenAt"]), ODD_VALUES
    )
)
def test_map_item_never_raises(item):
    for stream in ("Alerts", "Events"):
        meta = kind.map_item(stream, item)
        assert isinstance(meta.vendor_id, str) and meta.vendor_id
        assert meta.siem_event_id in SIEM_EVENT_IDS
    meta = kind.map_item("Endpoints", item)
    assert isinstance(meta.vendor_id, str) and meta.vendor_id and len(meta.vendor_id) <= 128
    assert meta.siem_event_id == "endpoint"


def test_siem_event_id_cache_is_bounded():
    for i in range(10_000):
        siem_event_id(f"GROUP_{i}")
    from collector.kinds.sophos_central import mapping

    assert len(mapping._SIEM_CACHE) <= mapping._SIEM_CACHE_LIMIT


# --- hosts ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, extra, allowed",
    [
        ("https://api-eu01.central.sophos.com", [], True),
        ("https://api.central.sophos.com/", [], True),
        ("https://sophos.com", [], True),
        ("http://api-eu01.central.sophos.com", [], True),  # upgraded to https
        ("https://api-eu01.central.sophos.com:8443", [], False),
        ("https://api-eu01.central.sophos.com.evil.example", [], False),
        ("https://evilsophos.com", [], False),
        ("https://user:pw@api.central.sophos.com", [], False),
        ("ftp://api.central.sophos.com", [], False),
        ("http://127.0.0.1:8765/region/eu01", ["127.0.0.1:8765"], True),
        ("http://127.0.0.1:8766/region/eu01", ["127.0.0.1:8765"], False),
        ("https://sim.lan:9443", ["sim.lan"], True),
        ("http://sim.lan", ["http://sim.lan/"], True),
        ("http://[::1]:8765", ["[::1]:8765"], True),
        ("http://[::1]:8765", ["::1"], False),  # an IPv6 entry must be bracketed, as in a URL
        ("http://127.0.0.1:8765", [], False),
    ],
)
def test_host_allow_list(url, extra, allowed):
    try:
        check_url(url, extra)
    except HostRefused:
        assert not allowed
    else:
        assert allowed


@pytest.mark.parametrize(
    "raw, normal",
    [
        ("http://api-eu01.central.sophos.com/", "https://api-eu01.central.sophos.com"),
        ("api-us02.central.sophos.com", "https://api-us02.central.sophos.com"),
        ("HTTPS://API-EU02.CENTRAL.SOPHOS.COM", "https://api-eu02.central.sophos.com"),
        ("http://127.0.0.1:8765/region/eu01/", "http://127.0.0.1:8765/region/eu01"),
    ],
)
def test_vendor_hosts_are_normalised(raw, normal):
    assert check_url(raw, ["127.0.0.1:8765"]).url == normal


@pytest.mark.parametrize(
    "host, region",
    [
        ("https://api-eu02.central.sophos.com", "eu02"),
        ("http://127.0.0.1:8765/region/us03", "us03"),
        ("https://proxy.example", ""),
    ],
)
def test_region_of_a_data_host(host, region):
    assert region_of(host) == region
