"""The Sophos Central client against the bundled simulator, over a real socket.

Every flow (tenant, partner and organization credentials, both streams, checkpoints, token reuse
and expiry, the 24-hour window) and every fault of the issue's list, each ending in one
CollectionError with the right type, status, API, tenant and sentence.
"""

import datetime as dt
import logging
import socket
import time

import pytest

from collector.choices import ErrorType
from collector.errors import CollectionError
from collector.kinds.sophos_central import kind
from collector.kinds.sophos_central.client import WINDOW, WINDOW_MARGIN

CONFIG = ErrorType.THIRD_PARTY_CONFIG
GENERIC = ErrorType.THIRD_PARTY_GENERIC
# Short timeouts and no backoff: fault tests must not wait seconds.
FAST = {"timeout": (1.0, 2.0), "retries": 3, "backoff": 0.0, "retry_after_cap": 5.0}


def open_session(sim, *, client_id=None, secret=None, **options):
    cred = sim.credential()
    config = {
        "clientId": cred.client_id if client_id is None else client_id,
        "supported_apis": ["Alerts", "Events"],
    }
    config.update(options.pop("config", {}))
    return kind.open(
        config=config,
        secret=cred.client_secret if secret is None else secret,
        **{**FAST, **options},
    )


def drain(session, stream, tenant, checkpoint=None):
    """Every page of one poll: (items, last checkpoint, pages)."""
    pages = list(session.pages(stream=stream, tenant=tenant, checkpoint=checkpoint))
    items = [item for page in pages for item in page.items]
    return items, (pages[-1].checkpoint if pages else checkpoint), pages


def ids(items):
    return [item["id"] for item in items]


def requests_with(sim, status):
    return sum(counts.get(str(status), 0) for counts in sim.stats()["requests"].values())


def raises(call) -> CollectionError:
    with pytest.raises(CollectionError) as info:
        call()
    return info.value


# --- flows --------------------------------------------------------------------------------------


def test_tenant_credential_authenticates(simulator):
    with open_session(simulator) as session:
        identity = session.authenticate()
    tenant = simulator.tenants[0]
    assert identity.id == tenant.id
    assert identity.id_type == "tenant"
    assert identity.region == tenant.region
    assert len(identity.tenants) == 1
    assert identity.tenants[0].id == tenant.id
    assert identity.tenants[0].api_host == simulator.region_host(tenant.region)


def test_partner_with_three_tenants_in_two_regions_yields_every_item_once(simulator_factory):
    sim = simulator_factory(
        id_type="partner", tenants=3, regions=["eu01", "us01"], events=1500, alerts=300
    )
    with open_session(sim) as session:
        identity = session.authenticate()
        assert identity.id_type == "partner"
        assert sorted({t.region for t in identity.tenants}) == ["eu01", "us01"]
        assert [t.name for t in identity.tenants] == [t.name for t in sim.tenants]
        for tenant in identity.tenants:
            for stream in ("Events", "Alerts"):
                items, checkpoint, pages = drain(session, stream, tenant)
                assert sorted(ids(items)) == sorted(sim.item_ids(tenant.id, stream))
                assert len(set(ids(items))) == len(items)
                assert all(page.tenant == tenant for page in pages)
                # Nothing new: the next poll yields nothing at all.
                assert drain(session, stream, tenant, checkpoint)[0] == []
    totals = sim.stats()["totals"]
    assert totals["Events"]["served"] == totals["Events"]["available"] == 4500
    assert totals["Alerts"]["served"] == totals["Alerts"]["available"] == 900


def test_organization_credential_lists_tenants_over_several_pages(simulator_factory):
    sim = simulator_factory(id_type="organization", tenants=130, events=0, alerts=0)
    with open_session(sim) as session:
        identity = session.authenticate()
    assert identity.id_type == "organization"
    assert [t.id for t in identity.tenants] == [t.id for t in sim.tenants]
    assert sim.stats()["requests"]["/organization/v1/tenants"] == {"200": 2}


