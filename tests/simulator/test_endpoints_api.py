"""The simulator's Endpoint API (docs/sophos-endpoint-api.md): the records of the endpoints that
endpoint alerts name, strict about tenants and limits, moving with the clock, with faults and
counters. Over a real socket, the way any Sophos Central client talks to it."""

import json

import pytest
import requests

from sophos_simulator import Simulator
from sophos_simulator.catalog import CATEGORIES
from sophos_simulator.cli import build_parser, config_from_options
from tests.simulator.test_control import call
from tests.simulator.test_simulator import Client

PATH = "/endpoint/v1/endpoints"
SUMMARY = {
    "id", "type", "tenant", "hostname", "health", "os", "ipv4Addresses", "ipv6Addresses",
    "macAddresses", "associatedPerson", "tamperProtectionEnabled", "assignedProducts",
    "lastSeenAt",
}  # fmt: skip


@pytest.fixture
def sim(simulator_factory):
    return simulator_factory(alerts=300, endpoints=30)


@pytest.fixture
def client(sim):
    return Client(sim)


def alerts_of(client, tenant=None):
    reply = client.get("/common/v1/alerts", tenant, pageSize=1000)
    assert reply.status_code == 200
    return reply.json()["items"]


def lookup(client, ids, tenant=None, **params):
    return client.get(PATH, tenant, ids=ids, **params)


# --- what alerts name ---------------------------------------------------------------------------


def test_only_endpoint_alerts_name_endpoints_the_api_serves(sim, client):
    alerts = alerts_of(client)
    served = set(sim.endpoint_ids())
    by_product = {}
    for alert in alerts:
        by_product.setdefault(alert["product"], []).append(alert.get("managedAgent"))
    assert {"endpoint", "server", "firewall", "other"} <= set(by_product)
    assert all(agent["id"] in served for agent in by_product["endpoint"])
    assert sim.named_endpoints() == {agent["id"] for agent in by_product["endpoint"]}
    others = [a for p, agents in by_product.items() if p != "endpoint" for a in agents if a]
    assert others and not any(agent["id"] in served for agent in others)
    assert all(agent is None for agent in by_product["other"])
    # What a non-endpoint alert names is not an endpoint: the API does not know it.
    assert client.get(f"{PATH}/{others[0]['id']}").status_code == 404


def test_alerts_can_be_made_about_one_endpoint(sim, client):
    busy = sim.endpoint_ids()[3]
    before = len(alerts_of(client))
    assert sim.add_items("Alerts", 40, endpoint=busy) == 40
    fresh = alerts_of(client)[before:]
    assert len(fresh) == 40
    assert {(a["product"], a["managedAgent"]["id"]) for a in fresh} == {("endpoint", busy)}
    endpoint_categories = {c[0] for c in CATEGORIES if c[1] == "endpoint"}
    assert {a["category"] for a in fresh} <= endpoint_categories
    with pytest.raises(ValueError):
        sim.add_items("Events", 1, endpoint=busy)


# --- the list and its filter ----------------------------------------------------------------


def test_the_ids_filter_repeated_or_as_a_comma_list(sim, client):
    ids = sim.endpoint_ids()[:5]
    unknown = "00000000-0000-4000-8000-000000000000"
    repeated = lookup(client, ids + [unknown], pageSize=10, view="full")
    assert repeated.status_code == 200
    body = repeated.json()
    assert sorted(item["id"] for item in body["items"]) == sorted(ids)
    assert body["pages"] == {"size": 10, "maxSize": 500}
    commas = lookup(client, ",".join(ids), pageSize=10, view="full").json()
    assert [i["id"] for i in commas["items"]] == [i["id"] for i in body["items"]]
    record = body["items"][0]
    assert set(record) == SUMMARY | {"group", "isolation"}
    assert record["tenant"] == {"id": sim.tenants[0].id}
    assert set(record["health"]) == {"overall", "threats", "services"}
    assert {"isServer", "platform", "name", "majorVersion", "minorVersion"} <= set(record["os"])
    assert set(record["associatedPerson"]) == {"name", "viaLogin", "id"}
    assert all(set(p) == {"code", "version", "status"} for p in record["assignedProducts"])


