"""Endpoint details of endpoint alerts (issue 12): the Endpoints stream of Sophos Central sources.

Against the bundled simulator over a real socket, through the engine with tasks run inline
(``engine.run_source``, the ``queued`` fixture), plus the pieces users see: the source page, Log
Search and the connection test. The cluster end to end is in test_engine_cluster.py.
"""

import datetime as dt
import json
import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from collector import engine
from collector.choices import SourceState
from collector.kinds.sophos_central import endpoints as ep
from collector.kinds.sophos_central import kind
from collector.models import Checkpoint, CollectionRun, HealthEvent, Message, Source
from collector.models import Tenant as TenantRow

ACCESS = "EndpointAccessWarning"
DAY = 24 * 3600
FAST = {"timeout": (1.0, 2.0), "retries": 1, "backoff": 0.0}


def source_for(sim, make_source, streams=("Alerts",), **extra):
    cred = sim.credential()
    return make_source(
        client_id=cred.client_id, secret=cred.client_secret, supported_apis=list(streams), **extra
    )


def run(source):
    """One poll, due now (the dispatcher's part), run inline."""
    Source.objects.filter(pk=source.pk).update(next_poll_at=timezone.now())
    return engine.run_source(source.pk)


def records(source, **filters):
    return Message.objects.filter(source=source, stream="Endpoints", **filters)


def endpoint_ids(source, **filters):
    """The endpoint each stored endpoint record is of, in storing order."""
    return [
        json.loads(raw)["id"] for raw in records(source, **filters).values_list("raw", flat=True)
    ]


def checkpoint(source, stream="Endpoints", tenant_id=None):
    query = Checkpoint.objects.filter(source=source, stream=stream)
    if tenant_id is not None:
        query = query.filter(tenant_id=tenant_id)
    return query.get().position


def lookups(sim, tenant=None):
    return sim.stats()["tenants"][sim.tenant(tenant).id]["endpoint_lookups"]


def open_warnings(source, name=ACCESS):
    return list(HealthEvent.objects.filter(source=source, event_name=name, resolved_at=None))


def endpoint_alerts(sim, tenant=None):
    return [
        json.loads(data)
        for data in sim.alerts[sim.tenant(tenant).id].common
        if json.loads(data)["product"] == "endpoint"
    ]


# --- one record per endpoint per refresh period ---------------------------------------------------