def test_pages_work_without_authenticate_and_share_one_token(simulator):
    tenant = simulator.tenants[0]
    with open_session(simulator) as session:
        identity = session.authenticate()
    # Another run in the same worker process: no authenticate(), the cached token is reused.
    with open_session(simulator) as session:
        items, _, _ = drain(session, "Events", identity.tenants[0])
        assert session.tokens_fetched == 0
    assert len(items) == len(simulator.item_ids(tenant.id, "Events"))
    assert simulator.stats()["tokens_issued"] == 1


def test_events_checkpoint_resumes_with_new_items_only(simulator):
    tenant = simulator.tenants[0]
    with open_session(simulator) as session:
        tenant_ = session.authenticate().tenants[0]
        items, checkpoint, pages = drain(session, "Events", tenant_)
        assert len(items) == 500
        assert set(checkpoint) == {"cursor", "position"}
        assert pages[0].gap is None
        simulator.add_items("Events", 7, tenant=tenant.id)
        new, checkpoint2, _ = drain(session, "Events", tenant_, checkpoint)
        assert ids(new) == simulator.item_ids(tenant.id, "Events")[-7:]
        assert checkpoint2["cursor"] != checkpoint["cursor"]
        assert drain(session, "Events", tenant_, checkpoint2)[0] == []


def test_empty_first_run_and_idle_streams_store_their_position(simulator_factory):
    sim = simulator_factory(events=0, alerts=0)
    with open_session(sim) as session:
        tenant = session.authenticate().tenants[0]
        pages = list(session.pages(stream="Events", tenant=tenant, checkpoint=None))
        assert len(pages) == 1 and pages[0].items == [] and pages[0].checkpoint["cursor"]
        checkpoint = pages[0].checkpoint
        # Nothing new and nothing due: nothing to store.
        assert list(session.pages(stream="Events", tenant=tenant, checkpoint=checkpoint)) == []
        sim.advance(2 * 3600)
        idle = list(session.pages(stream="Events", tenant=tenant, checkpoint=checkpoint))
        assert len(idle) == 1 and idle[0].items == [] and idle[0].gap is None
        assert idle[0].checkpoint["position"] > checkpoint["position"]
        # First alerts run of an empty tenant: no checkpoint worth storing yet.
        assert list(session.pages(stream="Alerts", tenant=tenant, checkpoint=None)) == []


def test_events_pages_hold_up_to_1000_items_with_their_checkpoint(simulator_factory):
    sim = simulator_factory(events=2500, alerts=0)
    with open_session(sim) as session:
        tenant = session.authenticate().tenants[0]
        pages = list(session.pages(stream="Events", tenant=tenant, checkpoint=None))
    assert [len(p.items) for p in pages] == [1000, 1000, 500]
    assert all(p.bytes > 0 for p in pages)
    assert len({p.checkpoint["cursor"] for p in pages}) == 3


def test_events_exclude_types(simulator_factory):
    sim = simulator_factory(events=800, alerts=0)
    excluded = ["Event::Endpoint::UpdateSuccess", "Event::Endpoint::Registered"]
    with open_session(sim, config={"exclude_types": excluded}) as session:
        tenant = session.authenticate().tenants[0]
        items, _, _ = drain(session, "Events", tenant)
    assert items and not [i for i in items if i["type"] in excluded]
    assert len(items) < 800


def test_alerts_pages_follow_the_served_max_size(simulator_factory):
    sim = simulator_factory(events=0, alerts=1000, alerts_max_page_size=250)
    with open_session(sim) as session:
        tenant = session.authenticate().tenants[0]
        items, checkpoint, pages = drain(session, "Alerts", tenant)
    # The first page asks for the safe 100; the rest for the maxSize the API reported.
    assert [len(p.items) for p in pages] == [100] + [250] * 3 + [150]
    assert sorted(ids(items)) == sorted(sim.item_ids(None, "Alerts"))
    # "endpoints": the endpoints of endpoint alerts, for the Endpoints stream (its own tests).
    assert set(checkpoint) == {"raisedAt", "seen", "endpoints"}
    assert set(checkpoint["endpoints"]) == sim.named_endpoints()


