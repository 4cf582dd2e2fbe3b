"""The bundled Sophos Central simulator: strict like the real API, faithful to the contract,
controllable over Python and HTTP, counting what it served (its command line: test_cli.py)."""

import base64
import json
import time

import pytest
import requests

from collector.kinds.sophos_central import kind
from sophos_simulator import Simulator, SimulatorConfig
from sophos_simulator.catalog import CATEGORIES, UNKNOWN_CATEGORIES
from sophos_simulator.server import is_loopback


class Client:
    """Raw HTTP against a simulator, the way any public Sophos Central client talks to it."""

    def __init__(self, sim, client_id=None, secret=None):
        self.sim = sim
        self.http = requests.Session()
        cred = sim.credential(client_id)
        reply = self.http.post(
            sim.token_url,
            data={
                "grant_type": "client_credentials",
                "client_id": cred.client_id,
                "client_secret": secret or cred.client_secret,
                "scope": "token",
            },
        )
        assert reply.status_code == 200, reply.text
        self.token = reply.json()["access_token"]
        self.cred = cred

    def get(self, path, tenant=None, *, host=None, headers=None, **params):
        tenant = tenant or self.sim.tenants[0]
        base = host or self.sim.region_host(tenant.region)
        merged = {"Authorization": f"Bearer {self.token}", "X-Tenant-ID": tenant.id}
        merged.update(headers or {})
        return self.http.get(
            base + path, params=params, headers={k: v for k, v in merged.items() if v is not None}
        )


@pytest.fixture
def client(simulator):
    return Client(simulator)


# --- token, whoami, tenants ------------------------------------------------------------------


def test_token_answer_has_the_contract_shape(simulator):
    cred = simulator.credential()
    reply = requests.post(
        simulator.token_url,
        data=f"grant_type=client_credentials&client_id={cred.client_id}&client_secret={cred.client_secret}&scope=token",
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    body = reply.json()
    assert reply.status_code == 200
    assert set(body) == {
        "access_token",
        "errorCode",
        "expires_in",
        "message",
        "refresh_token",
        "token_type",
        "trackingId",
    }
    assert body["expires_in"] == 3600 and body["token_type"] == "bearer"


@pytest.mark.parametrize(
    "form, status, code",
    [
        ({"client_id": None}, 400, "customer.validation"),
        ({"grant_type": "password"}, 400, "customer.validation"),
        ({"client_id": "nobody"}, 401, "oauth.client_app_does_not_exist"),
        ({"client_secret": "wrong"}, 401, "oauth.invalid_client_secret"),
    ],
)
def test_token_errors(simulator, form, status, code):
    cred = simulator.credential()
    data = {
        "grant_type": "client_credentials",
        "client_id": cred.client_id,
        "client_secret": cred.client_secret,
    }
    data.update(form)  # requests leaves out fields whose value is None
    reply = requests.post(simulator.token_url, data=data)
    assert reply.status_code == status
    assert reply.json()["errorCode"] == code and reply.json()["trackingId"]


def test_whoami_per_credential_type(simulator_factory):
    sim = simulator_factory(
        tenants=[{"name": "Acme Ltd", "region": "eu02"}, {"name": "Globex", "region": "us01"}],
        credentials=[
            {"client_id": "t", "client_secret": "s", "id_type": "tenant", "tenants": ["Globex"]},
            {"client_id": "p", "client_secret": "s", "id_type": "partner"},
            {"client_id": "o", "client_secret": "s", "id_type": "organization"},
        ],
    )
    answers = {}
    for client_id in ("t", "p", "o"):
        c = Client(sim, client_id)
        answers[client_id] = c.http.get(
            sim.api_url + "/whoami/v1", headers={"Authorization": f"Bearer {c.token}"}
        ).json()
    assert answers["t"] == {
        "id": sim.tenant("Globex").id,
        "idType": "tenant",
        "apiHosts": {"global": sim.url, "dataRegion": sim.region_host("us01")},
    }
    assert answers["p"]["idType"] == "partner" and "dataRegion" not in answers["p"]["apiHosts"]
    assert answers["o"]["idType"] == "organization"


def test_tenant_listing_pages(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=7, events=0, alerts=0)
    c = Client(sim)
    url = sim.api_url + "/partner/v1/tenants"
    headers = {"Authorization": f"Bearer {c.token}", "X-Partner-ID": c.cred.id}
    first = c.http.get(
        url, params={"page": 1, "pageSize": 3, "pageTotal": "true"}, headers=headers
    ).json()
    assert first["pages"] == {"current": 1, "size": 3, "maxSize": 100, "total": 3, "items": 7}
    item = first["items"][0]
    assert set(item) == {
        "id",
        "name",
        "showAs",
        "dataGeography",
        "dataRegion",
        "billingType",
        "partner",
        "apiHost",
        "status",
    }
    assert item["apiHost"] == sim.region_host(item["dataRegion"]) and item["partner"] == {
        "id": c.cred.id
    }
    past = c.http.get(url, params={"page": 9, "pageSize": 3}, headers=headers)
    assert past.status_code == 200 and past.json()["items"] == []
    assert c.http.get(url, params={"pageSize": 101}, headers=headers).status_code == 400
    assert c.http.get(url, headers={"Authorization": headers["Authorization"]}).status_code == 400
    assert c.http.get(sim.api_url + "/organization/v1/tenants", headers=headers).status_code == 403


# --- strictness ----------------------------------------------------------------------------------


def test_bearer_token_is_required_and_checked(simulator, client):
    assert client.get("/siem/v1/events", headers={"Authorization": None}).status_code == 401
    assert (
        client.get("/siem/v1/events", headers={"Authorization": "Bearer nope"}).status_code == 401
    )
    assert client.get("/siem/v1/events").status_code == 200
    simulator.advance(3601)
    expired = client.get("/siem/v1/events")
    assert expired.status_code == 401 and expired.json()["error"] == "unauthorized"


def test_data_calls_need_the_right_tenant_and_host(simulator_factory):
    sim = simulator_factory(
        tenants=2,
        credentials=[{"client_id": "t", "client_secret": "s", "id_type": "tenant"}],
    )
    c = Client(sim)
    mine, other = sim.tenants
    assert c.get("/siem/v1/events", mine).status_code == 200
    missing = c.get("/siem/v1/events", headers={"X-Tenant-ID": None})
    assert missing.status_code == 400 and "X-Tenant-ID" in missing.json()["message"]
    assert c.get("/siem/v1/events", other, host=sim.region_host(other.region)).status_code == 403
    assert c.get("/siem/v1/events", mine, host=sim.region_host(other.region)).status_code == 403
    assert c.get("/siem/v1/events", mine, host=sim.url).status_code == 404


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 199},
        {"limit": 1001},
        {"limit": "many"},
        {"from_date": "yesterday"},
        {"cursor": "not-a-cursor"},
    ],
)
def test_siem_parameters_out_of_range_are_400(client, params):
    reply = client.get("/siem/v1/events", **params)
    assert reply.status_code == 400
    body = reply.json()
    assert set(body) == {"error", "message", "correlationId", "requestId", "createdAt"}


