"""The Destinations pages: the list with status, backlog and delivered-last-hour, Add and Edit with
Send test message, Pause/Resume/Test actions, Delete, and what the source pages, the Health Events
and the health status pages show about destinations.

Every page works for any registered kind; the tests register only the file kind
(tests.support.file_destination), whose config is ``{"path": ...}`` and whose secret is ``token``.
"""

import datetime as dt
import re
from html import unescape
from pathlib import Path

import pytest
from django.contrib.auth.models import Permission, User
from django.contrib.messages import get_messages
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from collector import status
from collector.buckets import BUCKET, bucket_floor
from collector.choices import DestinationState, Health, Severity
from collector.models import DeliveryBucket, Destination, HealthEvent, Message
from collector.status import describe_destination
from tests.support.file_destination import PATH, delivered
from tests.support.messages import make_message, make_messages

TOKEN = "tok-SECRET-value-123"


@pytest.fixture(autouse=True)
def file_kind_only(settings, queued):
    """Only the file kind is installed; no task reaches a broker."""
    settings.DESTINATION_KINDS = [PATH]
    return queued


@pytest.fixture
def out(tmp_path) -> Path:
    return tmp_path / "delivered.ndjson"


@pytest.fixture
def make_destination(db, tmp_path):
    def make(name="SOC file", *, token=TOKEN, path=None, **kwargs):
        kwargs.setdefault("kind", "TestFile")
        kwargs.setdefault("state", DestinationState.IDLE)
        path = path or str(tmp_path / f"{name.replace(' ', '-')}.ndjson")
        destination = Destination(name=name, config={"path": path}, **kwargs)
        if token:
            destination.set_secret(token)
        destination.save()
        return destination

    return make


@pytest.fixture
def destination(make_destination):
    return make_destination()


def flashed(response) -> list[str]:
    return [str(m) for m in get_messages(response.wsgi_request)]


def form_data(file, **overrides) -> dict:
    data = {
        "name": "SOC file",
        "description": "to the SOC",
        "route": "_sourceCategory=sophos/*",
        "start_from": "new",
        "path": str(file),
        "token": TOKEN,
    }
    data.update(overrides)
    return {key: value for key, value in data.items() if value is not None}


def row_of(html: str, destination) -> str:
    """The list row of one destination."""
    match = re.search(
        rf'<tr data-destination-row="{destination.pk}">(.*?)</tr>', html, flags=re.DOTALL
    )
    assert match, f"no row for {destination.name}"
    return match.group(1)


def text_of(html: str) -> str:
    return " ".join(unescape(re.sub(r"<[^>]+>", " ", html)).split())


def inline_text(html: str) -> str:
    """The text of inline markup (links inside a sentence): tags vanish without a space."""
    return " ".join(unescape(re.sub(r"<[^>]+>", "", html)).split())


def urls(destination) -> dict[str, str]:
    return {
        "list": reverse("collector:destinations"),
        "kinds": reverse("collector:destination_kinds"),
        "add": reverse("collector:destination_add", args=["testfile"]),
        "detail": reverse("collector:destination_detail", args=[destination.pk]),
        "edit": reverse("collector:destination_edit", args=[destination.pk]),
        "delete": reverse("collector:destination_delete", args=[destination.pk]),
    }


def snapshot(destination):
    row = Destination.objects.filter(pk=destination.pk).first()
    return row and (row.name, row.paused, row.route, row.config, row.secret_encrypted)


# --- who may ----------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login_everywhere_and_nothing_changes(client, destination, out):
    before = snapshot(destination)
    for url in urls(destination).values():
        response = client.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    posts = [
        (urls(destination)["add"], form_data(out, name="Other")),
        (urls(destination)["edit"], form_data(out)),
        (urls(destination)["delete"], {}),
        (reverse("collector:destination_test_new", args=["testfile"]), form_data(out)),
    ] + [
        (reverse("collector:destination_action", args=[destination.pk, action]), {})
        for action in ("pause", "resume", "test")
    ]
    for url, data in posts:
        response = client.post(url, data)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login"))
    assert snapshot(destination) == before
    assert Destination.objects.count() == 1 and not out.exists()