def test_alerts_arriving_late_are_collected_once(simulator):
    tenant = simulator.tenants[0]
    with open_session(simulator) as session:
        tenant_ = session.authenticate().tenants[0]
        _, checkpoint, _ = drain(session, "Alerts", tenant_)
        simulator.advance(30)
        simulator.add_items("Alerts", 2, tenant=tenant.id)
        # Raised before the newest alert already read, visible only now.
        simulator.add_items("Alerts", 3, tenant=tenant.id, late_seconds=45)
        new, checkpoint2, _ = drain(session, "Alerts", tenant_, checkpoint)
        assert sorted(ids(new)) == sorted(simulator.item_ids(tenant.id, "Alerts")[-5:])
        assert drain(session, "Alerts", tenant_, checkpoint2)[0] == []


def test_token_expiry_reauthenticates_once(simulator):
    tenant = simulator.tenants[0]
    with open_session(simulator) as session:
        tenant_ = session.authenticate().tenants[0]
        _, checkpoint, _ = drain(session, "Events", tenant_)
        simulator.advance(3700)  # the server's token expired; our cache does not know yet
        simulator.add_items("Events", 3, tenant=tenant.id)
        new, _, _ = drain(session, "Events", tenant_, checkpoint)
    assert len(new) == 3
    assert simulator.stats()["tokens_issued"] == 2
    assert requests_with(simulator, 401) == 1


def test_expired_cursor_is_reported_as_a_data_gap(simulator):
    tenant = simulator.tenants[0]
    with open_session(simulator) as session:
        tenant_ = session.authenticate().tenants[0]
        _, checkpoint, _ = drain(session, "Events", tenant_)
        position = dt.datetime.fromisoformat(checkpoint["position"])
        simulator.advance(25 * 3600)
        simulator.add_items("Events", 4, tenant=tenant.id)
        new, _, pages = drain(session, "Events", tenant_, checkpoint)
    gap = pages[0].gap
    assert gap is not None and gap.stream == "Events" and gap.tenant_id == tenant.id
    assert gap.lost_from == position
    expected_until = simulator.now() - WINDOW
    assert abs(gap.lost_until.timestamp() - expected_until) < WINDOW_MARGIN + 5
    assert all(p.gap is None for p in pages[1:])
    assert len(new) == 4
    assert requests_with(simulator, 400) == 0


def test_old_position_is_clamped_to_the_window_not_sent(simulator):
    with open_session(simulator) as session:
        tenant_ = session.authenticate().tenants[0]
        old = dt.datetime.fromtimestamp(simulator.now() - 30 * 3600, dt.UTC)
        checkpoint = {"cursor": None, "position": old.isoformat()}
        items, _, pages = drain(session, "Events", tenant_, checkpoint)
    assert pages[0].gap.lost_from == old
    assert pages[0].gap.lost_until.timestamp() == pytest.approx(
        simulator.now() - WINDOW + WINDOW_MARGIN, abs=5
    )
    assert len(items) == 500
    assert requests_with(simulator, 400) == 0


def test_stale_clock_estimate_costs_one_400_then_clamps(simulator):
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        _, checkpoint, _ = drain(session, "Events", tenant)
        position = dt.datetime.fromisoformat(checkpoint["position"])
        # The server clock jumps with no answer since: our estimate says the position is fresh.
        simulator.advance(25 * 3600)
        items, _, pages = drain(session, "Events", tenant, {"position": checkpoint["position"]})
    assert pages[0].gap.lost_from == position
    assert requests_with(simulator, 400) == 1
    assert items == []


def test_first_run_reads_back_the_window_without_a_gap(simulator_factory):
    sim = simulator_factory(events=600, alerts=0, backlog_hours=30)
    with open_session(sim) as session:
        tenant = session.authenticate().tenants[0]
        items, _, pages = drain(session, "Events", tenant)
    assert all(p.gap is None for p in pages)
    assert 0 < len(items) < 600  # what is older than the window cannot be served
    assert requests_with(sim, 400) == 0


