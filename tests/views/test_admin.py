"""The Django admin: every model registered; no page ever shows a secret."""

import pytest
from django.apps import apps
from django.contrib import admin
from django.urls import reverse

from collector import auth, engine
from collector.choices import Severity
from collector.models import Message

SECRET = "admin-page-secret-value-991"


def test_every_model_is_registered():
    for model in apps.get_app_config("collector").get_models():
        assert admin.site.is_registered(model), model


@pytest.fixture
def populated(make_source, admin_user):
    source = make_source("East", secret=SECRET)
    engine.open_event(source, event_name="ThirdPartyGenericError", severity=Severity.WARNING,
                      details={"error": "boom"})  # fmt: skip
    auth.create_access_key(user=admin_user, label="ci")
    return source


def test_no_admin_page_shows_the_secret(admin_client, populated):
    source = populated
    token = source.secret_encrypted
    pages = [reverse("admin:index")]
    for model in apps.get_app_config("collector").get_models():
        info = (model._meta.app_label, model._meta.model_name)
        pages.append(reverse("admin:{}_{}_changelist".format(*info)))
        first = model.objects.first()
        if first is not None:
            pages.append(reverse("admin:{}_{}_change".format(*info), args=[first.pk]))
    for url in pages:
        response = admin_client.get(url)
        assert response.status_code == 200, url
        html = response.content.decode()
        assert SECRET not in html, url
        assert token not in html, url
    assert Message.objects.exists()  # the health event wrote a log record page too


def test_source_admin_is_read_only_and_links_to_the_product(admin_client, populated):
    """Config, kind, collector and secret change only through the product's form and service."""
    source = populated
    url = reverse("admin:collector_source_change", args=[source.pk])
    html = admin_client.get(url).content.decode()
    assert reverse("collector:source_detail", args=[source.pk]) in html
    assert "********" in html and 'name="config"' not in html and 'name="kind"' not in html
    before = (source.config, source.kind, source.collector_id, source.secret_encrypted)
    answer = admin_client.post(url, {"name": "Renamed", "kind": "Other", "config": "{}"})
    assert answer.status_code == 403
    source.refresh_from_db()
    assert (source.config, source.kind, source.collector_id, source.secret_encrypted) == before
    assert source.name == "East"
    assert admin_client.post(reverse("admin:collector_source_delete", args=[source.pk]),
                             {"post": "yes"}).status_code == 403  # fmt: skip


@pytest.fixture
def key_clerk(db):
    """A staff user whose only permission is change_accesskey (the probe's escalation path)."""
    from django.contrib.auth.models import Permission, User

    user = User.objects.create_user("clerk", password="clerk-pass-123", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(codename="change_accesskey"))
    return user


def test_a_key_cannot_be_moved_to_another_user_or_unrevoked(client, key_clerk, admin_user):
    from django.utils import timezone

    from collector.models import AccessKey

    key = auth.create_access_key(user=key_clerk, label="mine")[0]
    AccessKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
    client.force_login(key_clerk)
    url = reverse("admin:collector_accesskey_change", args=[key.pk])
    assert client.get(url).status_code == 200  # it may look at its keys
    answer = client.post(url, {"user": admin_user.pk, "label": "mine", "revoked_at_0": "",
                               "revoked_at_1": ""})  # fmt: skip
    assert answer.status_code == 403
    key.refresh_from_db()
    assert key.user_id == key_clerk.pk and key.revoked_at is not None


def test_schema_and_collectors_are_not_written_in_the_admin(admin_client, populated):
    collector = populated.collector
    url = reverse("admin:collector_collector_change", args=[collector.pk])
    assert (
        reverse("collector:collector_edit", args=[collector.pk])
        in admin_client.get(url).content.decode()
    )
    assert admin_client.post(url, {"name": "X", "time_zone": "UTC"}).status_code == 403
    assert admin_client.get(reverse("admin:collector_field_add")).status_code == 403


def test_messages_and_health_events_are_read_only(admin_client, populated):
    for name in ("message", "healthevent"):
        assert admin_client.get(reverse(f"admin:collector_{name}_add")).status_code == 403