def test_many_alerts_for_one_endpoint_store_one_record_per_refresh_period(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(alerts=200, endpoint_change_hours=0)
    busy = sim.endpoint_ids()[0]  # online: it checks in every few minutes
    sim.add_items("Alerts", 150, endpoint=busy)
    source = source_for(sim, make_source)
    named = sim.named_endpoints()
    assert len(endpoint_alerts(sim)) > 2 * len(named)  # many alerts per endpoint

    assert run(source) == f"ok: {350 + len(named)} items"
    assert sorted(endpoint_ids(source)) == sorted(named)  # exactly one record each
    assert endpoint_ids(source).count(busy) == 1
    assert lookups(sim)["ids"] == len(named) and lookups(sim)["requests"] == 1

    # More alerts for it within the refresh period: looked up again, nothing stored.
    sim.advance(600)
    sim.add_items("Alerts", 50, endpoint=busy)
    assert run(source) == "ok: 50 items"
    assert records(source).count() == len(named)
    assert lookups(sim)["ids"] == len(named) + 1
    # No new alert: no lookup at all.
    assert run(source) == "ok: 0 items"
    assert lookups(sim)["requests"] == 2

    # A refresh period later an alert names it: one more record, with the newer lastSeenAt.
    sim.advance(DAY + 60)
    sim.add_items("Alerts", 20, endpoint=busy)
    assert run(source) == "ok: 21 items"
    assert endpoint_ids(source).count(busy) == 2
    times = sorted(records(source, raw__contains=busy).values_list("message_time", flat=True))
    assert times[1] - times[0] >= dt.timedelta(seconds=DAY)
    assert records(source).count() == len(named) + 1


def test_an_endpoint_that_did_not_check_in_is_not_stored_again(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(alerts=0, endpoint_change_hours=0)
    offline = sim.endpoint_ids()[4]  # every fifth endpoint went offline before the start
    sim.add_items("Alerts", 3, endpoint=offline)
    source = source_for(sim, make_source)
    run(source)
    assert endpoint_ids(source) == [offline]
    sim.advance(DAY + 60)
    sim.add_items("Alerts", 3, endpoint=offline)
    run(source)
    # Looked up and due for a refresh, but the record is the very one stored: same vendor id.
    assert lookups(sim)["ids"] == 2
    assert endpoint_ids(source) == [offline]


def test_a_changed_endpoint_is_stored_at_the_next_run(simulator_factory, make_source, queued):
    sim = simulator_factory(alerts=100, endpoint_change_hours=0)
    source = source_for(sim, make_source)
    run(source)
    named = sorted(sim.named_endpoints())
    target = named[0]
    before = json.loads(records(source, raw__contains=target).get().raw)
    sim.advance(60)
    sim.touch_endpoint(target)
    for endpoint_id in named[:3]:
        sim.add_items("Alerts", 1, endpoint=endpoint_id)
    assert run(source) == "ok: 4 items"  # three alerts and the changed endpoint
    latest = records(source, raw__contains=target).order_by("-id").first()
    after = json.loads(latest.raw)
    assert after["tamperProtectionEnabled"] is not before["tamperProtectionEnabled"]
    assert latest.vendor_id.startswith(f"{target}:") and latest.vendor_id != (
        records(source, raw__contains=target).order_by("id").first().vendor_id
    )
    assert records(source).count() == len(named) + 1


def test_drifting_endpoints_are_stored_when_they_change(simulator_factory, make_source, queued):
    sim = simulator_factory(alerts=0, endpoint_change_hours=1)
    agents = sim.inventories[sim.tenants[0].id].endpoints
    # Every fourth endpoint's health moves, and every fourth computer's DHCP address.
    drifting = [
        agents[1].id,
        next(a.id for a in agents if a.index % 4 == 2 and a.type == "computer"),
    ]
    source = source_for(sim, make_source)
    expected = dict.fromkeys(drifting, 0)
    last = dict.fromkeys(drifting)
    for _ in range(8):
        for endpoint_id in drifting:
            sim.add_items("Alerts", 1, endpoint=endpoint_id)
            digest = ep.endpoint_digest(sim.endpoint(endpoint_id))
            expected[endpoint_id] += digest != last[endpoint_id]
            last[endpoint_id] = digest
        run(source)
        sim.advance(3600)
    stored = endpoint_ids(source)
    # The first copy of each, then one for every change an analyst would see, never more.
    assert {i: stored.count(i) for i in drifting} == expected
    assert sum(expected.values()) > len(drifting), "the simulator changed nothing"


# --- only endpoint alerts -------------------------------------------------------------------------


def test_no_lookups_for_alerts_of_other_products(simulator_factory, make_source, queued):
    sim = simulator_factory(alerts=60, endpoints=400)
    source = source_for(sim, make_source)
    run(source)
    named = sim.named_endpoints()
    agents = {
        json.loads(data).get("managedAgent", {}).get("id")
        for data in sim.alerts[sim.tenants[0].id].common
    } - {None}
    assert len(agents) > len(named)  # other products name devices too
    assert lookups(sim)["ids"] == len(named)
    assert set(checkpoint(source)["seen"]) == named
    assert set(checkpoint(source, "Alerts")["endpoints"]) == named


def test_no_endpoint_alert_no_lookup(simulator_factory, make_source, queued):
    sim = simulator_factory(alerts=0)
    source = source_for(sim, make_source)
    assert run(source) == "ok: 0 items"
    assert lookups(sim) == {"requests": 0, "ids": 0, "single": 0}
    # The stream is there all the same, with an empty queue.
    assert checkpoint(source) == {"pending": [], "seen": {}}
    assert source.streams == ("Alerts", "Endpoints")


def test_events_only_sources_collect_no_endpoints(simulator_factory, make_source, queued):
    sim = simulator_factory(events=50, alerts=50)
    source = source_for(sim, make_source, ["Events"])
    assert source.streams == ("Events",)
    assert run(source) == "ok: 50 items"
    assert lookups(sim)["requests"] == 0


# --- failures never block or lose the alerts ------------------------------------------------------


def test_403_on_the_endpoint_api_alone_keeps_alerts_flowing(simulator_factory, make_source, queued):
    sim = simulator_factory(events=40, alerts=100)
    sim.set_fault("status", api="Endpoints", status=403)
    source = source_for(sim, make_source, ["Alerts", "Events"])
    named = sim.named_endpoints()
    assert run(source) == "ok: 140 items"
    source.refresh_from_db()
    assert source.state == SourceState.COLLECTING
    assert records(source).count() == 0
    assert Message.objects.filter(source=source, stream="Alerts").count() == 100
    (warning,) = open_warnings(source)
    tenant = sim.tenants[0]
    assert warning.severity == "Warning" and warning.scope.endswith(f"Endpoints:{tenant.id}")
    assert "lacks the Endpoint API permission" in warning.details["error"]
    assert "Service Principal Read-Only" in warning.details["description"]
    assert (warning.details["api"], warning.details["tenantId"], warning.details["status"]) == (
        "Endpoints", tenant.id, 403,
    )  # fmt: skip
    assert set(checkpoint(source)["pending"]) == named
    assert not HealthEvent.objects.filter(source=source, severity="Error").exists()
    assert CollectionRun.objects.filter(source=source, stream="Endpoints").get().outcome == (
        "success"
    )

    # Still denied: new alerts are stored, their endpoints join the queue.
    sim.add_items("Alerts", 5)
    assert run(source) == "ok: 5 items"
    assert set(checkpoint(source)["pending"]) == sim.named_endpoints()
    assert len(open_warnings(source)) == 1

    # The role is granted: the endpoints arrive and the warning resolves.
    sim.clear_faults()
    sim.advance(60)
    run(source)
    assert sorted(endpoint_ids(source)) == sorted(sim.named_endpoints())
    assert checkpoint(source)["pending"] == []
    assert open_warnings(source) == []
    assert HealthEvent.objects.filter(source=source, event_name=ACCESS).count() == 1


def test_5xx_on_lookups_fails_the_run_after_the_alerts_and_loses_nothing(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(alerts=80)
    # Retry-After 0: the transport's own retries do not wait.
    sim.set_fault("status", api="Endpoints", status=503, retry_after=0)
    source = source_for(sim, make_source)
    named = sim.named_endpoints()
    assert run(source) == "error: ThirdPartyGeneric"
    source.refresh_from_db()
    assert source.state == SourceState.ERROR
    assert Message.objects.filter(source=source, stream="Alerts").count() == 80
    assert set(checkpoint(source)["pending"]) == named  # committed before the lookup
    error = HealthEvent.objects.get(source=source, resolved_at=None)
    assert error.event_name == "ThirdPartyGenericError" and error.details["api"] == "Endpoints"
    assert sim.stats()["requests"]["/region/eu01/endpoint/v1/endpoints"] == {"503": 3}

    sim.clear_faults()
    assert run(source) == f"ok: {len(named)} items"
    source.refresh_from_db()
    assert source.state == SourceState.COLLECTING
    assert sorted(endpoint_ids(source)) == sorted(named)
    assert checkpoint(source)["pending"] == []
    assert not HealthEvent.objects.filter(source=source, resolved_at=None).exists()


def test_a_transient_5xx_is_retried_within_the_run(simulator_factory, make_source, queued):
    sim = simulator_factory(alerts=50)
    sim.set_fault("status", api="Endpoints", status=500, empty=True, retry_after=0, times=2)
    source = source_for(sim, make_source)
    assert run(source) == f"ok: {50 + len(sim.named_endpoints())} items"
    assert records(source).count() == len(sim.named_endpoints())


def test_a_run_cut_short_before_the_endpoints_loses_no_lookup(
    simulator_factory, make_source, queued, settings
):
    """The time budget ends a run at its first page, so several runs store the alerts before one
    reaches the Endpoints stream: the Alerts checkpoint carries the endpoints across them."""
    sim = simulator_factory(alerts=250)
    settings.TASK_TIMEOUT = 0
    source = source_for(sim, make_source)
    for _ in range(8):
        run(source)
    runs = list(
        CollectionRun.objects.filter(source=source).order_by("id").values_list("stream", flat=True)
    )
    assert runs[:3] == ["Alerts"] * 3 and "Endpoints" in runs  # pages of 100, 1000, then more
    assert Message.objects.filter(source=source, stream="Alerts").count() == 250
    assert sorted(endpoint_ids(source)) == sorted(sim.named_endpoints())
    assert checkpoint(source)["pending"] == []


def test_the_ids_filter_limit_of_the_api_is_followed_down(simulator_factory, make_source, queued):
    """An API that takes fewer ids than we send: batches halve until they pass, nothing lost."""
    sim = simulator_factory(alerts=200, endpoints=60, endpoints_max_ids=10)
    source = source_for(sim, make_source)
    run(source)
    named = sim.named_endpoints()
    assert sorted(endpoint_ids(source)) == sorted(named)
    size, halvings = min(ep.IDS_LIMIT, len(named)), 0
    while size > 10:
        size, halvings = size // 2, halvings + 1
    assert halvings >= 2
    answers = sim.stats()["requests"]["/region/eu01/endpoint/v1/endpoints"]
    assert answers == {"400": halvings, "200": -(-len(named) // size)}
    assert open_warnings(source, "EndpointLookupWarning") == []


def test_an_endpoint_refused_alone_is_given_up_with_a_warning(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(alerts=0)
    ids = sim.endpoint_ids()[:4]
    for endpoint_id in ids:
        sim.add_items("Alerts", 1, endpoint=endpoint_id)
    # Refused three times: 4 ids, 2 ids, then the first id alone; the rest go through.
    sim.set_fault("body", api="Endpoints", status=400, body='{"error": "badRequest"}', times=3)
    source = source_for(sim, make_source)
    run(source)
    (warning,) = open_warnings(source, "EndpointLookupWarning")
    refused = warning.details["endpointId"]
    assert refused in ids and warning.details["status"] == 400
    assert warning.scope == f"notice-once:Endpoints:{sim.tenants[0].id}"  # resolves by itself
    assert sorted(endpoint_ids(source)) == sorted(set(ids) - {refused})
    assert checkpoint(source)["pending"] == []
    assert checkpoint(source)["seen"][refused][0] == ""  # checked: its alerts do not re-queue it


def test_the_queue_is_bounded_and_says_what_it_dropped(simulator_factory, queued):
    sim = simulator_factory(alerts=30)
    sim.set_fault("status", api="Endpoints", status=403)
    waiting = [f"00000000-0000-4000-8000-{i:012d}" for i in range(ep.PENDING_LIMIT)]
    cred = sim.credential()
    config = {"clientId": cred.client_id, "supported_apis": ["Alerts"]}
    with kind.open(config=config, secret=cred.client_secret, **FAST) as session:
        tenant = session.authenticate().tenants[0]
        list(session.pages(stream="Alerts", tenant=tenant, checkpoint=None))
        pages = list(
            session.pages(
                stream="Endpoints", tenant=tenant, checkpoint={"pending": waiting, "seen": {}}
            )
        )
    named = sim.named_endpoints()
    first = pages[0]
    assert first.items == [] and len(first.checkpoint["pending"]) == ep.PENDING_LIMIT
    assert first.checkpoint["pending"][-len(named) :] != waiting[-len(named) :]
    assert set(first.checkpoint["pending"]) >= named  # the newest kept, the oldest dropped
    assert first.checkpoint["pending"][0] == waiting[len(named)]
    (notice,) = first.notices
    assert notice.name == "EndpointBacklogWarning" and notice.expires
    assert notice.details == {
        "api": "Endpoints", "tenantId": tenant.id, "dropped": len(named),
        "limit": ep.PENDING_LIMIT,
    }  # fmt: skip
    assert pages[-1].notices[0].name == ACCESS


def test_a_large_queue_is_looked_up_100_ids_a_request_and_stored_500_a_page(simulator_factory):
    sim = simulator_factory(alerts=4000, endpoints=1500)
    cred = sim.credential()
    config = {"clientId": cred.client_id, "supported_apis": ["Alerts"]}
    with kind.open(config=config, secret=cred.client_secret, **FAST) as session:
        tenant = session.authenticate().tenants[0]
        list(session.pages(stream="Alerts", tenant=tenant, checkpoint=None))
        pages = list(session.pages(stream="Endpoints", tenant=tenant, checkpoint=None))
    named = len(sim.named_endpoints())
    assert named > 1000
    queued, *lookup_pages = pages
    assert queued.items == [] and len(queued.checkpoint["pending"]) == named
    assert [len(p.items) for p in lookup_pages] == [500, 500, named - 1000]
    assert [len(p.checkpoint["pending"]) for p in lookup_pages] == [named - 500, named - 1000, 0]
    assert lookups(sim) == {"requests": -(-named // 100), "ids": named, "single": 0}
    assert all(p.bytes > 0 for p in lookup_pages)


# --- partner credentials ----------------------------------------------------------------------------


def test_a_partner_credential_looks_up_each_tenants_endpoints_in_its_own_region(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(id_type="partner", tenants=3, regions=["eu01", "us01"], alerts=60)
    source = source_for(sim, make_source)
    engine.run_source(source.pk)
    tenant_tasks = [args for func, *args in queued if func == engine.RUN_TENANT]
    assert len(tenant_tasks) == 3
    for (pk,) in tenant_tasks:
        assert engine.run_tenant(pk).startswith("ok")
    for tenant in sim.tenants:
        named = sim.named_endpoints(tenant.id)
        # Counted by the simulator only for calls on the tenant's host with its X-Tenant-ID.
        assert lookups(sim, tenant.id) == {"requests": 1, "ids": len(named), "single": 0}
        stored = records(source, tenant_id=tenant.id)
        assert sorted(endpoint_ids(source, tenant_id=tenant.id)) == sorted(named)
        assert {
            json.loads(raw)["tenant"]["id"] for raw in stored.values_list("raw", flat=True)
        } == {tenant.id}
        assert set(checkpoint(source, tenant_id=tenant.id)["seen"]) == named
    regions = {t.region for t in sim.tenants}
    paths = {p for p in sim.stats()["requests"] if p.endswith("/endpoint/v1/endpoints")}
    assert paths == {f"/region/{region}/endpoint/v1/endpoints" for region in regions}
    assert TenantRow.objects.filter(source=source, failure_count=0).count() == 3


def test_one_partner_tenant_without_the_role_leaves_the_others(
    simulator_factory, make_source, queued
):
    sim = simulator_factory(id_type="partner", tenants=2, alerts=40)
    denied, fine = sim.tenants
    sim.set_fault("status", api="Endpoints", tenant=denied.id, status=403)
    source = source_for(sim, make_source)
    engine.run_source(source.pk)
    for func, *args in list(queued):
        if func == engine.RUN_TENANT:
            engine.run_tenant(*args)
    assert records(source, tenant_id=denied.id).count() == 0
    assert sorted(endpoint_ids(source, tenant_id=fine.id)) == sorted(sim.named_endpoints(fine.id))
    (warning,) = open_warnings(source)
    assert warning.details["tenantId"] == denied.id
    assert Message.objects.filter(source=source, stream="Alerts", tenant_id=denied.id).count() == 40


# --- what users see ---------------------------------------------------------------------------------


def test_source_page_shows_the_third_stream(simulator_factory, make_source, queued, admin_client):
    sim = simulator_factory(alerts=50)
    source = source_for(sim, make_source, ["Alerts", "Events"])
    run(source)
    html = admin_client.get(reverse("collector:source_detail", args=[source.pk])).content.decode()
    legend = re.search(r'<span class="legend small">(.*?)</span></span>', html, re.S).group(1)
    assert re.findall(r"</svg> (\w+)", legend) == ["Alerts", "Events", "Endpoints"]
    rows = re.findall(r'<tr><td class="ps-3">(\w+)</td>', html)
    assert "Endpoints" in rows and "Alerts" in rows
    assert '<option value="Endpoints">Endpoints</option>' in html  # the reset form's streams


def test_the_add_source_page_says_endpoint_details_come_with_alerts(admin_client, make_collector):
    collector = make_collector()
    url = reverse("collector:source_add", args=[collector.pk, "sophos-central"])
    html = unescape(admin_client.get(url).content.decode())
    assert "Endpoint details come with Alerts" in html  # the help beside the form
    assert "as _sourceName Endpoints" in html  # the Supported APIs field's help
    assert "Service Principal Read-Only" in html
    # Still the seed's two choices.
    assert re.findall(r'name="supported_apis" value="(\w+)"', html) == ["Alerts", "Events"]


def test_log_search_finds_endpoints_by_stream_and_hostname(
    simulator_factory, make_source, queued, admin_client
):
    sim = simulator_factory(alerts=50)
    source = source_for(sim, make_source, forward_to_siem=True)
    run(source)
    url = reverse("collector:log_search")

    def hostnames(query):
        html = admin_client.get(url, {"q": query}).content.decode()
        return re.findall(r"&quot;hostname&quot;: &quot;([\w-]+)&quot;", html), unescape(html)

    named = sim.named_endpoints()
    expected = sorted(sim.endpoint(i)["hostname"] for i in named)
    found, html = hostnames("_sourceName=Endpoints")
    assert sorted(found) == expected
    assert "_siemEventID=endpoint" in html.replace("\n", "")
    target = sim.endpoint(sorted(named)[0])["hostname"]
    found, _ = hostnames(f"_sourceName=Endpoints {target}")
    assert found == [target]
    found, _ = hostnames(target)  # a keyword alone finds the record, besides its alerts
    assert target in found
    stored = records(source).first()
    assert stored.siem_event_id == "endpoint"
    assert stored.message_time == dt.datetime.fromisoformat(json.loads(stored.raw)["lastSeenAt"])


def test_connection_test_says_whether_endpoint_details_are_readable(simulator_factory):
    sim = simulator_factory(alerts=30)
    cred = sim.credential()
    config = {"clientId": cred.client_id}
    report = kind.test_connection(config=config, secret=cred.client_secret, **FAST)
    assert report.ok and report.summary.endswith(" Endpoint details: readable.")
    assert lookups(sim)["single"] == 1
    sim.set_fault("status", api="Endpoints", status=403)
    report = kind.test_connection(config=config, secret=cred.client_secret, **FAST)
    assert report.ok and report.summary.endswith(
        " Endpoint details: not readable (the credential lacks the Endpoint role)."
    )
    sim.clear_faults()
    sim.set_fault("status", api="Endpoints", status=503, retry_after=0)
    report = kind.test_connection(config=config, secret=cred.client_secret, **FAST)
    assert report.ok and "Endpoint details: could not be checked (" in report.summary


def test_connection_test_without_endpoint_alerts_says_nothing_of_them(simulator_factory):
    sim = simulator_factory(alerts=0)
    cred = sim.credential()
    report = kind.test_connection(config={"clientId": cred.client_id}, secret=cred.client_secret)
    assert report.ok and "Endpoint" not in report.summary
    assert lookups(sim)["single"] == 0


# --- the kind's contract ----------------------------------------------------------------------------


def test_endpoints_come_with_alerts_but_are_not_a_choice(make_source, db):
    assert kind.source_streams({"supported_apis": ["Alerts"]}) == ("Alerts", "Endpoints")
    assert kind.source_streams({"supported_apis": ["Events", "Alerts"]}) == (
        "Alerts", "Events", "Endpoints",
    )  # fmt: skip
    assert kind.source_streams({"supported_apis": ["Endpoints"]}) == (
        "Alerts", "Events", "Endpoints",
    )  # fmt: skip
    source = make_source(supported_apis=["Alerts", "Events"])
    assert kind.api_config(source)["supported_apis"] == ["Alerts", "Events"]
    form = kind.form_class(data={"supported_apis": ["Endpoints"]}, collector=source.collector)
    assert not form.is_valid() and "supported_apis" in form.errors
    assert "Endpoint details" in str(form["supported_apis"].help_text)


def test_map_item_and_describe_item_of_an_endpoint_record(simulator):
    record = simulator.endpoint(simulator.endpoint_ids()[0])
    meta = kind.map_item("Endpoints", record)
    assert meta.vendor_id.startswith(record["id"] + ":") and len(meta.vendor_id) == 36 + 17
    assert meta.message_time == dt.datetime.fromisoformat(record["lastSeenAt"])
    assert meta.siem_event_id == "endpoint"
    assert kind.map_item("Endpoints", json.loads(json.dumps(record))) == meta  # same bytes, same id
    moved = {**record, "lastSeenAt": "2030-01-01T00:00:00.000Z"}
    assert kind.map_item("Endpoints", moved).vendor_id != meta.vendor_id
    assert ep.endpoint_digest(moved) == ep.endpoint_digest(record)
    assert ep.endpoint_digest({**record, "tamperProtectionEnabled": False}) != ep.endpoint_digest(
        {**record, "tamperProtectionEnabled": True}
    )
    line = kind.describe_item(record)
    assert line.time == record["lastSeenAt"] and line.type == record["type"]
    assert line.text == f"{record['hostname']}, {record['os']['name']}, health good"
    assert kind.describe_item({"id": "x", "raisedAt": "t", "category": "malware"}).type == "malware"
    assert kind.map_item("Endpoints", {"hostname": "no id"}).vendor_id.startswith("sha256:")


def test_checkpoint_from_resets_the_endpoints_to_nothing_pending_or_seen():
    long_ago = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    assert kind.checkpoint_from("Endpoints", long_ago) == {"pending": [], "seen": {}}


def test_a_bad_refresh_setting_fails_loudly(settings, simulator):
    settings.SOPHOS_ENDPOINT_REFRESH_HOURS = "soon"
    cred = simulator.credential()
    report = kind.test_connection(config={"clientId": cred.client_id}, secret=cred.client_secret)
    assert not report.ok
    settings.SOPHOS_ENDPOINT_REFRESH_HOURS = "0.5"
    with kind.open(config={"clientId": cred.client_id}, secret=cred.client_secret) as session:
        assert session.endpoint_refresh == 1800.0


# --- for real -----------------------------------------------------------------------------------


@pytest.mark.cluster
@pytest.mark.slow
def test_a_cluster_collects_alerts_without_the_endpoint_role_then_the_endpoints(
    make_collector, simulator_factory, cluster_factory
):
    """A real django-q2 cluster, the simulator over a socket: a credential without the Endpoint
    role collects every alert and warns; once the role is granted the endpoints follow."""
    from tests.conftest import wait_for
    from tests.engine.test_cluster import add_source, collected, retry_now, runs_finished, served

    sim = simulator_factory(events=300, alerts=120, late_fraction=0)
    sim.set_fault("status", api="Endpoints", status=403)
    cluster_factory(extra_env=sim.env())
    source = add_source(make_collector(), sim)
    warning = wait_for(lambda: open_warnings(source), message="the endpoint warning")[0]
    wait_for(lambda: collected(source).count() == served(sim) == 420, message="every alert")
    wait_for(lambda: runs_finished(source), message="the runs to finish")
    source.refresh_from_db()
    assert source.state == SourceState.COLLECTING
    assert records(source).count() == 0
    assert set(checkpoint(source)["pending"]) == sim.named_endpoints()
    assert warning.details["tenantId"] == sim.tenants[0].id

    sim.clear_faults()
    sim.add_items("Alerts", 2)
    retry_now(source)
    wait_for(
        lambda: sorted(endpoint_ids(source)) == sorted(sim.named_endpoints()),
        message="the endpoint records",
    )
    wait_for(lambda: open_warnings(source) == [], message="the warning to resolve")
    wait_for(lambda: checkpoint(source)["pending"] == [], message="an empty queue")
    assert collected(source).count() == 422
