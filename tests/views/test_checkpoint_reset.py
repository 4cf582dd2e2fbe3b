"""Reset checkpoint on the source page: who may, what it changes, and how bad input is refused.

Also the service's guarantees behind it (collector.services.reset_checkpoint): a missing
checkpoint is created, and a worker that was running keeps its old position to itself.
"""

import datetime as dt

import pytest
from django.contrib.messages import get_messages
from django.urls import reverse
from django.utils import timezone

from collector import engine, services
from collector.choices import SourceState
from collector.engine.claims import RunStopped, claim
from collector.engine.ingest import run_metadata
from collector.kinds.base import Page
from collector.kinds.base import Tenant as TenantInfo
from collector.models import Checkpoint, Source, SourceTransition, Tenant

OLD_EVENTS = {"cursor": "VjJfQ1VSU09SfGJyb2tlbg==", "position": "2026-01-01T00:00:00.000Z"}


@pytest.fixture
def source(make_source, queued):
    """A source that has run: one tenant, an events checkpoint, no alerts checkpoint yet."""
    source = make_source(state=SourceState.ERROR)
    Tenant.objects.create(source=source, tenant_id="t-1", name="Acme", api_host="https://x")
    Checkpoint.objects.create(
        source=source, stream="Events", tenant_id="t-1", position=OLD_EVENTS, items_total=40
    )
    return source


def url(source):
    return reverse("collector:source_checkpoint_reset", args=[source.pk])


def local(moment: dt.datetime) -> str:
    """A moment as a ``datetime-local`` input sends it (UTC, minutes)."""
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M")


def an_hour_ago() -> dt.datetime:
    return (timezone.now() - dt.timedelta(hours=1)).replace(second=0, microsecond=0)


def snapshot(source):
    row = Source.objects.get(pk=source.pk)
    checkpoints = sorted(
        Checkpoint.objects.filter(source=source).values_list("stream", "tenant_id", "position")
    )
    return row.state, row.config_version, checkpoints


# --- who may ------------------------------------------------------------------------------------
def test_anonymous_is_sent_to_login_and_nothing_changes(client, source):
    before = snapshot(source)
    response = client.post(url(source), {"stream": "", "resume_from": local(an_hour_ago())})
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))
    assert snapshot(source) == before


def test_view_only_user_is_refused_and_sees_no_form(viewer_client, source):
    before = snapshot(source)
    response = viewer_client.post(url(source), {"stream": "", "resume_from": local(an_hour_ago())})
    assert response.status_code == 403
    assert viewer_client.get(url(source)).status_code == 403
    assert snapshot(source) == before
    page = viewer_client.get(reverse("collector:source_detail", args=[source.pk]))
    assert page.status_code == 200 and url(source) not in page.content.decode()


def test_admin_sees_the_form_on_the_source_page(admin_client, source):
    page = admin_client.get(reverse("collector:source_detail", args=[source.pk])).content.decode()
    assert f'action="{url(source)}"' in page
    assert 'type="datetime-local"' in page and "Resume from (UTC)" in page
    assert '<option value="" selected>All streams</option>' in page
    assert '<option value="Events">Events</option>' in page
    # Defaults to an hour ago (the minute may have turned since the page was built).
    defaults = {local(an_hour_ago()), local(an_hour_ago() - dt.timedelta(minutes=1))}
    assert any(f'value="{value}"' in page for value in defaults)
    assert "csrfmiddlewaretoken" in page


def test_admin_resets_every_stream(admin_client, admin_user, source):
    moment = an_hour_ago()
    version = source.config_version
    response = admin_client.post(url(source), {"stream": "", "resume_from": local(moment)})
    assert response.status_code == 302
    assert response["Location"] == reverse("collector:source_detail", args=[source.pk])
    (message,) = [str(m) for m in get_messages(response.wsgi_request)]
    assert "resumes every stream from" in message and f"{moment:%Y-%m-%d %H:%M} UTC" in message

    source.refresh_from_db()
    assert source.state == SourceState.PENDING
    assert source.config_version == version + 1
    events = Checkpoint.objects.get(source=source, stream="Events", tenant_id="t-1")
    assert events.position == {"cursor": None, "position": f"{moment:%Y-%m-%dT%H:%M}:00.000Z"}
    assert events.data_until == moment and events.items_total == 40
    # The stream that had no checkpoint yet gets one.
    alerts = Checkpoint.objects.get(source=source, stream="Alerts", tenant_id="t-1")
    assert alerts.position == {"raisedAt": f"{moment:%Y-%m-%dT%H:%M}:00.000Z", "seen": {}}
    reason = SourceTransition.objects.filter(source=source).latest("at").reason
    assert "Checkpoint of all streams reset to" in reason and admin_user.username in reason


