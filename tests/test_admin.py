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


def test_source_admin_keeps_secret_when_left_blank(admin_client, populated):
    source = populated
    url = reverse("admin:collector_source_change", args=[source.pk])
    html = admin_client.get(url).content.decode()
    assert 'name="new_client_secret"' in html and "********" in html


def test_messages_and_health_events_are_read_only(admin_client, populated):
    for name in ("message", "healthevent"):
        assert admin_client.get(reverse(f"admin:collector_{name}_add")).status_code == 403