def test_from_date_older_than_24_hours_is_400(simulator, client):
    now = int(simulator.now())
    assert client.get("/siem/v1/events", from_date=now - 24 * 3600 + 60).status_code == 200
    assert client.get("/siem/v1/events", from_date=now - 24 * 3600 - 60).status_code == 400
    assert client.get("/siem/v1/alerts", from_date=now - 25 * 3600).status_code == 400


@pytest.mark.parametrize(
    "value, status",
    [
        ("2024-05-01T10:00:00.123Z", 200),
        ("2024-05-01T10:00:00Z", 200),
        ("2024-05-01T10:00:00.123+02:00", 200),
        ("2024-05-01T10:00:00.123456Z", 400),
        ("yesterday", 400),
    ],
)
def test_common_alerts_from_precision(client, value, status):
    assert client.get("/common/v1/alerts", **{"from": value}).status_code == status


# --- SIEM semantics --------------------------------------------------------------------------------


def test_events_cursor_paging_and_next_cursor_at_the_end(simulator_factory):
    sim = simulator_factory(events=450, alerts=0)
    c = Client(sim)
    first = c.get("/siem/v1/events", limit=200).json()
    assert first["has_more"] is True and len(first["items"]) == 200
    second = c.get("/siem/v1/events", limit=200, cursor=first["next_cursor"]).json()
    third = c.get("/siem/v1/events", limit=200, cursor=second["next_cursor"]).json()
    assert len(third["items"]) == 50 and third["has_more"] is False and third["next_cursor"]
    seen = [i["id"] for page in (first, second, third) for i in page["items"]]
    assert seen == sim.item_ids(None, "Events")
    empty = c.get("/siem/v1/events", limit=200, cursor=third["next_cursor"]).json()
    assert empty == {"has_more": False, "next_cursor": empty["next_cursor"], "items": []}
    assert base64.b64decode(empty["next_cursor"]).startswith(b"V2_CURSOR|")