def test_views_and_pages_cover_every_endpoint_once(sim, client):
    assert set(client.get(PATH, pageSize=1, view="basic").json()["items"][0]) == {
        "id", "type", "tenant", "hostname",
    }  # fmt: skip
    assert set(client.get(PATH, pageSize=1).json()["items"][0]) == SUMMARY  # summary by default
    seen, key, pages = [], None, 0
    while True:
        params = {"pageSize": 7, "view": "basic", **({"pageFromKey": key} if key else {})}
        body = client.get(PATH, **params).json()
        pages += 1
        seen += [item["id"] for item in body["items"]]
        assert body["pages"].get("fromKey") == key
        key = body["pages"].get("nextKey")
        if not key:
            break
    assert seen == sim.endpoint_ids() and pages == 5  # 30 endpoints, 7 a page
    total = client.get(PATH, pageSize=7, pageTotal="true").json()["pages"]
    assert (total["total"], total["items"]) == (5, 30)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"pageSize": 501}, "pageSize must be between 1 and 500"),
        ({"pageSize": 0}, "pageSize must be between 1 and 500"),
        ({"ids": "not-a-uuid"}, "ids must be endpoint UUIDs"),
        ({"ids": ""}, "ids must name at least one endpoint"),
        ({"view": "everything"}, "view must be one of basic, summary, full"),
        ({"pageFromKey": "garbage"}, "Invalid pageFromKey"),
    ],
)
def test_bad_parameters_are_refused(client, params, message):
    reply = client.get(PATH, **params)
    assert reply.status_code == 400
    assert reply.json()["message"] == message and reply.json()["correlationId"]


def test_more_ids_than_the_limit_are_refused(sim, client):
    many = [f"00000000-0000-4000-8000-{i:012d}" for i in range(101)]
    assert lookup(client, many[:100]).status_code == 200
    reply = lookup(client, many)
    assert reply.status_code == 400
    assert reply.json()["message"] == "ids takes at most 100 endpoints per request"


def test_one_endpoint_by_id(sim, client):
    endpoint_id = sim.endpoint_ids()[0]
    reply = client.get(f"{PATH}/{endpoint_id}")
    assert reply.status_code == 200
    assert reply.json()["id"] == endpoint_id and "group" in reply.json()  # full by default
    assert client.get(f"{PATH}/{endpoint_id}", view="basic").json()["hostname"]
    assert client.get(f"{PATH}/00000000-0000-4000-8000-000000000000").status_code == 404
    assert client.get(f"{PATH}/not-an-id").status_code == 400
    assert client.get(f"{PATH}/{endpoint_id}/isolation").status_code == 404
    answer = client.http.post(
        sim.region_host(sim.tenants[0].region) + f"{PATH}/{endpoint_id}",
        headers={"Authorization": f"Bearer {client.token}", "X-Tenant-ID": sim.tenants[0].id},
    )
    assert answer.status_code == 405


# --- tenants ------------------------------------------------------------------------------------


def test_strict_about_the_tenant_like_the_other_data_apis(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=2, regions=["eu01", "us01"], alerts=50)
    client = Client(sim)
    first, second = sim.tenants
    theirs = sim.endpoint_ids(second.id)
    assert client.get(PATH, first, headers={"X-Tenant-ID": None}).status_code == 400
    wrong_region = client.get(PATH, second, host=sim.region_host(first.region))
    assert wrong_region.status_code == 403
    assert client.get(PATH, first, host=sim.url).status_code == 404
    stranger = {"X-Tenant-ID": "11111111-1111-4111-8111-111111111111"}
    assert client.get(PATH, first, headers=stranger).status_code == 403
    # One tenant's filter finds nothing of another's.
    assert lookup(client, theirs[:3], first).json()["items"] == []
    assert client.get(f"{PATH}/{theirs[0]}", first).status_code == 404
    assert [i["id"] for i in lookup(client, theirs[:3], second).json()["items"]] == theirs[:3]
    lookups = {tid: t["endpoint_lookups"] for tid, t in sim.stats()["tenants"].items()}
    assert lookups[first.id] == {"requests": 1, "ids": 3, "single": 1}
    assert lookups[second.id] == {"requests": 1, "ids": 3, "single": 0}
    assert sim.stats()["endpoint_lookups"] == {"requests": 2, "ids": 6, "single": 1}


# --- records over time ------------------------------------------------------------------------


def test_records_are_deterministic(sim):
    twin = Simulator(alerts=300, endpoints=30)
    for endpoint_id in sim.endpoint_ids():
        mine, theirs = sim.endpoint(endpoint_id), twin.endpoint(endpoint_id)
        mine.pop("lastSeenAt"), theirs.pop("lastSeenAt")
        assert mine == theirs


def test_records_move_with_the_simulator_clock(sim):
    ids = sim.endpoint_ids()
    before = {i: sim.endpoint(i) for i in ids}
    sim.advance(3 * 24 * 3600)
    after = {i: sim.endpoint(i) for i in ids}
    moved = {i for i in ids if after[i]["lastSeenAt"] != before[i]["lastSeenAt"]}
    assert len(moved) == 24  # the online four in five check in; offline ones stay put
    changed = {
        i
        for i in ids
        if (after[i]["health"], after[i]["ipv4Addresses"])
        != (before[i]["health"], before[i]["ipv4Addresses"])
    }
    assert changed and len(changed) < len(ids)
    stable = set(ids) - changed
    assert all(after[i]["hostname"] == before[i]["hostname"] for i in ids)
    assert all(after[i]["os"] == before[i]["os"] for i in stable)


