"""``POST /api/v1/collectors/{cid}/sources/{sid}/checkpoint/reset`` in the Collector Management
dialect: like ``action/restart`` it needs *change*, answers the source, refuses a source being
deleted with 409, and names the key of bad input in a 400."""

import datetime as dt

import pytest
from django.utils import timezone

from collector import engine
from collector.choices import SourceState
from collector.models import Checkpoint, Source, Tenant
from tests.api.test_api import legacy_error, source_path

OLD_EVENTS = {"cursor": "VjJfQ1VSU09SfGJyb2tlbg==", "position": "2026-01-01T00:00:00.000Z"}


@pytest.fixture
def source(make_source):
    source = make_source(state=SourceState.COLLECTING)
    Tenant.objects.create(source=source, tenant_id="t-1", name="Acme", api_host="https://x")
    Tenant.objects.create(source=source, tenant_id="t-2", name="Bolt", api_host="https://y")
    Checkpoint.objects.create(source=source, stream="Events", tenant_id="t-1", position=OLD_EVENTS)
    return source


def reset_path(source) -> str:
    return source_path(source) + "/checkpoint/reset"


def iso(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def a_while_ago() -> dt.datetime:
    return (timezone.now() - dt.timedelta(hours=2)).replace(microsecond=0)


def positions(source):
    return sorted(
        Checkpoint.objects.filter(source=source).values_list("stream", "tenant_id", "position")
    )


def test_resets_every_stream_of_every_tenant_and_answers_the_source(
    admin_api, source, enqueued, django_capture_on_commit_callbacks
):
    moment = a_while_ago()
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_api.post(reset_path(source), {"stream": None, "resumeFrom": iso(moment)})
    assert response.status_code == 200, response.content
    body = response.json()["source"]
    assert body["id"] == source.pk and body["state"]["state"] in ("Pending", "Started")
    assert body["config"]["clientSecret"] == "********" and response["ETag"]
    assert (engine.RUN_SOURCE, source.pk) in enqueued
    at = moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    assert positions(source) == [
        ("Alerts", "t-1", {"raisedAt": at, "seen": {}}),
        ("Alerts", "t-2", {"raisedAt": at, "seen": {}}),
        # Endpoints forget what they looked up: the re-read alerts queue their endpoints again.
        ("Endpoints", "t-1", {"pending": [], "seen": {}}),
        ("Endpoints", "t-2", {"pending": [], "seen": {}}),
        ("Events", "t-1", {"cursor": None, "position": at}),
        ("Events", "t-2", {"cursor": None, "position": at}),
    ]
    assert Source.objects.get(pk=source.pk).config_version == source.config_version + 1


def test_one_stream_with_an_offset(admin_api, source):
    moment = a_while_ago()
    stamp = moment.astimezone(dt.timezone(dt.timedelta(hours=2))).isoformat()
    response = admin_api.post(reset_path(source), {"stream": "Events", "resumeFrom": stamp})
    assert response.status_code == 200, response.content
    events = Checkpoint.objects.get(source=source, stream="Events", tenant_id="t-1")
    assert events.data_until == moment
    assert not Checkpoint.objects.filter(source=source, stream="Alerts").exists()


@pytest.mark.parametrize(
    "body, words",
    [
        ({"stream": None}, "body.resumeFrom is required"),
        ({"resumeFrom": 1764500000}, "body.resumeFrom must be a string"),
        ({"stream": None, "resumeFrom": "soon"}, "body.resumeFrom: Enter a valid date/time."),
        ({"stream": 3, "resumeFrom": "2026-01-01T00:00:00Z"}, "body.stream must be one of"),
        ({"stream": "Logs", "resumeFrom": iso(a_while_ago())},
         "body.stream: Select a valid choice. Logs is not one of the available choices."),
        ({"stream": None, "resumeFrom": iso(timezone.now() + dt.timedelta(days=1))},
         "body.resumeFrom: "),
        ({"stream": None, "resumeFrom": iso(timezone.now() - dt.timedelta(hours=30))},
         "body.resumeFrom: Sophos Central serves the last 24 hours only"),
        ({"stream": None, "resumeFrom": iso(a_while_ago()), "tenant": "t-1"},
         "Unknown key body.tenant"),
    ],
)  # fmt: skip
def test_bad_input_is_400_naming_the_key(admin_api, source, body, words):
    before = positions(source), Source.objects.get(pk=source.pk).config_version
    message = legacy_error(admin_api.post(reset_path(source), body), 400, "invalid.request")
    assert words in message
    assert (positions(source), Source.objects.get(pk=source.pk).config_version) == before


def test_a_future_time_says_so(admin_api, source):
    later = iso(timezone.now() + dt.timedelta(days=1))
    response = admin_api.post(reset_path(source), {"stream": None, "resumeFrom": later})
    assert "is in the future" in legacy_error(response, 400, "invalid.request")


def test_no_body_is_400(admin_api, source):
    legacy_error(admin_api.post(reset_path(source)), 400, "invalid.request")


def test_view_only_key_is_403_and_nothing_changes(viewer_api, source):
    before = positions(source)
    response = viewer_api.post(
        reset_path(source), {"stream": None, "resumeFrom": iso(a_while_ago())}
    )
    legacy_error(response, 403, "forbidden")
    assert positions(source) == before
    assert Source.objects.get(pk=source.pk).state == SourceState.COLLECTING


def test_unknown_ids_are_404(admin_api, source):
    body = {"stream": None, "resumeFrom": iso(a_while_ago())}
    cid, sid = source.collector_id, source.pk
    message = legacy_error(
        admin_api.post(f"/collectors/{cid}/sources/{sid + 100}/checkpoint/reset", body),
        404,
        "notfound",
    )
    assert f"Source {sid + 100} does not exist" in message
    legacy_error(
        admin_api.post(f"/collectors/{cid + 100}/sources/{sid}/checkpoint/reset", body),
        404,
        "notfound",
    )


def test_a_source_being_deleted_is_409(admin_api, source):
    engine.request_stop(source.pk)
    before = positions(source)
    response = admin_api.post(
        reset_path(source), {"stream": None, "resumeFrom": iso(a_while_ago())}
    )
    assert "being deleted" in legacy_error(response, 409, "conflict")
    assert positions(source) == before
    assert Source.objects.get(pk=source.pk).state == SourceState.STOPPING


def test_get_is_405(admin_api, source):
    legacy_error(admin_api.get(reset_path(source)), 405, "method.unsupported")