def test_events_have_the_contract_fields(client):
    item = client.get("/siem/v1/events", limit=200).json()["items"][0]
    for key in ("id", "type", "name", "severity", "group", "when", "created_at", "customer_id",
                "endpoint_id", "endpoint_type", "location", "source", "source_info", "origin",
                "user_id", "threat"):  # fmt: skip
        assert key in item
    assert item["when"].endswith("Z") and item["created_at"] >= item["when"]


def test_expired_cursor_falls_back_to_the_window(simulator_factory):
    sim = simulator_factory(events=300, alerts=0)
    c = Client(sim)
    page = c.get("/siem/v1/events", limit=1000).json()
    sim.advance(20 * 3600)
    sim.add_items("Events", 5)
    sim.advance(5 * 3600)  # the cursor is now 25 hours old; only the 5 new items are in the window
    c = Client(sim)
    fallback = c.get("/siem/v1/events", limit=1000, cursor=page["next_cursor"]).json()
    assert [i["id"] for i in fallback["items"]] == sim.item_ids(None, "Events")[-5:]


def test_siem_alerts_endpoint(client, simulator):
    body = client.get("/siem/v1/alerts", limit=1000).json()
    assert {i["id"] for i in body["items"]} == set(simulator.item_ids(None, "Alerts"))
    item = body["items"][0]
    assert item["event_service_event_id"] == item["id"]
    assert isinstance(item["data"]["created_at"], int)
    assert simulator.stats()["totals"]["SiemAlerts"]["served"] == 50


# --- Common Alerts -------------------------------------------------------------------------------


def test_common_alerts_paging_by_raised_at(simulator_factory):
    sim = simulator_factory(events=0, alerts=230)
    c = Client(sim)
    collected, key = [], None
    while True:
        params = {"pageSize": 100, "sort": "raisedAt:asc", "pageTotal": "true"}
        if key:
            params["pageFromKey"] = key
        body = c.get("/common/v1/alerts", **params).json()
        assert body["pages"]["maxSize"] == 1000 and body["pages"]["items"] <= 230
        collected += body["items"]
        key = body["pages"].get("nextKey")
        if not key:
            break
    assert len(collected) == 230
    assert len({a["id"] for a in collected}) == 230
    stamps = [kind.map_item("Alerts", a).message_time for a in collected]
    assert stamps == sorted(stamps)
    assert any(not a["raisedAt"].endswith("Z") for a in collected)  # some without a zone
    assert c.get("/common/v1/alerts", pageSize=1001).status_code == 400


def test_common_alerts_filters_from_to_desc_and_search(simulator_factory):
    sim = simulator_factory(events=0, alerts=300)
    c = Client(sim)
    everything = c.get("/common/v1/alerts", pageSize=1000).json()["items"]
    middle = sorted(everything, key=lambda a: kind.map_item("Alerts", a).message_time)[150]
    moment = kind.map_item("Alerts", middle).message_time
    iso = moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    later = c.get("/common/v1/alerts", pageSize=1000, **{"from": iso}).json()["items"]
    earlier = c.get("/common/v1/alerts", pageSize=1000, to=iso).json()["items"]
    assert len(later) + len(earlier) == 300 and middle["id"] in {a["id"] for a in later}
    newest = c.get("/common/v1/alerts", pageSize=5, sort="raisedAt:desc").json()["items"]
    assert [a["id"] for a in newest] == [
        a["id"]
        for a in sorted(everything, key=lambda a: kind.map_item("Alerts", a).message_time)[::-1][:5]
    ]
    malware = c.get("/common/v1/alerts", pageSize=1000, category="malware,pua").json()["items"]
    assert malware and {a["category"] for a in malware} <= {"malware", "pua"}
    search = c.http.post(
        sim.region_host(sim.tenants[0].region) + "/common/v1/alerts/search",
        json={"category": ["malware", "pua"], "pageSize": 1000},
        headers={"Authorization": f"Bearer {c.token}", "X-Tenant-ID": sim.tenants[0].id},
    ).json()["items"]
    assert [a["id"] for a in search] == [a["id"] for a in malware]


def test_all_33_categories_and_some_unknown_ones_are_served(simulator_factory):
    sim = simulator_factory(events=0, alerts=3000, unknown_category_fraction=0.05)
    c = Client(sim)
    served = set()
    key = None
    while True:
        params = {"pageSize": 1000, **({"pageFromKey": key} if key else {})}
        body = c.get("/common/v1/alerts", **params).json()
        served |= {a["category"] for a in body["items"]}
        key = body["pages"].get("nextKey")
        if not key:
            break
    assert {entry[0] for entry in CATEGORIES} <= served
    assert served & {entry[0] for entry in UNKNOWN_CATEGORIES}