def test_https_with_the_simulator_certificate(simulator_factory, tls_files):
    cert, key = tls_files
    sim = simulator_factory(tls_cert=cert, tls_key=key, events=300, alerts=20)
    assert sim.url.startswith("https://")
    with open_session(sim) as session:
        tenant = session.authenticate().tenants[0]
        assert len(drain(session, "Events", tenant)[0]) == 300


def test_https_with_an_unknown_certificate_fails_as_generic(simulator_factory, tls_files, settings):
    cert, key = tls_files
    sim = simulator_factory(tls_cert=cert, tls_key=key)
    settings.SOPHOS_VERIFY_TLS = "true"
    error = raises(lambda: open_session(sim).authenticate())
    assert error.error_type == GENERIC and error.api == "Token"
    assert "secure connection" in error.message


# --- errors -------------------------------------------------------------------------------------


def test_wrong_secret(simulator):
    error = raises(lambda: open_session(simulator, secret="not-the-secret").authenticate())
    assert error.error_type == CONFIG
    assert (error.status, error.vendor_code, error.api) == (
        401,
        "oauth.invalid_client_secret",
        "Token",
    )
    assert (
        error.message == "Sophos Central rejected the client secret (oauth.invalid_client_secret)."
    )
    assert error.remedy == "Edit the source and enter a new Client Secret."
    assert error.correlation_id  # the trackingId


def test_unknown_client_id(simulator):
    error = raises(lambda: open_session(simulator, client_id="nobody").authenticate())
    assert error.error_type == CONFIG
    assert (error.status, error.vendor_code) == (401, "oauth.client_app_does_not_exist")


def test_token_request_validation_error(simulator):
    error = raises(lambda: open_session(simulator, client_id="").authenticate())
    assert error.error_type == CONFIG
    assert (error.status, error.vendor_code, error.api) == (400, "customer.validation", "Token")


def test_data_400_is_a_config_error_with_context(simulator):
    tenant = simulator.tenants[0]
    simulator.set_fault("status", api="Events", status=400)
    with open_session(simulator) as session:
        tenant_ = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Events", tenant_))
    assert error.error_type == CONFIG
    assert (error.status, error.api, error.tenant_id) == (400, "Events", tenant.id)
    assert error.vendor_code == "badRequest" and error.correlation_id


def test_401_that_survives_reauthentication(simulator):
    simulator.set_fault("status", api="Alerts", status=401)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Alerts", tenant))
    assert error.error_type == CONFIG and error.status == 401 and error.api == "Alerts"
    assert "even after signing in again" in error.message
    assert simulator.stats()["tokens_issued"] == 2  # exactly one re-authentication


def test_single_401_recovers_by_reauthenticating(simulator):
    simulator.set_fault("status", api="Events", status=401, times=1)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        assert len(drain(session, "Events", tenant)[0]) == 500


def test_403_for_the_whole_credential(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=2)
    sim.set_fault("status", api="Whoami", status=403)
    error = raises(lambda: open_session(sim).authenticate())
    assert error.error_type == CONFIG and error.status == 403 and error.api == "Whoami"
    assert not error.tenant_scoped


def test_403_for_one_tenant_of_a_partner_leaves_the_others(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=3, events=100, alerts=10)
    blocked = sim.tenants[1]
    sim.set_fault("status", api="data", tenant=blocked.id, status=403)
    with open_session(sim) as session:
        tenants = session.authenticate().tenants
        for tenant in tenants:
            if tenant.id == blocked.id:
                error = raises(lambda t=tenant: drain(session, "Events", t))
                assert error.tenant_scoped and error.error_type == CONFIG
                assert (error.tenant_id, error.tenant_name) == (blocked.id, blocked.name)
                assert blocked.name in error.message
            else:
                assert len(drain(session, "Events", tenant)[0]) == 100


def test_403_on_data_without_authenticate_finds_the_credential_type(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=2, events=10)
    with open_session(sim) as session:
        tenants = session.authenticate().tenants
    from collector.kinds.sophos_central.transport import clear_token_cache

    clear_token_cache()  # a fresh worker process: nothing known about the credential
    sim.set_fault("status", api="Events", tenant=tenants[0].id, status=403)
    with open_session(sim) as session:
        error = raises(lambda: drain(session, "Events", tenants[0]))
    assert error.tenant_scoped


