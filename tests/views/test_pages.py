"""The dashboard pages for anonymous, view-only and admin users: access, actions and secrets."""

import datetime as dt
import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from collector import engine
from collector.choices import Severity, SourceState
from collector.kinds.base import ConnectionReport, Identity, Tenant
from collector.models import (
    AccessKey,
    Checkpoint,
    CollectionRun,
    Collector,
    DroppedField,
    Field,
    HealthEvent,
    IngestBucket,
    Message,
    Source,
    SourceTransition,
)
from tests.support.messages import make_message

SECRET = "s3cret-value-XYZ"


@pytest.fixture(autouse=True)
def _no_broker(queued):
    """No task reaches a broker in view tests; ``queued`` lists what was asked for."""


@pytest.fixture
def world(make_collector, make_source, admin_user):
    """One of everything a page shows."""
    collector = make_collector("Hosted EU", description="Main collector")
    source = make_source("Sophos East", collector=collector, secret=SECRET, category="sophos/east")
    now = timezone.now()
    SourceTransition.objects.create(source=source, from_state="", to_state="Pending", reason="new")
    HealthEvent.objects.create(
        event_name="ThirdPartyConfigError",
        error_type="ThirdPartyConfig",
        severity=Severity.ERROR,
        source=source,
        resource_id=str(source.pk),
        resource_name=source.name,
        collector_id=str(collector.pk),
        collector_name=collector.name,
        details={"error": "Sophos Central rejected the client secret.", "description": "Edit it."},
    )
    Checkpoint.objects.create(
        source=source, stream="Alerts", tenant_id="t-1", data_until=now, items_total=7
    )
    CollectionRun.objects.create(source=source, source_name=source.name, stream="Alerts", items=7)
    IngestBucket.objects.create(
        source=source, stream="Alerts", start=now.replace(second=0, microsecond=0), items=7
    )
    Message.objects.create(
        source=source,
        stream="Alerts",
        tenant_id="t-1",
        tenant_name="Acme",
        vendor_id="a-1",
        source_name=source.name,
        source_category="sophos/east",
        collector_name=collector.name,
        siem_event_id="malware",
        raw=json.dumps({"id": "a-1", "description": "Malware detected"}),
        message_time=now,
        receipt_time=now,
    )
    field = Field.objects.create(name="team")
    dropped = DroppedField.objects.create(name="region_code", count=3)
    key = AccessKey.objects.create(user=admin_user, access_id="su123", key_digest="0" * 64)
    return {
        "collector": collector,
        "source": source,
        "field": field,
        "dropped": dropped,
        "key": key,
    }


@pytest.fixture
def both(admin_user, viewer_user):
    """An admin and a view-only client side by side (the stock fixtures share one client)."""
    from django.test import Client

    admin, viewer = Client(), Client()
    admin.force_login(admin_user)
    viewer.force_login(viewer_user)
    return admin, viewer


def page_urls(w) -> dict[str, str]:
    c, s = w["collector"].pk, w["source"].pk
    return {
        "collection": reverse("collector:collection"),
        "status_json": reverse("collector:status_json") + f"?ids={s}",
        "collector_add": reverse("collector:collector_add"),
        "collector_edit": reverse("collector:collector_edit", args=[c]),
        "collector_delete": reverse("collector:collector_delete", args=[c]),
        "source_kinds": reverse("collector:source_kinds", args=[c]),
        "source_add": reverse("collector:source_add", args=[c, "sophos-central"]),
        "source_detail": reverse("collector:source_detail", args=[s]),
        "source_edit": reverse("collector:source_edit", args=[s]),
        "source_json": reverse("collector:source_json", args=[s]),
        "source_json_download": reverse("collector:source_json", args=[s]) + "?download=1",
        "source_timeline": reverse("collector:source_timeline", args=[s]),
        "source_delete": reverse("collector:source_delete", args=[s]),
        "health_events": reverse("collector:health_events"),
        "health_events_resolved": reverse("collector:health_events") + "?status=resolved",
        "health_status": reverse("collector:health_status"),
        "fields": reverse("collector:fields"),
        "fields_check": reverse("collector:fields_check") + "?name=team",
        "dropped_fields": reverse("collector:dropped_fields"),
        "log_search": reverse("collector:log_search"),
        "access_keys": reverse("collector:access_keys"),
    }


CHANGE_PAGES = {
    "collector_add",
    "collector_edit",
    "collector_delete",
    "source_kinds",
    "source_add",
    "source_edit",
    "source_delete",
}


