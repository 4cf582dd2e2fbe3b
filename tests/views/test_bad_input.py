"""Bad input to the pages and the API: a field-level message or a 4xx, never a 500.

One test per root cause the fuzzer (tests/views/test_fuzz.py) or a review found.
"""

import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from collector.models import Collector, Field, Message, Source
from collector.search import Term, term_q
from collector.validators import validate_field_name, validate_fields_map
from collector.views.base import parse_ids
from tests.support.queries import no_nul_in_queries

HUGE = "99999999999999999999999"  # past the 64-bit integer range of both databases


@pytest.fixture(autouse=True)
def _no_broker(queued):
    """No task reaches a broker."""


# --- ids from request text --------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, expected",
    [
        ("1, 2,3", [1, 2, 3]),
        ("²", []),  # str.isdigit() is True, int() refuses it
        ("٣", []),  # int() reads Arabic-Indic digits, but an id is ASCII
        (HUGE, []),
        (str(2**63), []),
        ("-1,+2, 0x3", []),
        ("1\x00", []),
        ("123456789012345678", [123456789012345678]),
    ],
)
def test_parse_ids_keeps_only_ascii_ids_the_database_can_hold(text, expected):
    assert parse_ids(text) == expected


@pytest.mark.parametrize("ids", [HUGE, "²", f"{HUGE},²,{{pk}}"])
def test_status_json_ignores_ids_that_name_nothing(admin_client, make_source, ids):
    source = make_source()
    ids = ids.replace("{pk}", str(source.pk))
    response = admin_client.get(reverse("collector:status_json"), {"ids": ids})
    assert response.status_code == 200
    expected = {str(source.pk)} if str(source.pk) in ids.split(",") else set()
    assert set(response.json()["sources"]) == expected


PAGES_WITH_AN_ID = [
    "collectors/{}/edit/",
    "collectors/{}/delete/",
    "collectors/{}/sources/add/",
    "collectors/{}/sources/add/sophos-central/",
    "sources/{}/",
    "sources/{}/edit/",
    "sources/{}/json/",
    "sources/{}/timeline/",
    "sources/{}/delete/",
]
POSTS_WITH_AN_ID = [
    "collectors/{}/sources/test/sophos-central/",
    "sources/{}/test/",
    "sources/{}/restart/",
    "fields/{}/enable/",
    "fields/{}/disable/",
    "fields/{}/delete/",
    "fields/dropped/{}/create/",
    "access-keys/{}/revoke/",
]


@pytest.mark.parametrize("path", PAGES_WITH_AN_ID)
def test_a_page_for_an_id_past_the_integer_range_is_not_found(admin_client, path):
    assert admin_client.get("/" + path.format(HUGE)).status_code == 404


@pytest.mark.parametrize("path", POSTS_WITH_AN_ID)
def test_an_action_on_an_id_past_the_integer_range_is_not_found(admin_client, path):
    assert admin_client.post("/" + path.format(HUGE)).status_code == 404


def test_ids_in_urls_still_reverse_and_resolve(admin_client, make_source):
    source = make_source()
    url = reverse("collector:source_detail", args=[source.pk])
    assert url == f"/sources/{source.pk}/"
    assert admin_client.get(url).status_code == 200


@pytest.mark.parametrize(
    "path",
    [
        f"/api/v1/collectors/{HUGE}",
        f"/api/v1/collectors/{HUGE}/sources",
        f"/api/v1/collectors/1/sources/{HUGE}",
    ],
)
def test_the_api_answers_404_in_its_shape_for_an_id_past_the_integer_range(admin_client, path):
    response = admin_client.get(path)
    assert response.status_code == 404
    assert response.json()["code"] == "notfound"


# --- the fields widget ------------------------------------------------------------------------
def collector_post(**overrides) -> dict:
    data = {"name": "Hosted West", "description": "", "category": "", "time_zone": "UTC"}
    data.update(overrides)
    return data


def source_post(**overrides) -> dict:
    data = {
        "name": "Sophos West",
        "description": "",
        "category": "",
        "client_id": "client-abc",
        "client_secret": "brand-new-secret-123",
        "supported_apis": ["Alerts"],
        "polling_interval": "300",
    }
    data.update(overrides)
    return data


MALFORMED_FIELDS = [
    {"fields-value": ["blue"]},  # a value without a key
    {"fields-key": ["team", ""], "fields-value": ["blue", "red"]},
    {"fields": "not json"},
    {"fields": "[1, 2]"},  # a list of non-pairs
    {"fields": '[["a", "b", "c"]]'},
    {"fields": '[[["team"], "blue"]]'},  # an unhashable key
    {"fields": '[[{"a": 1}, "blue"]]'},
    {"fields": '{"1": 2, "team": {"nested": true}}'},
    {"fields": '{"team": {"nested": {"deeper": [1]}}}'},
    {"fields": '{"team": ["blue"]}'},
    {"fields": "[[1, 2]]"},  # a non-string key
    {"fields": '"team"'},  # JSON, but not a map
    {"fields": "12345678901234567890123456789"},
    {"fields": '{"team": 1' + "0" * 250 + "}"},  # a number longer than a field value may be
    {"fields": '{"team": NaN}'},
    {"fields": '{"team": Infinity}'},
    {"fields": '{"team": 1e999}'},
    {"fields": '{"team": "a", "team": "b"}'},
    {"fields": "[" * 5000 + "]" * 5000},  # deeper than the JSON parser recurses
    {"fields": '{"team": "blue\\u0000"}'},
    {"fields": '{"te\\u0000am": "blue"}'},
]