def test_403_on_data_of_a_tenant_credential_is_not_tenant_scoped(simulator):
    simulator.set_fault("status", api="Events", status=403)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Events", tenant))
    assert error.error_type == CONFIG and not error.tenant_scoped


def test_404_is_generic(simulator):
    simulator.set_fault("status", api="Alerts", status=404)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Alerts", tenant))
    assert error.error_type == GENERIC and error.status == 404


def test_429_honours_retry_after_within_the_call(simulator):
    waits = []
    simulator.set_fault("status", api="Events", status=429, retry_after=2, times=1)
    with open_session(simulator, sleep=waits.append) as session:
        tenant = session.authenticate().tenants[0]
        assert len(drain(session, "Events", tenant)[0]) == 500
    assert waits == [2.0]


def test_429_without_retry_after_gives_up_after_three_tries(simulator):
    simulator.set_fault("status", api="Events", status=429)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Events", tenant))
    assert error.error_type == GENERIC and error.status == 429 and error.retry_after is None
    assert requests_with(simulator, 429) == 3


def test_429_with_a_long_retry_after_is_left_to_the_engine(simulator):
    waits = []
    simulator.set_fault("status", api="Events", status=429, retry_after=120)
    with open_session(simulator, sleep=waits.append) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Events", tenant))
    assert error.retry_after == 120.0 and waits == []
    assert requests_with(simulator, 429) == 1


def test_500_with_an_empty_body(simulator):
    simulator.set_fault("status", api="Events", status=500, empty=True)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Events", tenant))
    assert error.error_type == GENERIC and error.status == 500
    assert error.vendor_code == "" and "internal error" in error.message


def test_transient_500s_are_retried_within_the_call(simulator):
    simulator.set_fault("status", api="Token", status=500, empty=True, times=2)
    with open_session(simulator) as session:
        assert session.authenticate().id_type == "tenant"


@pytest.mark.parametrize("status", [502, 503, 504])
def test_gateway_errors(simulator, status):
    simulator.set_fault("status", api="Alerts", status=status)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Alerts", tenant))
    assert error.error_type == GENERIC and error.status == status
    assert "unavailable" in error.message and error.remedy


def test_timeout(simulator):
    simulator.set_fault("slow", api="Events", delay=2.0)
    with open_session(simulator, timeout=(1.0, 0.2)) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Events", tenant))
    assert error.error_type == GENERIC and error.status is None
    assert error.message == (
        f"The Events API of Sophos Central did not answer for tenant {tenant.id} within 0.2 seconds."
    )


def test_connection_refused(settings):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.SOPHOS_TOKEN_URL = f"http://127.0.0.1:{port}/api/v2/oauth2/token"
    settings.SOPHOS_API_URL = f"http://127.0.0.1:{port}"
    settings.SOPHOS_EXTRA_HOSTS = [f"127.0.0.1:{port}"]
    session = kind.open(config={"clientId": "x"}, secret="y", **FAST)
    error = raises(session.authenticate)
    assert error.error_type == GENERIC and error.api == "Token"
    assert "refused" in error.message


@pytest.mark.parametrize("fault", ["reset", "drop"])
def test_connection_reset_or_dropped_mid_body(simulator, fault):
    simulator.set_fault(fault, api="Events")
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Events", tenant))
    assert error.error_type == GENERIC and error.api == "Events"
    assert "connection" in error.message.lower()


@pytest.mark.parametrize("fault", ["reset", "drop", "malformed", "truncated"])
def test_one_broken_answer_is_retried(simulator, fault):
    simulator.set_fault(fault, api="Events", times=1)
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        assert len(drain(session, "Events", tenant)[0]) == 500
    assert simulator.stats()["totals"]["Events"]["served"] == 500