# --- generation, arrivals, clock ---------------------------------------------------------------


def test_same_seed_same_items_other_seed_other_items():
    a = Simulator(SimulatorConfig(seed=5, events=50, alerts=5))
    b = Simulator(SimulatorConfig(seed=5, events=50, alerts=5))
    c = Simulator(SimulatorConfig(seed=6, events=50, alerts=5))
    assert a.tenants[0].id == b.tenants[0].id != c.tenants[0].id
    assert a.item_ids(None, "Events") == b.item_ids(None, "Events")
    assert a.item_ids(None, "Events") != c.item_ids(None, "Events")


def test_items_arrive_at_the_configured_rate(simulator_factory):
    sim = simulator_factory(events=10, alerts=10, rate=60, events_rate=120)
    sim.advance(600)
    streams = sim.stats()["tenants"][sim.tenants[0].id]["streams"]
    assert streams["Events"]["available"] == 10 + 1200
    assert streams["Alerts"]["available"] == 10 + 600


def test_late_arrivals_carry_an_earlier_timestamp(simulator_factory):
    sim = simulator_factory(events=2000, alerts=0, late_fraction=0.1, late_max_seconds=120)
    items = Client(sim).get("/siem/v1/events", limit=1000).json()["items"]
    lags = [
        (
            kind.map_item("Events", {"when": i["created_at"]}).message_time
            - kind.map_item("Events", i).message_time
        ).total_seconds()
        for i in items
    ]
    assert max(lags) > 10 and all(0 <= lag <= 120 for lag in lags)


def test_items_are_stored_compactly():
    sim = Simulator(SimulatorConfig(events=20_000, alerts=0))
    store = sim.events[sim.tenants[0].id]
    json_bytes = len(store.buf)
    columns = sum(a.itemsize * len(a) for a in (store.offsets, store.created, store.kinds))
    # Per item: its JSON and 18 bytes of columns, no Python object each (a million is feasible).
    assert columns <= 20_001 * 18
    assert store.buf.__sizeof__() < json_bytes * 1.2 + 1024


# --- control interface ------------------------------------------------------------------------


def test_faults_over_http(simulator, client):
    url = simulator.url + "/_simulator/faults"
    made = requests.post(
        url, json={"kind": "status", "api": "Events", "status": 503, "retry_after": "7"}
    ).json()
    reply = client.get("/siem/v1/events")
    assert reply.status_code == 503 and reply.headers["Retry-After"] == "7"
    assert client.get("/common/v1/alerts").status_code == 200  # other APIs unaffected
    assert requests.get(url).json()["faults"][0]["id"] == made["id"]
    assert requests.post(url, json={"clear": {"api": "Events"}}).json() == {"cleared": 1}
    assert client.get("/siem/v1/events").status_code == 200
    requests.post(url, json={"kind": "status", "status": 500, "empty": True, "times": 1})
    empty = client.get("/siem/v1/events")
    assert empty.status_code == 500 and empty.content == b""
    assert client.get("/siem/v1/events").status_code == 200
    assert requests.post(url, json={"kind": "explode"}).status_code == 400
    assert requests.delete(url).json() == {"cleared": 0}


def test_bad_cursor_fault_hands_out_a_position_the_api_refuses(simulator_factory):
    sim = simulator_factory(events=300, alerts=300)
    c = Client(sim)
    requests.post(
        sim.url + "/_simulator/faults", json={"kind": "bad_cursor", "api": "Events", "times": 1}
    )
    page = c.get("/siem/v1/events", limit=200).json()
    assert len(page["items"]) == 200  # the page itself is whole
    refused = c.get("/siem/v1/events", limit=200, cursor=page["next_cursor"])
    assert refused.status_code == 400 and refused.json()["message"] == "Invalid cursor"
    sim.set_fault("bad_cursor", api="Alerts", times=1)
    alerts = c.get("/common/v1/alerts", pageSize=100).json()
    assert len(alerts["items"]) == 100
    refused = c.get("/common/v1/alerts", pageSize=100, pageFromKey=alerts["pages"]["nextKey"])
    assert refused.status_code == 400 and refused.json()["message"] == "Invalid pageFromKey"
    # Spent: the next answers carry positions the API takes back.
    good = c.get("/siem/v1/events", limit=200).json()
    assert c.get("/siem/v1/events", limit=200, cursor=good["next_cursor"]).status_code == 200