def assert_fields_error(response):
    assert response.status_code == 200, response.content[:300]
    form = response.context["form"]
    assert form.errors.get("fields"), form.errors


@pytest.mark.parametrize("fields", MALFORMED_FIELDS)
def test_malformed_fields_on_a_new_collector_are_a_field_error(admin_client, db, fields):
    response = admin_client.post(reverse("collector:collector_add"), collector_post(**fields))
    assert_fields_error(response)
    assert not Collector.objects.exists()


@pytest.mark.parametrize("fields", MALFORMED_FIELDS)
def test_malformed_fields_on_an_edited_collector_are_a_field_error(
    admin_client, make_collector, fields
):
    collector = make_collector(fields={"team": "east"})
    url = reverse("collector:collector_edit", args=[collector.pk])
    assert_fields_error(admin_client.post(url, collector_post(**fields)))
    collector.refresh_from_db()
    assert collector.fields == {"team": "east"}


@pytest.mark.parametrize("fields", MALFORMED_FIELDS)
def test_malformed_fields_on_a_new_source_are_a_field_error(admin_client, make_collector, fields):
    collector = make_collector()
    url = reverse("collector:source_add", args=[collector.pk, "sophos-central"])
    assert_fields_error(admin_client.post(url, source_post(**fields)))
    assert not Source.objects.exists()


@pytest.mark.parametrize("fields", MALFORMED_FIELDS)
def test_malformed_fields_on_an_edited_source_are_a_field_error(admin_client, make_source, fields):
    source = make_source(fields={"team": "east"})
    url = reverse("collector:source_edit", args=[source.pk])
    assert_fields_error(admin_client.post(url, source_post(**fields)))
    source.refresh_from_db()
    assert source.fields == {"team": "east"}


def test_a_key_without_a_value_is_kept_with_an_empty_value(admin_client, db):
    """A row whose value input is missing is not silently dropped."""
    response = admin_client.post(
        reverse("collector:collector_add"), collector_post(**{"fields-key": ["team"]})
    )
    assert response.status_code == 302
    assert Collector.objects.get().fields == {"team": ""}


def test_a_refused_fields_value_is_shown_again_as_rows(admin_client, db):
    response = admin_client.post(
        reverse("collector:collector_add"),
        collector_post(**{"fields-key": ["team", "1bad"], "fields-value": ["blue", "x"]}),
    )
    assert_fields_error(response)
    html = response.content.decode()
    assert 'name="fields-key" value="1bad"' in html
    assert 'name="fields-value" value="blue"' in html


# --- where an action goes back to -------------------------------------------------------------
@pytest.mark.parametrize(
    "target",
    ["0", "collector:collection", "restart", "../x", "//evil.example/", "https://evil.example/"],
)
def test_an_action_with_a_next_that_is_no_local_path_goes_to_the_source(
    admin_client, make_source, target
):
    """``next`` is a path; any other text (which redirect() would reverse as a view name) or a
    foreign URL falls back to the source page."""
    source = make_source()
    url = reverse("collector:source_action", args=[source.pk, "pause"])
    response = admin_client.post(url, {"next": target})
    assert response.status_code == 302
    assert response["Location"] == reverse("collector:source_detail", args=[source.pk])


def test_an_action_goes_back_to_the_page_it_was_posted_from(admin_client, make_source):
    source = make_source()
    url = reverse("collector:source_action", args=[source.pk, "pause"])
    response = admin_client.post(url, {"next": "/?q=east"})
    assert response.status_code == 302 and response["Location"] == "/?q=east"


# --- text PostgreSQL refuses to compare -------------------------------------------------------
@pytest.mark.parametrize("q", ["a\x00b", "\x00*", "*\x00"])
def test_a_collection_search_holding_nul_finds_nothing(admin_client, make_source, q):
    make_source()
    with no_nul_in_queries():
        response = admin_client.get(reverse("collector:collection"), {"q": q})
    assert response.status_code == 200
    assert response.context["source_count"] == 0


def test_the_fields_check_calls_a_name_holding_nul_invalid(admin_client, db):
    Field.objects.create(name="team")
    with no_nul_in_queries():
        response = admin_client.get(
            reverse("collector:fields_check"), {"name": ["te\x00am", "team"]}
        )
    assert response.status_code == 200
    answer = response.json()["fields"]
    assert answer["te\x00am"]["status"] == "invalid"
    assert answer["team"]["status"] == "enabled"


@pytest.mark.parametrize("term", [Term("_index", "a\x00"), Term("_sourceCategory", "a\x00*")])
def test_a_search_term_holding_nul_matches_nothing(db, term):
    """The Log Search form refuses NUL, but the language is used elsewhere too."""
    with no_nul_in_queries():
        assert not Message.objects.filter(term_q(term)).exists()


# --- field names ------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["team\n", "team\r\n", "\nteam"])
def test_a_field_name_with_a_line_break_is_refused(name):
    with pytest.raises(ValidationError):
        validate_field_name(name)
    with pytest.raises(ValidationError):
        validate_fields_map({name: "x"})