@pytest.mark.parametrize("fault", ["malformed", "truncated"])
def test_malformed_or_truncated_json(simulator, fault):
    simulator.set_fault(fault, api="Alerts")
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        error = raises(lambda: drain(session, "Alerts", tenant))
    assert error.error_type == GENERIC and error.status == 200
    assert "malformed or truncated JSON" in error.message


@pytest.mark.parametrize("api", ["Token", "Whoami", "Events", "Alerts"])
def test_answer_of_the_wrong_shape(simulator, api):
    simulator.set_fault("wrong_shape", api=api)
    with open_session(simulator) as session:

        def run():
            tenant = session.authenticate().tenants[0]
            drain(session, "Events" if api != "Alerts" else "Alerts", tenant)

        error = raises(run)
    assert error.error_type == GENERIC and error.api == api
    assert "unexpected shape" in error.message


def test_data_host_outside_the_allow_list_gets_no_token(simulator):
    simulator.set_fault(
        "body",
        api="Whoami",
        body='{"id": "t-1", "idType": "tenant", "apiHosts": {"dataRegion": "https://evil.example"}}',
    )
    with open_session(simulator) as session:
        error = raises(session.authenticate)
    assert error.error_type == CONFIG and "outside the allowed Sophos domains" in error.message
    assert "(evil.example)" in error.message
    assert requests_with(simulator, 200) == 2  # token and whoami; no data call


# --- rare shapes, served verbatim by the simulator's "body" fault -------------------------------


def test_tenant_listing_pointing_elsewhere_is_refused(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=1)
    sim.set_fault(
        "body",
        api="Tenants",
        body='{"items": [{"id": "t-1", "name": "Evil", "apiHost": "https://api-eu01.central.sophos.com.evil.example"}], "pages": {"total": 1}}',
    )
    error = raises(lambda: open_session(sim).authenticate())
    assert error.error_type == CONFIG and "evil.example" in error.message


def test_tenant_listing_with_http_sophos_hosts_and_trailing_slashes(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=1)
    sim.set_fault(
        "body",
        api="Tenants",
        body='{"items": [{"id": "t-1", "name": "A", "apiHost": "http://api-eu02.central.sophos.com/", "dataRegion": "eu02"},'
        ' {"id": "t-2", "showAs": "B", "apiHost": "https://API-US01.central.sophos.com"}, {"id": "t-3", "name": "pending"}],'
        ' "pages": {"current": 1, "total": 1}}',
    )
    tenants = open_session(sim).authenticate().tenants
    assert [(t.id, t.name, t.api_host, t.region) for t in tenants] == [
        ("t-1", "A", "https://api-eu02.central.sophos.com", "eu02"),
        ("t-2", "B", "https://api-us01.central.sophos.com", "us01"),
    ]


@pytest.mark.parametrize(
    "body, expected",
    [
        ('{"id": "x", "idType": "service", "apiHosts": {}}', "type service"),
        (
            '{"id": "x", "idType": "tenant", "apiHosts": {"global": "https://api.central.sophos.com"}}',
            "without a data region",
        ),
    ],
)
def test_whoami_credentials_we_cannot_use(simulator, body, expected):
    simulator.set_fault("body", api="Whoami", body=body)
    error = raises(lambda: open_session(simulator).authenticate())
    assert error.error_type == CONFIG and expected in error.message


def test_unexpected_redirect_is_not_followed(simulator):
    simulator.set_fault("body", api="Whoami", status=302, body="")
    error = raises(lambda: open_session(simulator).authenticate())
    assert error.error_type == GENERIC and "redirect" in error.message


def test_events_answer_without_next_cursor_or_with_empty_more(simulator):
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        simulator.set_fault("body", api="Events", body='{"has_more": true, "items": []}')
        items, checkpoint, pages = drain(session, "Events", tenant)
    assert items == [] and len(pages) == 1  # no endless loop on "more" without progress
    assert checkpoint["cursor"] is None and checkpoint["position"]


def test_retry_after_as_an_http_date(simulator):
    waits = []
    when = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 3))
    simulator.set_fault("status", api="Token", status=503, retry_after=when, times=1)
    with open_session(simulator, sleep=waits.append) as session:
        session.authenticate()
    assert len(waits) == 1 and 1.0 <= waits[0] <= 4.0