def test_view_only_user_sees_the_list_and_the_page_but_may_change_nothing(
    viewer_client, destination, out
):
    for name in ("list", "detail"):
        page = viewer_client.get(urls(destination)[name])
        assert page.status_code == 200
        html = page.content.decode()
        assert destination.name in html
        assert urls(destination)["edit"] not in html and urls(destination)["kinds"] not in html
        assert "Send test message" not in html and urls(destination)["delete"] not in html
    for name in ("kinds", "add", "edit", "delete"):
        assert viewer_client.get(urls(destination)[name]).status_code == 403
    before = snapshot(destination)
    assert viewer_client.post(urls(destination)["add"], form_data(out, name="X")).status_code == 403
    assert viewer_client.post(urls(destination)["edit"], form_data(out)).status_code == 403
    assert viewer_client.post(urls(destination)["delete"]).status_code == 403
    test_new = reverse("collector:destination_test_new", args=["testfile"])
    assert viewer_client.post(test_new, form_data(out)).status_code == 403
    for action in ("pause", "resume", "test"):
        url = reverse("collector:destination_action", args=[destination.pk, action])
        assert viewer_client.post(url).status_code == 403
    assert snapshot(destination) == before
    assert Destination.objects.count() == 1 and not out.exists()


def test_admin_sees_every_action_and_the_nav_item(admin_client, destination):
    html = admin_client.get(urls(destination)["list"]).content.decode()
    assert urls(destination)["edit"] in html and urls(destination)["kinds"] in html
    assert urls(destination)["delete"] in html and "Send test message" in html
    assert reverse("collector:destination_action", args=[destination.pk, "pause"]) in html
    assert 'aria-current="page"' in html and "#icon-send" in html
    assert re.search(r'class="nav-link active"[^>]*>.*?Destinations</a>', html, flags=re.DOTALL)


def test_a_user_without_the_view_permission_is_refused_and_has_no_nav_item(db, destination):
    user = User.objects.create_user("nobody", password="nobody-pass-123")
    user.user_permissions.set(Permission.objects.filter(codename="view_source"))
    client = Client()
    client.force_login(user)
    assert client.get(urls(destination)["list"]).status_code == 403
    assert client.get(urls(destination)["detail"]).status_code == 403
    html = client.get(reverse("collector:health_status")).content.decode()
    assert reverse("collector:destinations") not in html
    assert "destinations-health" not in html


def test_unknown_kinds_and_actions_are_404_not_500(admin_client, destination, out):
    assert admin_client.get(reverse("collector:destination_add", args=["nope"])).status_code == 404
    test_new = reverse("collector:destination_test_new", args=["nope"])
    assert admin_client.post(test_new, form_data(out)).status_code == 404
    bogus = reverse("collector:destination_action", args=[destination.pk, "explode"])
    assert admin_client.post(bogus).status_code == 404
    assert admin_client.get(reverse("collector:destination_edit", args=[999999])).status_code == 404
    # A destination whose kind is no longer installed still lists; its form is a 404.
    Destination.objects.filter(pk=destination.pk).update(kind="Gone")
    page = admin_client.get(urls(destination)["list"])
    assert page.status_code == 200 and "Gone" in row_of(page.content.decode(), destination)
    assert admin_client.get(urls(destination)["detail"]).status_code == 200
    assert admin_client.get(urls(destination)["edit"]).status_code == 404


# --- the tile picker and Add ------------------------------------------------------------------
def test_the_tile_picker_lists_the_registered_kinds(admin_client):
    html = admin_client.get(reverse("collector:destination_kinds")).content.decode()
    assert reverse("collector:destination_add", args=["testfile"]) in html
    assert "Test file" in html


def test_the_add_form_shows_the_shared_fields_the_route_keys_and_the_kind_fieldset(admin_client):
    html = admin_client.get(
        reverse("collector:destination_add", args=["testfile"])
    ).content.decode()
    for name in ("name", "description", "route", "siem", "start_from", "path", "token"):
        assert f'name="{name}"' in html, name
    assert "Receiver" in html and "Send test message" in html
    test_url = reverse("collector:destination_test_new", args=["testfile"])
    assert f'data-test-connection="{test_url}"' in html
    keys = text_of(re.search(r'<div class="form-text mt-n2 route-keys">.*?</div>', html).group(0))
    for key in ("_sourceCategory", "_source", "_collector", "_sourceName", "_siemEventID"):
        assert key in keys
    assert "<script>" not in html.split("</main>")[0]  # no inline script (CSP)