def post_urls(w) -> dict[str, str]:
    c, s = w["collector"].pk, w["source"].pk
    f, d, k = w["field"].pk, w["dropped"].pk, w["key"].pk
    return {
        "collector_add": reverse("collector:collector_add"),
        "collector_edit": reverse("collector:collector_edit", args=[c]),
        "collector_delete": reverse("collector:collector_delete", args=[c]),
        "source_add": reverse("collector:source_add", args=[c, "sophos-central"]),
        "source_test_new": reverse("collector:source_test_new", args=[c, "sophos-central"]),
        "source_edit": reverse("collector:source_edit", args=[s]),
        "source_test_existing": reverse("collector:source_test_existing", args=[s]),
        "source_restart": reverse("collector:source_action", args=[s, "restart"]),
        "source_pause": reverse("collector:source_action", args=[s, "pause"]),
        "source_resume": reverse("collector:source_action", args=[s, "resume"]),
        "source_delete": reverse("collector:source_delete", args=[s]),
        "field_add": reverse("collector:field_add"),
        "field_enable": reverse("collector:field_enable", args=[f]),
        "field_disable": reverse("collector:field_disable", args=[f]),
        "field_delete": reverse("collector:field_delete", args=[f]),
        "dropped_create": reverse("collector:dropped_create", args=[d]),
        "access_key_create": reverse("collector:access_key_create"),
        "access_key_revoke": reverse("collector:access_key_revoke", args=[k]),
    }


def source_post(**overrides) -> dict:
    data = {
        "name": "Sophos West",
        "description": "West field",
        "category": "sophos/west",
        "fields-key": ["team"],
        "fields-value": ["blue"],
        "client_id": "client-abc",
        "client_secret": "brand-new-secret-123",
        "supported_apis": ["Alerts", "Events"],
        "polling_interval": "300",
    }
    data.update(overrides)
    return data


