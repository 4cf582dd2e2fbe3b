"""The Log Search page: filters, paging and the query count."""

import datetime as dt
import json
import re

from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from collector.choices import SYSTEM_EVENTS_INDEX
from tests.support.messages import make_message


def search(client, query, **params):
    params["q"] = query
    html = client.get(reverse("collector:log_search"), params).content.decode()
    return set(re.findall(r"&quot;id&quot;: &quot;(v-[\w-]+)&quot;", html)), html


def test_log_search_filters_by_metadata_time_and_keywords(admin_client, db):
    make_message(1)
    make_message(2, stream="Events", siem_event_id="runtimeDetections", tenant_name="Beta")
    make_message(3, source_category="other/cat", collector_name="Hosted US", source_name="West")
    make_message(4, minutes_ago=60 * 30)
    make_message(5, index=SYSTEM_EVENTS_INDEX, raw=json.dumps({"id": "v-5", "eventName": "X"}))
    assert search(admin_client, "")[0] == {"v-1", "v-2", "v-3"}
    assert search(admin_client, "_sourceCategory=sophos/*")[0] == {"v-1", "v-2"}
    assert search(admin_client, "_sourceCategory=*/CAT")[0] == {"v-3"}
    assert search(admin_client, "_sourceCategory=s*s/e*t")[0] == {"v-1", "v-2"}
    assert search(admin_client, "_sourceName=Events")[0] == {"v-2"}
    assert search(admin_client, "_siemEventID=runtimeDetections")[0] == {"v-2"}
    assert search(admin_client, "_collector=hosted*")[0] == {"v-1", "v-2", "v-3"}
    assert search(admin_client, '_source="West"')[0] == {"v-3"}
    assert search(admin_client, "tenant=Beta")[0] == {"v-2"}
    assert search(admin_client, "tenant=tenant-1 number 3")[0] == {"v-3"}
    assert search(admin_client, '"item number 1"')[0] == {"v-1"}
    assert search(admin_client, "", range="7d")[0] == {"v-1", "v-2", "v-3", "v-4"}
    assert search(admin_client, f"_index={SYSTEM_EVENTS_INDEX}")[0] == {"v-5"}
    assert search(admin_client, "_index=*")[0] == {"v-1", "v-2", "v-3", "v-5"}
    old = timezone.now() - dt.timedelta(hours=31)
    custom = search(
        admin_client,
        "",
        range="custom",
        start=(old - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M"),
        end=(old + dt.timedelta(hours=2)).strftime("%Y-%m-%dT%H:%M"),
    )[0]
    assert custom == {"v-4"}


def test_log_search_shows_newest_first_paginated_with_metadata(admin_client, db):
    for n in range(55):
        make_message(n, minutes_ago=n + 1)
    ids, html = search(admin_client, "item")
    assert len(ids) == 50 and "v-0" in ids and "v-54" not in ids
    assert html.index("&quot;v-0&quot;") < html.index("&quot;v-1&quot;")
    assert 'rel="next"' in html
    assert "<mark>item</mark>" in html
    assert "_sourceCategory" in html and "sophos/east" in html and "Acme" in html
    ids, html = search(admin_client, "item", page=2)
    assert ids == {f"v-{n}" for n in range(50, 55)}
    assert 'rel="next"' not in html and 'rel="prev"' in html


def test_log_search_query_count_is_fixed(admin_client, db, django_assert_max_num_queries):
    url = reverse("collector:log_search") + "?q=_sourceCategory%3Dsophos/*+item"
    for n in range(3):
        make_message(n)
    with CaptureQueriesContext(connection) as small:
        assert admin_client.get(url).status_code == 200
    for n in range(3, 30):
        make_message(n)
    with django_assert_max_num_queries(len(small.captured_queries)):
        html = admin_client.get(url).content.decode()
    assert html.count("message-card") == 30