def test_add_stores_the_destination_from_new_data_on(admin_client, out):
    make_messages(3)
    newest = Message.objects.order_by("-id").first().pk
    response = admin_client.post(
        reverse("collector:destination_add", args=["testfile"]), form_data(out, siem="on")
    )
    destination = Destination.objects.get()
    assert response.status_code == 302
    assert response["Location"] == reverse("collector:destination_detail", args=[destination.pk])
    assert flashed(response) == ["Destination SOC file saved; its first delivery starts now."]
    assert destination.kind == "TestFile" and destination.config == {"path": str(out)}
    assert destination.route == "_sourceCategory=sophos/*" and destination.siem
    assert destination.get_secret().reveal() == TOKEN
    assert destination.cursor == newest


def test_add_from_all_data_starts_at_the_beginning(admin_client, out):
    make_messages(3)
    admin_client.post(
        reverse("collector:destination_add", args=["testfile"]), form_data(out, start_from="all")
    )
    assert Destination.objects.get().cursor == 0


def test_add_refuses_a_bad_route_with_a_field_message(admin_client, out):
    response = admin_client.post(
        reverse("collector:destination_add", args=["testfile"]), form_data(out, route="foo=bar")
    )
    assert response.status_code == 200
    assert response.context["form"].errors["route"][0].startswith("Unknown key 'foo' in the route")
    assert "Unknown key &#x27;foo&#x27; in the route" in response.content.decode()
    assert not Destination.objects.exists()


def test_add_refuses_a_name_that_differs_only_by_case(admin_client, destination, out):
    response = admin_client.post(
        reverse("collector:destination_add", args=["testfile"]), form_data(out, name="soc FILE")
    )
    assert response.status_code == 200
    assert response.context["form"].errors["name"] == [
        "A destination named 'SOC file' already exists."
    ]
    assert Destination.objects.count() == 1


def test_add_with_a_missing_path_is_a_field_error(admin_client, out):
    response = admin_client.post(
        reverse("collector:destination_add", args=["testfile"]), form_data(out, path="")
    )
    assert response.status_code == 200
    assert response.context["form"].errors["path"] == ["This field is required."]
    assert not Destination.objects.exists()


# --- Edit -------------------------------------------------------------------------------------
def test_edit_never_shows_the_secret_and_keeps_it_when_left_blank(admin_client, destination, out):
    page = admin_client.get(urls(destination)["edit"])
    html = page.content.decode()
    assert TOKEN not in html and "Leave blank to keep the current secret" in html
    assert 'name="start_from"' not in html  # only on Add
    test_url = reverse("collector:destination_action", args=[destination.pk, "test"])
    assert f'data-test-connection="{test_url}"' in html
    response = admin_client.post(
        urls(destination)["edit"], form_data(out, token="", route="_collector=EU", name="SOC 2")
    )
    assert response.status_code == 302
    assert flashed(response) == ["Destination SOC 2 saved; it starts again."]
    destination.refresh_from_db()
    assert destination.name == "SOC 2" and destination.route == "_collector=EU"
    assert destination.config == {"path": str(out)}
    assert destination.get_secret().reveal() == TOKEN
    assert destination.state == DestinationState.PENDING


def test_edit_refuses_a_bad_route_and_changes_nothing(admin_client, destination, out):
    before = snapshot(destination)
    response = admin_client.post(urls(destination)["edit"], form_data(out, route="team=blue"))
    assert response.status_code == 200 and "route" in response.context["form"].errors
    assert snapshot(destination) == before


# --- Send test message ------------------------------------------------------------------------
def test_send_test_message_from_the_add_form_answers_in_plain_words(admin_client, out):
    url = reverse("collector:destination_test_new", args=["testfile"])
    response = admin_client.post(url, form_data(out))
    assert response.status_code == 200 and response["Cache-Control"] == "no-store"
    text = text_of(response.content.decode())
    assert 'data-test-outcome="ok"' in response.content.decode()
    assert "Sent a test message by admin. The receiver answered: 1 lines written." in text
    (line,) = delivered(out)
    assert line["test"] is True and "Sumo Sources test message" in line["raw"]
    assert not Destination.objects.exists()  # nothing is saved


def test_send_test_message_says_what_a_failing_receiver_answered(admin_client, out):
    out.with_suffix(".fail").write_text("503")
    url = reverse("collector:destination_test_new", args=["testfile"])
    html = admin_client.post(url, form_data(out)).content.decode()
    assert 'data-test-outcome="failed"' in html
    assert "The receiver answered 503. It retries by itself." in text_of(html)
    assert delivered(out) == []