def test_admin_resets_one_stream_only(admin_client, source):
    moment = an_hour_ago()
    response = admin_client.post(url(source), {"stream": "Alerts", "resume_from": local(moment)})
    assert response.status_code == 302
    assert Checkpoint.objects.get(source=source, stream="Events").position == OLD_EVENTS
    assert Checkpoint.objects.get(source=source, stream="Alerts").data_until == moment


# --- bad input ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "data, field, words",
    [
        ({"stream": "", "resume_from": local(timezone.now() + dt.timedelta(hours=2))},
         "resume_from", "is in the future"),
        ({"stream": "", "resume_from": "yesterday-ish"}, "resume_from", "Enter a valid date/time"),
        ({"stream": "", "resume_from": ""}, "resume_from", "This field is required"),
        ({"stream": "", "resume_from": local(timezone.now() - dt.timedelta(hours=25))},
         "resume_from", "serves the last 24 hours only"),
        ({"stream": "Logs", "resume_from": local(an_hour_ago())}, "stream",
         "Select a valid choice"),
    ],
)  # fmt: skip
def test_bad_input_is_a_field_error_and_changes_nothing(admin_client, source, data, field, words):
    before = snapshot(source)
    response = admin_client.post(url(source), data)
    assert response.status_code == 200
    form = response.context["reset_form"]
    assert any(words in error for error in form.errors[field]), form.errors
    html = response.content.decode()
    assert "is-invalid" in html and words in html.replace("&#x27;", "'")
    assert snapshot(source) == before


def test_a_source_being_deleted_cannot_be_reset(admin_client, source):
    Source.objects.filter(pk=source.pk).update(state=SourceState.STOPPING)
    before = snapshot(source)
    response = admin_client.post(url(source), {"stream": "", "resume_from": local(an_hour_ago())})
    assert response.status_code == 404
    assert snapshot(source) == before


def test_a_source_without_tenants_says_why(admin_client, make_source, queued):
    fresh = make_source(name="Never ran")
    response = admin_client.post(url(fresh), {"stream": "", "resume_from": local(an_hour_ago())})
    assert response.status_code == 200
    errors = " ".join(response.context["reset_form"].non_field_errors())
    assert "has not found its tenants yet" in errors
    assert not Checkpoint.objects.filter(source=fresh).exists()
    assert Source.objects.get(pk=fresh.pk).config_version == fresh.config_version


# --- the service's guarantees -------------------------------------------------------------------
def test_a_running_worker_does_not_overwrite_the_reset_checkpoint(source, admin_user):
    """A run that read its config before the reset stops at its next page, writing nothing."""
    token = claim(Source, source.pk)
    assert token
    running = Source.objects.select_related("collector").get(pk=source.pk)
    moment = an_hour_ago()
    services.reset_checkpoint(source=source, stream="Events", resume_from=moment, user=admin_user)
    page = Page(
        stream="Events",
        tenant=TenantInfo(id="t-1", name="Acme", api_host="https://x"),
        items=[],
        checkpoint={"cursor": "from-the-old-run", "position": "2026-01-02T00:00:00.000Z"},
    )
    with pytest.raises(RunStopped):
        engine.store_page(
            source=running,
            page=page,
            metadata=run_metadata(running),
            unit_model=Source,
            unit_pk=source.pk,
            token=token,
            version=running.config_version,
        )
    position = Checkpoint.objects.get(source=source, stream="Events").position
    assert position == {"cursor": None, "position": f"{moment:%Y-%m-%dT%H:%M}:00.000Z"}


def test_a_kind_that_cannot_reset_is_refused_in_words(source, monkeypatch):
    from collector.kinds.base import SourceKind
    from collector.kinds.sophos_central.kind import SophosCentralKind

    monkeypatch.setattr(SophosCentralKind, "checkpoint_from", SourceKind.checkpoint_from)
    with pytest.raises(services.ServiceError) as info:
        services.reset_checkpoint(source=source, stream=None, resume_from=an_hour_ago())
    assert "cannot resume from a chosen time" in info.value.message
    assert Checkpoint.objects.get(source=source, stream="Events").position == OLD_EVENTS