def test_tenant_scoped_fault_and_stats_over_http(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=2, events=10, alerts=3)
    c = Client(sim)
    first, second = sim.tenants
    requests.post(
        sim.url + "/_simulator/faults",
        json={"kind": "status", "status": 403, "tenant": second.name},
    )
    assert c.get("/siem/v1/events", first).status_code == 200
    assert c.get("/siem/v1/events", second).status_code == 403
    stats = requests.get(sim.url + "/_simulator/stats").json()
    assert stats["tenants"][first.id]["streams"]["Events"] == {
        "available": 10,
        "served": 10,
        "served_total": 10,
    }
    assert stats["tenants"][second.id]["streams"]["Events"]["served"] == 0
    events_path = f"/region/{first.region}/siem/v1/events"
    assert stats["requests"][f"/region/{second.region}/siem/v1/events"].get("403") == 1
    assert stats["requests"][events_path]["200"] >= 1
    assert stats["tokens_issued"] == 1


def test_advance_items_and_tenants_over_http(simulator):
    base = simulator.url + "/_simulator"
    before = simulator.now()
    requests.post(base + "/advance", json={"seconds": 7200})
    assert simulator.now() - before >= 7200
    assert requests.post(base + "/items", json={"stream": "Alerts", "count": 4}).json() == {
        "added": 4
    }
    assert simulator.stats()["totals"]["Alerts"]["available"] == 54
    listing = requests.get(base + "/tenants").json()
    assert listing["tenants"][0]["apiHost"] == simulator.region_host(simulator.tenants[0].region)
    assert "client_secret" not in json.dumps(
        listing
    ) and simulator.credential().client_secret not in json.dumps(listing)


def test_control_interface_answers_loopback_only():
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("::ffff:127.0.0.1")
    assert (
        not is_loopback("10.0.0.5") and not is_loopback("192.168.1.20") and not is_loopback("junk")
    )


def test_slow_answers_and_latency(simulator_factory):
    sim = simulator_factory(latency=0.05)
    c = Client(sim)
    started = time.monotonic()
    c.get("/siem/v1/events")
    assert time.monotonic() - started >= 0.05
    sim.set_fault("slow", api="Events", delay=0.3, times=1)
    started = time.monotonic()
    assert c.get("/siem/v1/events").status_code == 200
    assert time.monotonic() - started >= 0.3


def test_https(simulator_factory, tls_files):
    cert, key = tls_files
    sim = simulator_factory(tls_cert=cert, tls_key=key)
    reply = requests.get(sim.url + "/_simulator/stats", verify=cert)
    assert reply.status_code == 200 and sim.env()["SUMOSOURCES_SOPHOS_VERIFY_TLS"] == cert


def test_env_and_context_manager():
    with Simulator(events=1, alerts=1) as sim:
        env = sim.env()
        assert env["SUMOSOURCES_SOPHOS_TOKEN_URL"] == sim.url + "/api/v2/oauth2/token"
        assert env["SUMOSOURCES_SOPHOS_API_URL"] == sim.url
        assert env["SUMOSOURCES_SOPHOS_EXTRA_HOSTS"] == f"127.0.0.1:{sim.port}"
        assert requests.get(sim.url + "/_simulator/stats", timeout=5).ok
    with pytest.raises(requests.ConnectionError):
        requests.get(sim.url + "/_simulator/stats", timeout=5)


def test_config_file(tmp_path):
    path = tmp_path / "sim.json"
    path.write_text(
        json.dumps(
            {
                "seed": 3,
                "tenants": [
                    {"name": "Acme Ltd", "region": "eu02", "events": 7},
                    {"name": "Globex"},
                ],
                "credentials": [{"client_id": "p", "client_secret": "s", "id_type": "partner"}],
                "alerts": 2,
            }
        )
    )
    sim = Simulator(SimulatorConfig.from_file(path, events=3))
    assert [t.region for t in sim.tenants] == ["eu02", "us01"]
    assert [len(sim.events[t.id]) for t in sim.tenants] == [7, 3]
    assert sim.credential().id_type == "partner" and len(sim.credential().tenant_ids) == 2
    path.write_text(json.dumps({"tenant_count": 3}))
    with pytest.raises(ValueError, match="unknown simulator settings: tenant_count"):
        SimulatorConfig.from_file(path)
    with pytest.raises(ValueError, match="id_type"):
        SimulatorConfig(id_type="reseller")