def test_send_test_message_asks_for_the_receiver_settings_first(admin_client, out):
    url = reverse("collector:destination_test_new", args=["testfile"])
    # A taken name or a bad route does not stop a test; a missing path does.
    html = admin_client.post(url, form_data(out, path="", route="foo=bar")).content.decode()
    assert 'data-test-outcome="incomplete"' in html
    assert "File: This field is required." in text_of(html)
    ok = admin_client.post(url, form_data(out, route="foo=bar")).content.decode()
    assert 'data-test-outcome="ok"' in ok


def test_send_test_message_on_edit_uses_the_stored_secret_when_left_blank(
    admin_client, make_destination, out
):
    destination = make_destination(token="wrong", path=str(out))
    url = reverse("collector:destination_action", args=[destination.pk, "test"])
    html = admin_client.post(url, form_data(out, token="")).content.decode()
    assert "The receiver answered 401. Edit the destination's token." in text_of(html)
    html = admin_client.post(url, form_data(out, token="right")).content.decode()
    assert "The receiver answered: 1 lines written." in text_of(html)
    destination.refresh_from_db()
    assert destination.get_secret().reveal() == "wrong"  # nothing is saved
    assert len(delivered(out)) == 1


def test_the_test_action_without_a_form_tests_the_stored_settings(
    admin_client, make_destination, out
):
    destination = make_destination(path=str(out))
    url = reverse("collector:destination_action", args=[destination.pk, "test"])
    response = admin_client.post(url, {"next": reverse("collector:destinations")})
    assert response.status_code == 302 and response["Location"] == reverse("collector:destinations")
    assert flashed(response) == [
        "Test message to SOC file: Sent a test message by admin. The receiver answered: "
        "1 lines written."
    ]
    out.with_suffix(".fail").write_text("503")
    response = admin_client.post(url, {"next": "https://evil.example/"})
    assert response["Location"] == reverse("collector:destination_detail", args=[destination.pk])
    assert flashed(response)[-1] == (
        "Test message to SOC file failed: The receiver answered 503. It retries by itself."
    )


# --- Pause, Resume, Delete --------------------------------------------------------------------
def test_pause_and_resume(admin_client, destination):
    pause = reverse("collector:destination_action", args=[destination.pk, "pause"])
    response = admin_client.post(pause)
    assert flashed(response) == ["Destination SOC file is paused; its backlog is kept."]
    destination.refresh_from_db()
    assert destination.paused and destination.state == DestinationState.PAUSED
    html = admin_client.get(reverse("collector:destinations")).content.decode()
    row = row_of(html, destination)
    assert 'data-health="Paused"' in row and "#icon-pause-circle" in row
    assert reverse("collector:destination_action", args=[destination.pk, "resume"]) in row
    resume = reverse("collector:destination_action", args=[destination.pk, "resume"])
    response = admin_client.post(resume)
    assert flashed(response) == ["Destination SOC file resumes delivering."]
    destination.refresh_from_db()
    assert not destination.paused and destination.state == DestinationState.PENDING
    assert admin_client.get(pause).status_code == 405  # POST only


def test_delete_asks_first_then_deletes(admin_client, destination):
    make_messages(4)
    page = admin_client.get(urls(destination)["delete"])
    assert page.status_code == 200
    assert "Its backlog of 4 undelivered messages is not sent" in text_of(page.content.decode())
    assert Destination.objects.filter(pk=destination.pk).exists()
    response = admin_client.post(urls(destination)["delete"])
    assert response.status_code == 302 and response["Location"] == reverse("collector:destinations")
    assert flashed(response)[0].startswith("Destination SOC file deleted.")
    assert not Destination.objects.exists()
    assert Message.objects.count() == 4  # collected data stays