# --- connection test and secrets -----------------------------------------------------------------


def test_connection_test_reports_in_plain_words(simulator_factory):
    sim = simulator_factory(id_type="partner", tenants=3, events=50, alerts=10)
    cred = sim.credential()
    report = kind.test_connection(
        config={"clientId": cred.client_id}, secret=cred.client_secret, **FAST
    )
    assert report.ok and report.error is None
    count = len(report.samples)
    assert report.summary == (
        f"Authenticated as a partner credential with 3 tenants in eu01, us01. {count} recent items."
        " Endpoint details: readable."
    )
    assert report.identity.id_type == "partner" and 5 <= count <= 10


def test_connection_test_with_a_wrong_secret(simulator):
    report = kind.test_connection(
        config={"clientId": simulator.credential().client_id}, secret="nope"
    )
    assert not report.ok and report.identity is None
    assert report.summary.startswith("Sophos Central rejected the client secret")
    assert report.error.vendor_code == "oauth.invalid_client_secret"


def test_connection_test_names_a_failing_data_api(simulator):
    simulator.set_fault("status", api="Alerts", status=403)
    cred = simulator.credential()
    report = kind.test_connection(
        config={"clientId": cred.client_id}, secret=cred.client_secret, **FAST
    )
    assert not report.ok and report.identity is not None
    assert report.summary.startswith(
        "Authenticated as a tenant credential in eu01. Reading Alerts failed: Sophos Central denied"
    )


def test_connection_test_keeps_its_deadline_and_never_raises(simulator):
    simulator.set_fault("slow", delay=10)
    cred = simulator.credential()
    started = time.monotonic()
    report = kind.test_connection(
        config={"clientId": cred.client_id},
        secret=cred.client_secret,
        deadline=0.5,
        retries=3,
        backoff=0.0,
    )
    assert time.monotonic() - started < 3
    assert not report.ok and report.error.error_type == GENERIC


def test_no_secret_or_token_in_logs_or_errors(simulator, caplog):
    caplog.set_level(logging.DEBUG)
    cred = simulator.credential()
    with open_session(simulator) as session:
        tenant = session.authenticate().tenants[0]
        drain(session, "Events", tenant)
        simulator.set_fault("status", api="Events", status=401)
        error = raises(lambda: drain(session, "Events", tenant))
    wrong = raises(lambda: open_session(simulator, secret="wrong-secret-value").authenticate())
    tokens = list(simulator._tokens)
    assert tokens
    texts = [caplog.text, repr(session), str(error.details()), str(wrong.details()), repr(error)]
    for text in texts:
        assert cred.client_secret not in text and "wrong-secret-value" not in text
        assert not any(token in text for token in tokens)


@pytest.mark.slow
def test_draining_a_large_backlog_stores_what_was_served(simulator_factory):
    sim = simulator_factory(events=50_000, alerts=5_000)
    stored: dict[tuple[str, str], dict] = {}
    checkpoints = {}
    with open_session(sim) as session:
        tenant = session.authenticate().tenants[0]
        for stream in ("Events", "Alerts"):
            for page in session.pages(stream=stream, tenant=tenant, checkpoint=None):
                for item in page.items:
                    meta = kind.map_item(stream, item)
                    # The engine's unique key: a re-fetched item would overwrite, not add.
                    stored[(stream, meta.vendor_id)] = item
                checkpoints[stream] = page.checkpoint
            assert (
                list(session.pages(stream=stream, tenant=tenant, checkpoint=checkpoints[stream]))
                == []
            )
    streams = sim.stats()["tenants"][tenant.id]["streams"]
    for stream, available in (("Events", 50_000), ("Alerts", 5_000)):
        count = sum(1 for key in stored if key[0] == stream)
        assert count == streams[stream]["served"] == streams[stream]["available"] == available
    # Events are read once; alerts of the last few minutes again (the overlap), then dropped.
    assert streams["Events"]["served_total"] == 50_000
    assert 5_000 < streams["Alerts"]["served_total"] < 5_500