def test_nothing_but_last_seen_moves_without_a_change_period(simulator_factory):
    sim = simulator_factory(alerts=10, endpoint_change_hours=0)
    ids = sim.endpoint_ids()
    before = {i: sim.endpoint(i) for i in ids}
    sim.advance(7 * 24 * 3600)
    for endpoint_id in ids:
        now, then = sim.endpoint(endpoint_id), before[endpoint_id]
        now.pop("lastSeenAt"), then.pop("lastSeenAt")
        assert now == then


def test_touch_changes_one_endpoint_now(sim):
    target, other = sim.endpoint_ids()[:2]
    before, untouched = sim.endpoint(target), sim.endpoint(other)
    sim.advance(5)
    sim.touch_endpoint(target)
    after = sim.endpoint(target)
    assert after["tamperProtectionEnabled"] is not before["tamperProtectionEnabled"]
    assert after["lastSeenAt"] >= before["lastSeenAt"]
    assert sim.endpoint(other)["tamperProtectionEnabled"] is untouched["tamperProtectionEnabled"]
    with pytest.raises(KeyError):
        sim.touch_endpoint("00000000-0000-4000-8000-000000000000")


# --- faults, counters, control ------------------------------------------------------------------


def test_faults_on_the_endpoint_api_alone(sim, client):
    sim.set_fault("status", api="Endpoints", status=403)
    assert client.get(PATH).status_code == 403
    assert client.get(f"{PATH}/{sim.endpoint_ids()[0]}").json()["error"] == "forbidden"
    assert client.get("/common/v1/alerts").status_code == 200
    sim.clear_faults()
    sim.set_fault("status", api="data", status=503, times=1)
    assert client.get(PATH).status_code == 503  # "data" covers the Endpoint API too
    assert client.get(PATH).status_code == 200


def test_stats_count_lookups_and_served_records(sim, client):
    ids = sim.endpoint_ids()
    lookup(client, ids[:4], view="full")
    lookup(client, ids[2:6], view="full")
    client.get(f"{PATH}/{ids[0]}")
    tenant = sim.stats()["tenants"][sim.tenants[0].id]
    assert tenant["endpoint_lookups"] == {"requests": 2, "ids": 8, "single": 1}
    assert tenant["streams"]["Endpoints"] == {"available": 30, "served": 6, "served_total": 9}
    assert sim.stats()["totals"]["Endpoints"]["served"] == 6


def test_control_interface_lists_and_touches_endpoints(sim):
    status, body = call(sim, "GET", "/_simulator/endpoints")
    assert status == 200 and body["endpoints"] == sim.endpoint_ids()
    target = body["endpoints"][1]
    before = sim.endpoint(target)["tamperProtectionEnabled"]
    payload = json.dumps({"id": target})
    status, body = call(
        sim, "POST", "/_simulator/endpoints/touch", body=payload, Content_Type="application/json"
    )
    assert status == 200 and body["touched"] == target
    assert body["endpoint"]["tamperProtectionEnabled"] is not before
    status, body = call(
        sim, "POST", "/_simulator/endpoints/touch", body="{}", Content_Type="application/json"
    )
    assert status == 400
    payload = json.dumps({"stream": "Alerts", "count": 3, "endpoint": target})
    status, body = call(
        sim, "POST", "/_simulator/items", body=payload, Content_Type="application/json"
    )
    assert status == 200 and body == {"added": 3}


def test_command_line_options_for_endpoints():
    options = vars(
        build_parser().parse_args(
            ["--endpoints", "500", "--endpoint-change-hours", "0", "--endpoints-max-ids", "50",
             "--endpoints-max-page-size", "200"]
        )
    )  # fmt: skip
    config = config_from_options(options)
    assert (config.endpoints, config.endpoint_change_hours) == (500, 0)
    assert (config.endpoints_max_ids, config.endpoints_max_page_size) == (50, 200)
    with Simulator(config.with_overrides(port=0, alerts=2000)) as sim:
        assert len(sim.endpoint_ids()) == 500
        client = Client(sim)
        ids = sim.endpoint_ids()[:51]
        assert lookup(client, ids).status_code == 400
        assert (
            requests.get(sim.url + "/_simulator/stats", timeout=10).json()["totals"]["Endpoints"][
                "available"
            ]
            == 500
        )