# --- the list: status, route, delivered, backlog ----------------------------------------------
def test_the_list_shows_backlog_and_delivered_in_the_last_hour(admin_client, make_destination):
    make_messages(7, minutes_ago=30)
    ids = list(Message.objects.order_by("id").values_list("id", flat=True))
    behind = make_destination("Behind", cursor=ids[1], route="_sourceCategory=sophos/*")
    elsewhere = make_destination("Elsewhere", cursor=0, route="_sourceCategory=other/*")
    now = bucket_floor(timezone.now())
    DeliveryBucket.objects.create(destination=behind, start=now, messages=30)
    DeliveryBucket.objects.create(destination=behind, start=now - 4 * BUCKET, messages=12)
    DeliveryBucket.objects.create(destination=behind, start=now - dt.timedelta(hours=2), messages=9)
    html = admin_client.get(reverse("collector:destinations")).content.decode()
    row = row_of(html, behind)
    assert re.search(r'class="small tabular delivered-count">42<', row)
    assert re.search(r'class="tabular backlog-count">5<', row)
    assert "oldest 30 min old" in text_of(row)
    assert "<title>0 · 0 · 0 · 0 · 0 · 0 · 0 · 12 · 0 · 0 · 0 · 30</title>" in row
    other = row_of(html, elsewhere)
    assert re.search(r'class="tabular backlog-count">0<', other) and "oldest" not in other
    assert re.search(r'class="small tabular delivered-count">0<', other)


def test_the_backlog_is_capped_so_the_page_stays_fast(admin_client, destination, monkeypatch):
    monkeypatch.setattr(status, "BACKLOG_CAP", 3)
    make_messages(5)
    html = admin_client.get(reverse("collector:destinations")).content.decode()
    assert re.search(r'class="tabular backlog-count">3\+<', row_of(html, destination))


def test_the_list_reads_the_route_in_words(admin_client, make_destination):
    routed = make_destination("Routed", route="_sourceCategory=prod/* _collector=EU", siem=True)
    siem = make_destination("Siem only", siem=True)
    everything = make_destination("Everything")
    html = admin_client.get(reverse("collector:destinations")).content.decode()
    assert '<code class="route text-break">_sourceCategory=prod/* _collector=EU</code>' in row_of(
        html, routed
    )
    assert "and Forward to SIEM sources" in row_of(html, routed)
    assert "Forward to SIEM sources" in text_of(row_of(html, siem))
    assert "All collected data" in text_of(row_of(html, everything))
    assert "Test file" in row_of(html, everything)  # kind.label, then kind.describe()


def test_the_list_costs_a_fixed_number_of_queries_plus_two_per_destination(
    admin_client, make_destination
):
    make_messages(3)
    url = reverse("collector:destinations")

    def add(start, count):
        for n in range(start, start + count):
            destination = make_destination(f"D{n}")
            DeliveryBucket.objects.create(
                destination=destination, start=bucket_floor(timezone.now()), messages=n + 1
            )
            HealthEvent.objects.create(
                event_name="ThirdPartyGenericError", severity=Severity.WARNING,
                resource_type="Destination", resource_id=str(destination.pk),
                resource_name=destination.name, details={"error": "x"},
            )  # fmt: skip

    add(0, 1)
    admin_client.get(url)
    with CaptureQueriesContext(connection) as one:
        assert admin_client.get(url).status_code == 200
    add(1, 4)
    with CaptureQueriesContext(connection) as five:
        html = admin_client.get(url).content.decode()
    assert html.count("data-destination-row=") == 5
    assert len(five.captured_queries) == len(one.captured_queries) + 4 * 2


def test_status_icon_follows_state_and_events(make_destination):
    def health(destination, *events):
        return describe_destination(destination, list(events))

    retrying = HealthEvent(
        event_name="ThirdPartyGenericError", severity=Severity.WARNING,
        details={"error": "The receiver answered 503.", "retrying": True, "attempts": 2,
                 "nextAttemptAt": "2026-12-01T10:00:00.000Z", "description": "It retries."},
    )  # fmt: skip
    failing = HealthEvent(event_name="DataLossError", severity=Severity.ERROR, details={})
    assert health(make_destination("A", state="Pending")).health == Health.PROGRESS
    assert health(make_destination("B", state="Delivering")).health == Health.HEALTHY
    idle = make_destination("C", state="Idle")
    assert health(idle).health == Health.HEALTHY and health(idle).look.icon == "check-circle"
    warned = health(idle, retrying)
    assert warned.health == Health.WARNING and warned.look.icon == "exclamation-triangle"
    assert (
        "Warning: The receiver answered 503. Retrying (attempt 2), next attempt at "
        "2026-12-01T10:00:00.000Z. It retries." in warned.lines
    )
    assert health(idle, failing).health == Health.ERROR
    assert health(make_destination("D", state="Error")).look.icon == "x-octagon"
    paused = health(make_destination("E", state="Paused", paused=True), retrying)
    assert paused.health == Health.PAUSED and paused.look.colour == "secondary"
    assert paused.lines[0] == "Paused: Delivery is paused; the backlog is kept."


