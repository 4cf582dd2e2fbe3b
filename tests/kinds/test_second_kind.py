"""A second, genuinely different kind passes the whole path with no change to the framework:
Add Source page, API create and update, a real cluster run storing its items, the Collection
page with its tooltip, and the source page's chart."""

import base64
import json
import re

import pytest
from django.urls import reverse

from collector.auth import create_access_key
from collector.choices import SourceState
from collector.kinds import get_kind
from collector.models import Checkpoint, Message, Source, SourceTransition
from tests.conftest import wait_for
from tests.support.feed_kind import KIND_NAME, PATH, STREAM, FeedServer

KINDS = ["collector.kinds.sophos_central.SophosCentralKind", PATH]
TOKEN = "feed-token-0042"


@pytest.fixture
def feed_kind(settings):
    settings.SOURCE_KINDS = KINDS
    return get_kind(KIND_NAME)


def form_data(url="http://127.0.0.1:9", **extra):
    data = {"name": "Logins", "category": "feeds/logins", "feed_url": url, "access_token": TOKEN,
            "batch_size": "40", "polling_interval": "120"}  # fmt: skip
    data.update(extra)
    return data


def test_the_kind_declares_what_the_framework_needs(feed_kind):
    assert feed_kind.stream_names == (STREAM,)
    assert feed_kind.secret_field == "access_token"
    assert feed_kind.source_streams({"feedUrl": "x"}) == (STREAM,)
    assert not hasattr(feed_kind.form_class, "base_fields") or "supported_apis" not in (
        feed_kind.form_class.base_fields
    )


def test_add_source_page_renders_the_kinds_own_fieldsets(admin_client, make_collector, feed_kind):
    collector = make_collector()
    tiles = admin_client.get(reverse("collector:source_kinds", args=[collector.pk]))
    assert KIND_NAME in tiles.content.decode()
    url = reverse("collector:source_add", args=[collector.pk, "json-feed"])
    html = admin_client.get(url).content.decode()
    for text in ("Feed URL", "Records per request", 'name="access_token"', ">Feed</legend>",
                 ">Reading</legend>", "Polling Interval"):  # fmt: skip
        assert text in html, text
    # Nothing of the other kind leaks in: its fields, its help, its Supported APIs.
    assert "Client ID" not in html and "Supported APIs" not in html
    assert "Where the credentials come from" not in html
    assert reverse("collector:source_test_new", args=[collector.pk, "json-feed"]) in html

    missing = admin_client.post(url, form_data(access_token=""))
    assert missing.status_code == 200
    assert re.search(r'id="error_1_id_access_token"[^>]*><strong>This field is required',
                     missing.content.decode())  # fmt: skip

    response = admin_client.post(url, form_data())
    assert response.status_code == 302
    source = Source.objects.get(name="Logins")
    assert source.kind == KIND_NAME
    assert source.config == {"feedUrl": "http://127.0.0.1:9", "batchSize": 40}
    assert source.get_secret().reveal() == TOKEN and source.polling_interval == 120
    assert source.streams == (STREAM,)

    edit = admin_client.get(reverse("collector:source_edit", args=[source.pk])).content.decode()
    assert 'value="http://127.0.0.1:9"' in edit and TOKEN not in edit


def _api(client, user):
    row, key = create_access_key(user=user, label="feed")
    auth = "Basic " + base64.b64encode(f"{row.access_id}:{key}".encode()).decode()

    def call(method, path, body=None, **headers):
        return client.generic(method, "/api/v1" + path, data=json.dumps(body) if body else "",
                              content_type="application/json",
                              headers={"authorization": auth, **headers})  # fmt: skip

    return call


def test_api_creates_and_updates_a_source_of_the_kind(
    client, admin_user, make_collector, feed_kind, queued
):
    collector = make_collector()
    api = _api(client, admin_user)
    body = {"api.version": "v1", "source": {"schemaRef": {"type": KIND_NAME}, "sourceType": "Universal",
            "config": {"name": "Logins", "feedUrl": "http://127.0.0.1:9", "accessToken": TOKEN,
                       "batchSize": 25, "pollingInterval": 600}}}  # fmt: skip
    created = api("POST", f"/collectors/{collector.pk}/sources", body)
    assert created.status_code == 200, created.content
    answer = created.json()["source"]
    assert answer["schemaRef"] == {"type": KIND_NAME}
    assert answer["config"]["accessToken"] == "********" and TOKEN not in created.content.decode()
    assert answer["config"]["batchSize"] == 25 and "supported_apis" not in answer["config"]

    refused = api("POST", f"/collectors/{collector.pk}/sources",
                  {**body, "source": {**body["source"], "config": {"name": "X", "clientId": "c"}}})  # fmt: skip
    assert refused.status_code == 400 and "clientId" in refused.json()["message"]

    path = f"/collectors/{collector.pk}/sources/{answer['id']}"
    got = api("GET", path)
    changed = got.json()
    changed["source"]["config"]["batchSize"] = 99
    updated = api("PUT", path, changed, **{"if-match": got["ETag"]})
    assert updated.status_code == 200, updated.content
    source = Source.objects.get(pk=answer["id"])
    assert source.config["batchSize"] == 99 and source.get_secret().reveal() == TOKEN


@pytest.mark.cluster
@pytest.mark.slow
def test_a_cluster_collects_the_kind_and_the_pages_show_it(
    admin_client, make_collector, feed_kind, cluster_factory, django_capture_on_commit_callbacks
):
    with FeedServer(records=130, token=TOKEN) as feed:
        cluster_factory(extra_env={"SUMOSOURCES_SOURCE_KINDS": ",".join(KINDS)})
        collector = make_collector()
        url = reverse("collector:source_add", args=[collector.pk, "json-feed"])
        with django_capture_on_commit_callbacks(execute=True):
            assert admin_client.post(url, form_data(url=feed.url)).status_code == 302
        source = Source.objects.get(name="Logins")
        stored = Message.objects.filter(source=source)
        wait_for(lambda: stored.count() == 130, message="every record stored")
        wait_for(lambda: Source.objects.get(pk=source.pk).state == SourceState.COLLECTING,
                 message="Collecting")  # fmt: skip
    assert set(stored.values_list("stream", flat=True)) == {STREAM}
    assert set(stored.values_list("tenant_id", flat=True)) == {""}
    assert sorted(int(v) for v in stored.values_list("vendor_id", flat=True)) == list(range(1, 131))
    assert Checkpoint.objects.get(source=source, stream=STREAM).position == {"after": 130}
    walk = list(SourceTransition.objects.filter(source=source).order_by("at", "id")
                .values_list("to_state", flat=True))  # fmt: skip
    assert walk == ["Pending", "Started", "Initialized", "Authenticated", "Collecting"]

    page = admin_client.get(reverse("collector:collection")).content.decode()
    icon = re.search(
        rf'data-status-for="{source.pk}" data-health="(\w+)"[^>]*title="([^"]*)"', page
    )
    assert icon is not None
    assert icon.group(1) == "Healthy" and icon.group(2).startswith("Collecting: ")

    detail = admin_client.get(reverse("collector:source_detail", args=[source.pk])).content.decode()
    assert 'fill="#2b8a3e"' in detail  # the kind's own colour for its stream
    assert "Records: 130" in detail  # every record arrived within this hour
    assert "Tenants" not in detail  # no tenants: the card is not shown