# --- access ------------------------------------------------------------------------------------
def test_anonymous_users_are_sent_to_login_from_every_page(client, world):
    for name, url in page_urls(world).items():
        response = client.get(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name
    for name, url in post_urls(world).items():
        response = client.post(url)
        assert response.status_code == 302, name
        assert response["Location"].startswith(reverse("login")), name


def test_admin_sees_every_page(admin_client, world):
    for name, url in page_urls(world).items():
        response = admin_client.get(url)
        assert response.status_code == 200, name


def test_view_only_user_sees_pages_but_not_change_forms(viewer_client, world):
    for name, url in page_urls(world).items():
        response = viewer_client.get(url)
        expected = 403 if name in CHANGE_PAGES else 200
        assert response.status_code == expected, name


def test_view_only_user_gets_403_for_every_post(viewer_client, world, queued):
    source = world["source"]
    for name, url in post_urls(world).items():
        response = viewer_client.post(url, source_post())
        assert response.status_code == 403, name
    source.refresh_from_db()
    assert source.state == SourceState.PENDING
    assert Collector.objects.count() == 1
    assert Field.objects.count() == 1
    assert AccessKey.objects.get().revoked_at is None
    assert queued == []


def test_view_only_user_gets_no_change_actions(both, world):
    source = world["source"]
    for client, present in zip(both, (True, False), strict=True):
        html = client.get(reverse("collector:collection")).content.decode()
        assert ("Add Collector" in html) is present
        assert ("Add Source" in html) is present
        assert (reverse("collector:source_edit", args=[source.pk]) in html) is present
        assert (reverse("collector:source_delete", args=[source.pk]) in html) is present
        assert (reverse("collector:source_action", args=[source.pk, "restart"]) in html) is present
        # the JSON view is for everyone
        assert reverse("collector:source_json", args=[source.pk]) in html
        fields_html = client.get(reverse("collector:fields")).content.decode()
        assert ("Add field" in fields_html) is present
        keys_html = client.get(reverse("collector:access_keys")).content.decode()
        assert ("Revoke" in keys_html) is present


def test_status_json_answers_the_icons_of_the_page(admin_client, world):
    source = world["source"]
    response = admin_client.get(reverse("collector:status_json") + f"?ids={source.pk},999,x")
    data = response.json()["sources"]
    assert list(data) == [str(source.pk)]
    info = data[str(source.pk)]
    assert info["state"] == "Pending"
    assert info["health"] == "Error"
    assert info["icon"] == "x-octagon"
    assert info["colour"] == "danger"
    assert "Sophos Central rejected the client secret." in info["tooltip"]
    assert response["Cache-Control"].startswith("max-age=0")


# --- collection page ---------------------------------------------------------------------------
def test_collection_lists_collectors_sources_icons_and_counts(admin_client, world):
    source = world["source"]
    html = admin_client.get(reverse("collector:collection")).content.decode()
    assert "Hosted EU" in html and "Sophos East" in html and "sophos/east" in html
    icon = re.search(rf'<a class="status-icon[^>]*data-status-for="{source.pk}"[^>]*>', html)
    assert icon, "the status icon links to the source's health events"
    assert 'data-health="Error"' in icon.group(0)
    assert "Sophos Central rejected the client secret." in icon.group(0)
    assert f"resource_id={source.pk}" in icon.group(0)
    assert 'href="#icon-x-octagon"' in html
    assert 'aria-label="7 items in the last hour' in html


def test_each_health_has_its_own_icon_shape(admin_client, make_source, world):
    paused = make_source("Paused one", paused=True, state=SourceState.PAUSED)
    healthy = make_source("Healthy one", state=SourceState.COLLECTING)
    html = admin_client.get(reverse("collector:collection")).content.decode()

    def shape(source):
        tag = re.search(rf'data-status-for="{source.pk}".*?<use href="#icon-([a-z-]+)"', html, re.S)
        return tag.group(1)

    assert shape(healthy) == "check-circle"
    assert shape(paused) == "pause-circle"
    assert shape(world["source"]) == "x-octagon"
    pending = make_source("Pending one")
    html = admin_client.get(reverse("collector:collection")).content.decode()
    assert shape(pending) == "hourglass"


def test_collection_search_with_trailing_wildcard(admin_client, make_collector, make_source):
    eu = make_collector("Hosted EU")
    us = make_collector("Hosted US", category="other")
    make_source("Sophos East", collector=eu, category="sophos/east")
    make_source("Firewall", collector=us, category="fw")
    html = admin_client.get(reverse("collector:collection") + "?q=soph*").content.decode()
    assert "Sophos East" in html and "Firewall" not in html and "Hosted US" not in html
    html = admin_client.get(reverse("collector:collection") + "?q=fw").content.decode()
    assert "Firewall" in html and "Sophos East" not in html
    html = admin_client.get(reverse("collector:collection") + "?q=nothing*").content.decode()
    assert "Nothing matches" in html


def test_collection_paginates_by_collector(admin_client, make_collector):
    for i in range(55):
        make_collector(f"Collector {i:03d}")
    first = admin_client.get(reverse("collector:collection")).content.decode()
    second = admin_client.get(reverse("collector:collection") + "?page=2").content.decode()
    assert "Collector 049" in first and "Collector 050" not in first
    assert "Collector 050" in second and "Page 2 of 2" in second


# --- collectors --------------------------------------------------------------------------------
def test_admin_creates_edits_and_deletes_a_collector(admin_client, make_source):
    response = admin_client.post(
        reverse("collector:collector_add"),
        {
            "name": "Hosted APAC",
            "category": "apac",
            "time_zone": "UTC",
            "fields-key": ["team"],
            "fields-value": ["red"],
        },  # fmt: skip
    )
    collector = Collector.objects.get(name="Hosted APAC")
    assert response.status_code == 302 and f"#collector-{collector.pk}" in response["Location"]
    assert collector.fields == {"team": "red"}
    response = admin_client.post(
        reverse("collector:collector_edit", args=[collector.pk]),
        {"name": "Hosted APAC 2", "time_zone": "Europe/Berlin"},
    )
    collector.refresh_from_db()
    assert (collector.name, collector.time_zone) == ("Hosted APAC 2", "Europe/Berlin")
    make_source("On it", collector=collector)
    confirm = admin_client.get(reverse("collector:collector_delete", args=[collector.pk]))
    assert "On it" in confirm.content.decode()
    admin_client.post(reverse("collector:collector_delete", args=[collector.pk]))
    assert not Collector.objects.filter(pk=collector.pk).exists()


def test_collector_form_shows_field_errors(admin_client, make_collector):
    make_collector("Taken")
    response = admin_client.post(
        reverse("collector:collector_add"),
        {"name": "Taken", "time_zone": "Mars/Base", "fields-key": ["9bad"], "fields-value": ["x"]},
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "A collector named &#x27;Taken&#x27; already exists" in html
    assert "is not one of the available choices" in html
    assert "must not start with a digit" in html


def test_collector_names_are_unique_without_regard_to_case(admin_client, make_collector):
    from django.db import IntegrityError, transaction

    make_collector("Hosted EU")
    response = admin_client.post(reverse("collector:collector_add"),
                                 {"name": "hosted eu", "time_zone": "UTC"})  # fmt: skip
    assert response.status_code == 200
    assert "without regard to case" in response.content.decode()
    assert Collector.objects.count() == 1
    with pytest.raises(IntegrityError), transaction.atomic():
        Collector.objects.create(name="HOSTED EU")  # the database holds the rule too


# --- sources -----------------------------------------------------------------------------------
def test_kind_picker_shows_the_sophos_central_tile(admin_client, world):
    html = admin_client.get(
        reverse("collector:source_kinds", args=[world["collector"].pk])
    ).content.decode()
    assert "Sophos Central" in html
    assert reverse("collector:source_add", args=[world["collector"].pk, "sophos-central"]) in html
    assert '<img src="/static/kinds/sophos_central/icon.svg"' in html


def test_add_source_form_follows_the_seed_order(admin_client, world):
    html = admin_client.get(
        reverse("collector:source_add", args=[world["collector"].pk, "sophos-central"])
    ).content.decode()
    labels = [
        'name="name"',
        'name="description"',
        'name="category"',
        'name="forward_to_siem"',
        'name="fields-key"',
        'name="auto_add_fields"',
        'name="client_id"',
        'name="client_secret"',
        'name="supported_apis"',
        'name="polling_interval"',
    ]
    positions = [html.index(label) for label in labels]
    assert positions == sorted(positions)
    assert 'value="300"' in html
    assert "_siemVendor" in html and "_siemProduct" in html and "_siemEventID" in html
    assert "Test connection" in html


def test_add_source_creates_it_pending_adds_fields_and_queues_it(
    admin_client, world, queued, django_capture_on_commit_callbacks
):
    url = reverse("collector:source_add", args=[world["collector"].pk, "sophos-central"])
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(
            url,
            source_post(**{"fields-key": ["team", "owner"], "fields-value": ["blue", "me"]})
            | {"auto_add_fields": "on", "forward_to_siem": "on"},
        )
    source = Source.objects.get(name="Sophos West")
    assert response.status_code == 302
    assert response["Location"] == reverse("collector:source_detail", args=[source.pk])
    assert source.state == SourceState.STARTED
    assert source.forward_to_siem and source.fields == {"team": "blue", "owner": "me"}
    assert source.get_secret().reveal() == "brand-new-secret-123"
    assert Field.objects.filter(name="owner", enabled=True).exists()
    assert (engine.RUN_SOURCE, source.pk) in queued
    page = admin_client.get(response["Location"]).content.decode()
    for step in ("Pending", "Started", "Initialized", "Authenticated", "Collecting"):
        assert f'data-step="{step}"' in page
    assert "brand-new-secret-123" not in page


def test_add_source_shows_field_level_errors(admin_client, world):
    url = reverse("collector:source_add", args=[world["collector"].pk, "sophos-central"])
    response = admin_client.post(
        url,
        source_post(
            name="Sophos East",
            client_secret="",
            supported_apis=[],
            polling_interval="5",
            **{"fields-key": ["_hidden"], "fields-value": ["x"]},
        ),
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "already exists on this collector" in html
    assert re.search(r'id="error_1_id_client_secret"[^>]*><strong>This field is required.', html)
    assert "Select at least one of Alerts and Events." in html
    assert "Ensure this value is greater than or equal to 60." in html
    assert "reserved for built-in metadata" in html
    assert Source.objects.count() == 1


def test_edit_source_keeps_the_secret_when_left_blank(
    admin_client, world, queued, django_capture_on_commit_callbacks
):
    source = world["source"]
    url = reverse("collector:source_edit", args=[source.pk])
    html = admin_client.get(url).content.decode()
    assert SECRET not in html and source.secret_encrypted not in html
    assert "Leave blank to keep the current secret" in html
    secret_input = re.search(r'<input[^>]*name="client_secret"[^>]*>', html).group(0)
    assert "value=" not in secret_input
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(url, source_post(name="Renamed", client_secret=""))
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.name == "Renamed"
    assert source.get_secret().reveal() == SECRET
    assert source.state == SourceState.STARTED
    assert (engine.RUN_SOURCE, source.pk) in queued


def test_lifecycle_actions(admin_client, world):
    source = world["source"]
    back = reverse("collector:collection") + "?q=soph*"
    response = admin_client.post(
        reverse("collector:source_action", args=[source.pk, "pause"]), {"next": back}
    )
    assert response["Location"] == back
    source.refresh_from_db()
    assert source.state == SourceState.PAUSED and source.paused
    admin_client.post(reverse("collector:source_action", args=[source.pk, "resume"]))
    source.refresh_from_db()
    assert not source.paused and source.state in (SourceState.PENDING, SourceState.STARTED)
    response = admin_client.post(
        reverse("collector:source_action", args=[source.pk, "restart"]),
        {"next": "https://evil.example/"},
    )
    assert response["Location"] == reverse("collector:source_detail", args=[source.pk])
    assert (
        admin_client.post(
            reverse("collector:source_action", args=[source.pk, "explode"])
        ).status_code
        == 404
    )
    assert (
        admin_client.get(reverse("collector:source_action", args=[source.pk, "pause"])).status_code
        == 405
    )


def test_delete_source_goes_to_stopping(admin_client, world, queued):
    source = world["source"]
    response = admin_client.post(reverse("collector:source_delete", args=[source.pk]))
    assert response.status_code == 302
    source.refresh_from_db()
    assert source.state == SourceState.STOPPING
    assert (engine.FINISH_STOP, source.pk) in queued
    html = admin_client.get(reverse("collector:collection")).content.decode()
    assert "Stopping…" in html
    assert admin_client.get(reverse("collector:source_edit", args=[source.pk])).status_code == 404


def test_json_view_masks_the_secret(both, world):
    source = world["source"]
    for client in both:
        document = client.get(
            reverse("collector:source_json", args=[source.pk]) + "?download=1"
        ).json()
        config = document["source"]["config"]
        assert config["clientSecret"] == "********"
        assert config["clientId"] == "client-123"
        assert document["source"]["schemaRef"] == {"type": "Sophos Central"}
        assert document["source"]["state"] == {"state": "Pending"}


def test_source_page_shows_timeline_events_checkpoints_runs_and_chart(admin_client, world):
    source = world["source"]
    html = admin_client.get(reverse("collector:source_detail", args=[source.pk])).content.decode()
    assert "State timeline" in html and "new" in html
    assert "Sophos Central rejected the client secret." in html
    assert "t-1" in html and "Checkpoints" in html
    assert "Recent collection runs" in html
    assert 'class="hourly-chart"' in html and "Alerts: 7" in html
    assert "&quot;clientSecret&quot;: &quot;********&quot;" in html


# --- test connection ---------------------------------------------------------------------------
class FakeKind:
    """Stands in for the vendor: records what Test connection passed it."""

    def __init__(self, report):
        self.report = report
        self.calls = []

    def test_connection(self, *, config, secret, deadline):
        self.calls.append({"config": config, "secret": secret, "deadline": deadline})
        return self.report

    def describe_item(self, item):
        from collector.kinds import get_kind

        return get_kind("Sophos Central").describe_item(item)


def fake_kind(monkeypatch, report):
    kind = FakeKind(report)
    monkeypatch.setattr("collector.services.get_kind", lambda name: kind)
    return kind


def test_test_connection_answers_in_plain_words(admin_client, world, monkeypatch):
    identity = Identity(
        id="p-1",
        id_type="partner",
        tenants=(
            Tenant("t1", "Acme", "https://api-eu01", "eu01"),
            Tenant("t2", "Beta", "https://api-us01", "us01"),
        ),  # fmt: skip
    )
    report = ConnectionReport(
        True,
        "Authenticated as a partner credential with 2 tenants in eu01, us01. 1 recent item.",
        identity,
        [
            {
                "raisedAt": "2026-01-20T10:00:00Z",
                "category": "malware",
                "description": "<b>EICAR</b>",
            }
        ],
    )
    kind = fake_kind(monkeypatch, report)
    url = reverse("collector:source_test_new", args=[world["collector"].pk, "sophos-central"])
    html = admin_client.post(url, source_post(name="")).content.decode()
    assert 'data-test-outcome="ok"' in html
    assert "Partner credential" in html and "eu01, us01" in html
    assert "&lt;b&gt;EICAR&lt;/b&gt;" in html and "<b>EICAR" not in html
    assert kind.calls == [
        {
            "config": {"clientId": "client-abc", "supported_apis": ["Alerts", "Events"]},
            "secret": "brand-new-secret-123",
            "deadline": 10,
        }
    ]
    assert Source.objects.count() == 1, "testing saves nothing"


def test_test_connection_reports_the_classified_failure(admin_client, world, monkeypatch):
    from collector.errors import CollectionError

    error = CollectionError(
        "ThirdPartyConfig", "Sophos Central rejected the client secret.", status=401
    )
    fake_kind(
        monkeypatch,
        ConnectionReport(False, "Sophos Central rejected the client secret. Edit it.", error=error),
    )
    url = reverse("collector:source_test_new", args=[world["collector"].pk, "sophos-central"])
    html = admin_client.post(url, source_post()).content.decode()
    assert 'data-test-outcome="failed"' in html
    assert "rejected the client secret" in html and "ThirdPartyConfig" in html
    assert "HTTP 401" in html


def test_test_connection_asks_for_missing_credentials(admin_client, world, monkeypatch):
    kind = fake_kind(monkeypatch, ConnectionReport(True, "never"))
    url = reverse("collector:source_test_new", args=[world["collector"].pk, "sophos-central"])
    html = admin_client.post(url, source_post(client_secret="", client_id="")).content.decode()
    assert 'data-test-outcome="incomplete"' in html
    assert "Client Secret: This field is required." in html
    assert "Client ID: This field is required." in html
    assert kind.calls == []


def test_test_connection_on_edit_uses_the_stored_secret_server_side(
    admin_client, world, monkeypatch
):
    kind = fake_kind(monkeypatch, ConnectionReport(True, "Authenticated as a tenant credential."))
    source = world["source"]
    response = admin_client.post(
        reverse("collector:source_test_existing", args=[source.pk]), source_post(client_secret="")
    )
    assert kind.calls[0]["secret"] == SECRET
    assert SECRET not in response.content.decode()
    assert response["Cache-Control"] == "no-store"


# --- live field check --------------------------------------------------------------------------
def test_fields_check_says_which_keys_exist_and_are_enabled(admin_client, db):
    Field.objects.create(name="team")
    Field.objects.create(name="owner", enabled=False)
    url = reverse("collector:fields_check")
    data = admin_client.get(
        url + "?name=Team&name=owner&name=nothere&name=_siemForward&name=9x"
    ).json()["fields"]
    assert data["Team"]["status"] == "enabled"
    assert data["owner"]["status"] == "disabled"
    assert data["nothere"]["status"] == "missing"
    assert data["_siemForward"]["status"] == "builtin"
    assert data["9x"]["status"] == "invalid"


# --- health ------------------------------------------------------------------------------------
def make_event(source, name="ThirdPartyGenericError", severity="Warning", resolved=False, **kw):
    return HealthEvent.objects.create(
        event_name=name,
        severity=severity,
        source=source,
        resource_id=str(source.pk),
        resource_name=source.name,
        collector_name=source.collector.name,
        scope=kw.pop("scope", f"s{HealthEvent.objects.count()}"),
        resolved_at=timezone.now() if resolved else None,
        details=kw.pop("details", {"error": "Timed out."}),
        **kw,
    )


def test_health_events_tabs_filters_and_sorting(admin_client, make_source):
    east = make_source("East")
    west = make_source("West")
    make_event(east, severity="Error", name="ThirdPartyConfigError", count=5)
    make_event(west, severity="Warning", count=9, details={"error": "Rate limited by vendor"})
    make_event(west, resolved=True, name="FirstPartyGenericError")
    url = reverse("collector:health_events")

    def rows(query=""):
        html = admin_client.get(url + query).content.decode()
        return re.findall(r"<tbody>(.*)</tbody>", html, re.S)[0]

    assert "East" in rows() and "West" in rows() and "FirstPartyGenericError" not in rows()
    assert "FirstPartyGenericError" in rows("?status=resolved")
    assert "East" not in rows("?severity=Warning")
    assert "West" not in rows("?resource=eas")
    assert "East" not in rows("?details=rate+limited")
    assert "West" not in rows("?event=ThirdPartyConfigError")
    assert "West" not in rows(f"?resource_id={east.pk}")
    assert "East" not in rows("?count=6")
    ascending = rows("?sort=count")
    assert ascending.index("East") < ascending.index("West")
    descending = rows("?sort=-count")
    assert descending.index("West") < descending.index("East")
    assert "West" in rows("?seen=1h&opened=24h&type=Source")


def test_health_status_page_counts_states_and_events(admin_client, make_source):
    collecting = make_source("Good", state=SourceState.COLLECTING, last_success_at=timezone.now())
    make_source("Broken", state=SourceState.ERROR)
    make_event(collecting, severity="Error")
    Checkpoint.objects.create(
        source=collecting,
        stream="Events",
        tenant_id="t",
        data_until=timezone.now() - dt.timedelta(minutes=12),
    )
    html = admin_client.get(reverse("collector:health_status")).content.decode()
    counts = dict(
        re.findall(r"</span> (\w+)</div>\s*<div class=\"fs-4 fw-semibold tabular\">(\d+)", html)
    )
    assert counts["Collecting"] == "1" and counts["Error"] == "1" and counts["Pending"] == "0"
    assert "12 min" in html
    assert "never" in html


# --- fields ------------------------------------------------------------------------------------
def test_fields_page_add_disable_enable_and_refused_delete(admin_client, make_source):
    make_source("User", fields={"team": "x"})
    response = admin_client.post(reverse("collector:field_add"), {"name": "team"})
    assert response.status_code == 302
    field = Field.objects.get(name="team")
    html = admin_client.get(reverse("collector:fields")).content.decode()
    assert "199" in html and "of 200 custom fields left" in html
    row = re.search(r"<td class=\"fw-semibold\">team</td>.*?</tr>", html, re.S).group(0)
    assert re.findall(r'tabular">(\d+)<', row) == ["0", "1"]
    admin_client.post(reverse("collector:field_disable", args=[field.pk]))
    field.refresh_from_db()
    assert not field.enabled
    admin_client.post(reverse("collector:field_enable", args=[field.pk]))
    field.refresh_from_db()
    assert field.enabled
    response = admin_client.post(reverse("collector:field_delete", args=[field.pk]), follow=True)
    assert Field.objects.filter(pk=field.pk).exists()
    assert "still used by source" in response.content.decode()
    duplicate = admin_client.post(reverse("collector:field_add"), {"name": "TEAM"})
    assert "already exists" in duplicate.content.decode()


def test_dropped_fields_can_become_fields(admin_client, db):
    dropped = DroppedField.objects.create(name="site", count=42)
    bad = DroppedField.objects.create(name="bad-name", count=1)
    html = admin_client.get(reverse("collector:dropped_fields")).content.decode()
    assert "site" in html and "42" in html and "Create field" in html
    admin_client.post(reverse("collector:dropped_create", args=[dropped.pk]))
    assert Field.objects.filter(name="site", enabled=True).exists()
    response = admin_client.post(reverse("collector:dropped_create", args=[bad.pk]), follow=True)
    assert "cannot be a field" in response.content.decode()
    assert "now in the schema" in response.content.decode()


# --- access keys -------------------------------------------------------------------------------
def test_access_key_is_shown_once_and_can_be_revoked(admin_client, db):
    response = admin_client.post(reverse("collector:access_key_create"), {"label": "terraform"})
    html = response.content.decode()
    row = AccessKey.objects.get(label="terraform")
    plain = re.search(r'data-copy-source="access-key">([^<]+)<', html).group(1)
    assert row.access_id in html and len(plain) > 30
    assert "no-store" in response["Cache-Control"]
    listing = admin_client.get(reverse("collector:access_keys")).content.decode()
    assert row.access_id in listing and plain not in listing and row.key_digest not in listing
    admin_client.post(reverse("collector:access_key_revoke", args=[row.pk]))
    row.refresh_from_db()
    assert row.revoked_at is not None


# --- secrets and escaping ----------------------------------------------------------------------
def test_no_secret_in_any_page(both, world):
    encrypted = world["source"].secret_encrypted
    for client in both:
        for name, url in page_urls(world).items():
            body = client.get(url).content.decode()
            assert SECRET not in body, name
            assert encrypted not in body, name


HOSTILE = "<script>alert('x')</script>\"><img src=x onerror=alert(1)>"


def test_hostile_names_are_escaped_everywhere_including_tooltips(
    admin_client, make_collector, make_source
):
    collector = make_collector(HOSTILE, category=HOSTILE)
    source = make_source(HOSTILE, collector=collector, category=HOSTILE, state_detail=HOSTILE)
    make_event(source, severity="Error", details={"error": HOSTILE, "description": HOSTILE})
    make_message(1, source=source, source_name=HOSTILE, raw=json.dumps({"id": "v-1", "x": HOSTILE}))
    Field.objects.create(name="safe")
    DroppedField.objects.create(name=HOSTILE, count=1)
    pages = [
        reverse("collector:collection"),
        reverse("collector:source_detail", args=[source.pk]),
        reverse("collector:source_json", args=[source.pk]),
        reverse("collector:health_events"),
        reverse("collector:health_status"),
        reverse("collector:dropped_fields"),
        reverse("collector:log_search") + "?q=alert",
        reverse("collector:source_edit", args=[source.pk]),
        reverse("collector:collector_delete", args=[collector.pk]),
    ]
    for url in pages:
        html = admin_client.get(url).content.decode()
        assert "<script>alert" not in html, url
        assert "<img src=x" not in html, url
        assert "&lt;script&gt;" in html or "&lt;script&gt;" in html.replace("&#x27;", "'"), url
    html = admin_client.get(reverse("collector:collection")).content.decode()
    title = re.search(rf'data-status-for="{source.pk}"[^>]*title="([^"]*)"', html).group(1)
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;&quot;&gt;&lt;img" in title


# --- query counts ------------------------------------------------------------------------------
def count_queries(client, url):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as context:
        assert client.get(url).status_code == 200
    return len(context.captured_queries)


def fill_collection(make_collector, make_source, n):
    for i in range(n):
        collector = make_collector(f"C{n}-{i}")
        source = make_source(f"S{n}-{i}", collector=collector, state=SourceState.COLLECTING)
        make_event(source)
        IngestBucket.objects.create(source=source, stream="Alerts", start=timezone.now(), items=i)


@pytest.mark.parametrize("who", [0, 1], ids=["admin", "viewer"])
def test_collection_query_count_is_fixed(
    both, make_collector, make_source, django_assert_max_num_queries, who
):
    client = both[who]
    url = reverse("collector:collection")
    fill_collection(make_collector, make_source, 3)
    small = count_queries(client, url)
    fill_collection(make_collector, make_source, 27)
    assert Source.objects.count() == 30
    with django_assert_max_num_queries(small):
        client.get(url)
    assert count_queries(client, url) == small
    assert count_queries(client, url + "?q=S*") == small


def test_health_events_query_count_is_fixed(
    admin_client, make_source, django_assert_max_num_queries
):
    url = reverse("collector:health_events")
    source = make_source("A")
    for _ in range(3):
        make_event(source)
    small = count_queries(admin_client, url)
    for _ in range(27):
        make_event(source)
    with django_assert_max_num_queries(small):
        html = admin_client.get(url).content.decode()
    assert html.count("<div>Timed out.</div>") == 30


def test_status_json_query_count_is_fixed(admin_client, make_source, django_assert_max_num_queries):
    sources = [make_source(f"S{i}") for i in range(30)]
    few = ",".join(str(s.pk) for s in sources[:3])
    many = ",".join(str(s.pk) for s in sources)
    small = count_queries(admin_client, reverse("collector:status_json") + f"?ids={few}")
    with django_assert_max_num_queries(small):
        data = admin_client.get(reverse("collector:status_json") + f"?ids={many}").json()
    assert len(data["sources"]) == 30


def test_tooltip_says_a_repeated_sentence_once(admin_client, make_source):
    sentence = "Sophos Central rejected the client secret. Edit the source."
    source = make_source("Twice", state=SourceState.ERROR, state_detail=sentence)
    make_event(source, severity="Error", details={"error": sentence})
    data = admin_client.get(reverse("collector:status_json") + f"?ids={source.pk}").json()
    tooltip = data["sources"][str(source.pk)]["tooltip"]
    assert tooltip == f"Error: {sentence}"
    html = admin_client.get(reverse("collector:collection")).content.decode()
    assert html.count(sentence) == 1


def test_source_page_lists_the_most_behind_checkpoints_in_fixed_queries(
    admin_client, make_source, django_assert_max_num_queries
):
    from collector.models import Tenant

    source = make_source("Partner", identity_type="partner")
    url = reverse("collector:source_detail", args=[source.pk])
    now = timezone.now()

    def add_tenants(start, stop):
        for i in range(start, stop):
            Tenant.objects.create(source=source, tenant_id=f"t{i:03d}", name=f"Tenant {i:03d}",
                                  api_host="https://api")  # fmt: skip
            for stream in ("Alerts", "Events"):
                Checkpoint.objects.create(source=source, stream=stream, tenant_id=f"t{i:03d}",
                                          data_until=now - dt.timedelta(minutes=i), items_total=1)  # fmt: skip

    add_tenants(0, 3)
    small = count_queries(admin_client, url)
    add_tenants(3, 30)
    with django_assert_max_num_queries(small):
        html = admin_client.get(url).content.decode()
    assert "(the 50 most behind of 60)" in html
    assert "20 of 30 shown" in html
    assert "Tenant 029" in html, "the most behind tenant is listed, named"
    assert ">60</div>" in html, "the total counts every checkpoint"