def test_user_text_in_tooltips_and_cells_is_escaped(admin_client, make_destination):
    destination = make_destination(
        '<img src=x onerror="alert(1)">',
        description="<b>bold</b>",
        state_detail='<script>alert("detail")</script>',
    )
    HealthEvent.objects.create(
        event_name="ThirdPartyGenericError", severity=Severity.WARNING,
        resource_type="Destination", resource_id=str(destination.pk),
        resource_name=destination.name, details={"error": '<svg onload="x()">', "retrying": True},
    )  # fmt: skip
    for url in (
        reverse("collector:destinations"),
        reverse("collector:destination_detail", args=[destination.pk]),
        reverse("collector:health_status"),
        reverse("collector:health_events"),
    ):
        html = admin_client.get(url).content.decode()
        assert '<img src=x onerror="alert(1)">' not in html, url
        assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html, url
        assert '<script>alert("detail")</script>' not in html
        assert '<svg onload="x()">' not in html
    html = admin_client.get(reverse("collector:destinations")).content.decode()
    title = re.search(r'data-destination-status-for="\d+"[^>]*title="([^"]*)"', html).group(1)
    assert unescape(title).splitlines() == [
        'Idle: <script>alert("detail")</script>',
        'Warning: <svg onload="x()">',
    ]


def test_no_secret_in_any_page(admin_client, viewer_client, make_destination, make_source):
    destination = make_destination(route="_source=*")
    source = make_source()
    pages = [
        *urls(destination).values(),
        reverse("collector:health_status"),
        reverse("collector:health_events"),
        reverse("collector:source_detail", args=[source.pk]),
        reverse("collector:source_edit", args=[source.pk]),
    ]
    for client in (admin_client, viewer_client):
        for url in pages:
            response = client.get(url)
            assert TOKEN not in response.content.decode(), url
    assert (
        destination.secret_encrypted
        not in admin_client.get(urls(destination)["detail"]).content.decode()
    )


def test_the_destination_page_shows_figures_events_and_json(admin_client, destination):
    make_messages(2)
    HealthEvent.objects.create(
        event_name="ThirdPartyConfigError", severity=Severity.ERROR,
        resource_type="Destination", resource_id=str(destination.pk),
        resource_name=destination.name, details={"error": "The receiver answered 401."},
    )  # fmt: skip
    html = admin_client.get(urls(destination)["detail"]).content.decode()
    assert re.search(r'class="stat-value backlog-count">2<', html)
    assert "The receiver answered 401." in html and 'data-health="Error"' in html
    assert "&quot;token&quot;: &quot;********&quot;" in html
    assert "&quot;destinationType&quot;: &quot;TestFile&quot;" in html


# --- other pages ------------------------------------------------------------------------------
NOTE = re.compile(r'<div class="small ms-4 mt-n2 mb-1 siem-destinations">.*?</div>')


def test_source_form_names_the_siem_destinations(admin_client, make_collector, make_destination):
    collector = make_collector()
    add = reverse("collector:source_add", args=[collector.pk, "sophos-central"])
    html = admin_client.get(add).content.decode()
    note = inline_text(NOTE.search(html).group(0))
    assert note == "No SIEM destination exists yet — add one."
    assert f'href="{reverse("collector:destination_kinds")}">add one</a>' in html
    one = make_destination("SOC", siem=True)
    two = make_destination("Archive <2>", siem=True)
    make_destination("Not SIEM")
    html = admin_client.get(add).content.decode()
    note = NOTE.search(html).group(0)
    assert inline_text(note) == "Forward to SIEM sends this source's data to Archive <2>, SOC."
    assert reverse("collector:destination_detail", args=[one.pk]) in note
    assert reverse("collector:destination_detail", args=[two.pk]) in note
    assert "Archive &lt;2&gt;" in note


def test_source_form_offers_no_add_link_without_the_permission(db, make_collector):
    collector = make_collector()
    user = User.objects.create_user("editor", password="editor-pass-123")
    user.user_permissions.set(Permission.objects.filter(codename__in=["add_source", "view_source"]))
    client = Client()
    client.force_login(user)
    html = client.get(reverse("collector:source_add", args=[collector.pk, "sophos-central"]))
    html = html.content.decode()
    assert "No SIEM destination exists yet." in text_of(html)
    assert reverse("collector:destination_kinds") not in html


def test_the_source_page_lists_the_destinations_that_receive_it(
    admin_client, viewer_client, make_source, make_destination
):
    source = make_source(category="sophos/east", forward_to_siem=True)
    make_message(1, source=source)
    make_message(2, source=source)
    make_message(3, source=None, source_name="Other")  # another source's message
    by_category = make_destination("By category", route="_sourceCategory=sophos/*")
    by_stream = make_destination("By stream", route="_sourceName=Alerts")
    siem = make_destination("SIEM", siem=True, cursor=Message.objects.order_by("id")[1].pk)
    make_destination("Elsewhere", route="_collector=Hosted-US")
    siem.last_success_at = timezone.now() - dt.timedelta(minutes=3)
    siem.save()
    for client in (admin_client, viewer_client):
        html = client.get(reverse("collector:source_detail", args=[source.pk])).content.decode()
        card = re.search(
            r'<div class="card border-0 shadow-sm mb-3" id="delivery">.*?</ul>',
            html,
            flags=re.DOTALL,
        ).group(0)
        rows = dict(re.findall(r'data-delivery-row="(\d+)">(.*?)</li>', card, flags=re.DOTALL))
        assert set(rows) == {str(by_category.pk), str(by_stream.pk), str(siem.pk)}
        assert "2 waiting" in text_of(rows[str(by_category.pk)])
        assert "(some messages)" in text_of(rows[str(by_stream.pk)])
        assert "0 waiting" in text_of(rows[str(siem.pk)]) and "3 minutes ago" in text_of(
            rows[str(siem.pk)]
        )
        assert "never" in text_of(rows[str(by_category.pk)])
        assert "data-destination-status-for" in rows[str(siem.pk)]


def test_a_source_no_destination_receives_says_so(admin_client, make_source, make_destination):
    source = make_source(forward_to_siem=False)
    make_destination("SIEM", siem=True)
    html = admin_client.get(reverse("collector:source_detail", args=[source.pk])).content.decode()
    assert "No destination receives this source; turn on Forward to SIEM" in text_of(html)


def test_health_events_list_and_link_destination_events(admin_client, viewer_client, destination):
    HealthEvent.objects.create(
        event_name="ThirdPartyGenericError", severity=Severity.WARNING,
        resource_type="Destination", resource_id=str(destination.pk),
        resource_name=destination.name, subsystem="Delivery", details={"error": "refused"},
    )  # fmt: skip
    HealthEvent.objects.create(
        event_name="ThirdPartyGenericError", severity=Severity.WARNING,
        resource_type="Destination", resource_id="424242",
        resource_name="Deleted one", subsystem="Delivery", details={"error": "gone"},
    )  # fmt: skip
    HealthEvent.objects.create(
        event_name="ThirdPartyConfigError", severity=Severity.ERROR, resource_type="Source",
        resource_id="77", resource_name="Some source", details={"error": "bad"},
    )  # fmt: skip
    url = reverse("collector:health_events")
    for client in (admin_client, viewer_client):
        html = client.get(url, {"type": "Destination"}).content.decode()
        assert '<option value="Destination" selected>Destination</option>' in html
        assert "Some source" not in html and "Deleted one" in html
        link = reverse("collector:destination_detail", args=[destination.pk])
        assert f'<a href="{link}">SOC file</a>' in html
        assert '<a href="/destinations/424242/">' not in html


def test_health_status_includes_destinations(admin_client, viewer_client, make_destination):
    make_messages(3)
    behind = make_destination("Behind", state="Error")
    DeliveryBucket.objects.create(
        destination=behind, start=bucket_floor(timezone.now()), messages=8
    )
    for client in (admin_client, viewer_client):
        html = client.get(reverse("collector:health_status")).content.decode()
        card = html.split('id="destinations-health"')[1]
        row = re.search(
            rf'<tr data-destination-row="{behind.pk}">(.*?)</tr>', card, flags=re.DOTALL
        ).group(1)
        assert 'data-health="Error"' in row
        assert re.search(r"backlog-count\">3<", row)
        assert re.search(r'tabular text-end">8<', row)
    assert Client().get(reverse("collector:health_status")).status_code == 302
