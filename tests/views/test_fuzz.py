"""Hostile input to every route of the pages and the API: no answer is a 5xx.

The routes come from the URLconf itself, so a view added later is fuzzed without anyone listing
it here. Each route gets random query parameters (the names the views read plus random ones, with
values from a hostile alphabet), random form posts, and for the API random JSON and non-JSON
bodies on each of its methods; its URL variables are filled with ids of rows that exist and with
ids that cannot (too large for the database, unicode digits). Every route also gets each value
that once broke a view, in every name at once, so that those classes are checked on each run and
not only when the random draw happens on them. A query whose parameters hold NUL fails the test
as PostgreSQL would fail it, though the run is on SQLite.

tests/test_api_fuzz.py shapes the API's create and update bodies more closely; this file goes
wide instead of deep.

Examples of one test share a database, so the rows are fetched (or made again, when a fuzzed
delete removed them) at the start of each example.
"""

import json
import re
from dataclasses import dataclass
from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver
from django.urls.resolvers import RoutePattern
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from collector.auth import create_access_key
from collector.choices import Severity, SourceState
from collector.forms import CollectorForm, FieldForm
from collector.kinds import all_kinds
from collector.models import Collector, DroppedField, Field, HealthEvent
from collector.views.base import kind_slug
from collector.views.health import EventFilterForm
from collector.views.keys import AccessKeyForm
from collector.views.search import SearchForm
from tests.api.test_api import basic
from tests.api.test_fuzz import json_values
from tests.support.queries import no_nul_in_queries

FUZZ = settings(
    max_examples=20,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
NAMESPACES = {"collector", "api"}


# --- the routes -------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    name: str
    template: str  # the full path with its <converter:name> variables, e.g. "sources/<int:pk>/"
    regex: bool  # a re_path (the API's catch-all): any path may follow
    methods: tuple[str, ...]

    @property
    def api(self) -> bool:
        return self.name.startswith("api:")

    def __str__(self):
        return self.name


def _walk(patterns, prefix="", namespace=None):
    for entry in patterns:
        if isinstance(entry, URLResolver):
            inner = entry.namespace or namespace
            yield from _walk(entry.url_patterns, prefix + str(entry.pattern), inner)
        elif isinstance(entry, URLPattern) and namespace in NAMESPACES:
            regex = not isinstance(entry.pattern, RoutePattern)
            allowed = getattr(entry.callback, "allowed_methods", "GET, POST")
            yield Route(
                name=f"{namespace}:{entry.name}",
                template=prefix + ("" if regex else str(entry.pattern)),
                regex=regex,
                methods=tuple(m.strip() for m in allowed.split(",")),
            )


ROUTES = list(_walk(get_resolver().url_patterns))
PAGES = [r for r in ROUTES if not r.api]
API = [r for r in ROUTES if r.api]


def test_the_routes_are_all_found():
    """A guard on the walk itself: an empty or partial list would make the fuzzing vacuous."""
    names = {r.name for r in ROUTES}
    assert {"collector:collection", "collector:source_edit", "api:source", "api:unknown"} <= names
    assert len(PAGES) >= 25 and len(API) >= 15


# --- hostile values ---------------------------------------------------------------------------
HUGE = "99999999999999999999999"
# Numbers the views parse as ids, page numbers, limits and counts, and how they go wrong.
NUMBERS = [
    "0",
    "-1",
    "+1",
    "1",
    " 1 ",
    "²",  # str.isdigit() is True, int() refuses it
    "٣",  # int() reads it as 3
    "１２",  # fullwidth digits
    HUGE,
    str(2**63),
    str(2**63 - 1),
    "1" * 5000,  # past Python's int digit limit
    "1e999",
    "1.5",
    "NaN",
    "Infinity",
    "-0",
    "0x10",
    f"1,{HUGE}",
    "1,²,3",
    ",",
]
HOSTILE = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "x" * 5000,
    "%",
    "%00",
    "%FF",
    "'",
    '"',
    "*",
    "**",
    "a*b*c*d*e*f*g*h*",
    "\\",
    "{",
    "[",
    "{}",
    "[]",
    "null",
    "true",
    '{"a": 1}',
    '{"a": {"b": [1]}}',
    '{"team": "a\\u0000"}',
    '[["a", "b"]]',
    "[[1, 2]]",
    "[1, 2]",
    "[" * 3000,
    "-",
    "--severity",
    "2024-13-45T25:61",
    "0001-01-01T00:00",
    "9999-12-31T23:59",
    "<script>alert(1)</script>",
    "_sourceCategory=",
    "_index=*",
    "a=b=c",
    "(",
    "OR",
    "NOT",
    "custom",
    "resolved",
    "all",
    "Critical",
    "Sophos Central",
    "Alerts",
]
# Any text a URL or a form can carry: no lone surrogates (no client can encode them).
TEXT = st.text(st.characters(exclude_categories=["Cs"]), max_size=30)
VALUES = st.sampled_from(NUMBERS) | st.sampled_from(HOSTILE) | TEXT | st.integers().map(str)


def _form_fields(*forms) -> set[str]:
    return {name for form in forms for name in form.base_fields}


# The names the views read (request.GET / int_param), and every field of every form.
QUERY_KEYS = sorted(
    {"q", "ids", "page", "download", "name", "sort", "filter", "limit", "offset", "token"}
    | _form_fields(EventFilterForm, SearchForm)
)
FORM_KEYS = sorted(
    {"next", "fields-key", "fields-value"}
    | _form_fields(CollectorForm, FieldForm, AccessKeyForm, *(k.form_class for k in all_kinds()))
)


def params(known):
    """Query or form parameters: one hostile value in every name a view reads (so whichever
    name this view parses gets it), or a random mix of known and unknown names."""
    keys = st.sampled_from(known) | TEXT.filter(bool)
    mixed = st.dictionaries(keys, st.lists(VALUES, min_size=1, max_size=3), max_size=6)
    return VALUES.map(lambda value: {key: [value] for key in known}) | mixed


# --- the rows the URLs name -------------------------------------------------------------------
def world(make_source) -> dict:
    """The rows URL variables point at, made again when a fuzzed POST deleted or stopped them."""
    collector = Collector.objects.filter(name="Fuzz").first() or Collector.objects.create(
        name="Fuzz", category="fuzz"
    )
    source = collector.sources.exclude(state=SourceState.STOPPING).first() or make_source(
        f"Fuzz source {collector.sources.count()}", collector=collector
    )
    if not HealthEvent.objects.filter(resource_id=str(source.pk)).exists():
        HealthEvent.objects.create(
            event_name="ThirdPartyConfigError",
            error_type="ThirdPartyConfig",
            severity=Severity.ERROR,
            source=source,
            resource_id=str(source.pk),
            resource_name=source.name,
            collector_id=str(collector.pk),
            collector_name=collector.name,
            details={"error": "rejected"},
        )
    field = Field.objects.first() or Field.objects.create(name="team")
    dropped = DroppedField.objects.first() or DroppedField.objects.create(name="region_code")
    return {"collector": collector, "source": source, "field": field, "dropped": dropped}


IDS = [HUGE, str(2**63), str(2**63 - 1), "0", "0" * 30 + "1"]
SEGMENTS = ["%FF", "%C0%AF", "%00", "%2F", "%25"]  # sent raw: broken UTF-8, NUL, escapes
VARIABLE = re.compile(r"<(?:(\w+):)?(\w+)>")


class GoodValues(dict):
    """A variable this file does not know yet (a route added later) gets a row's id: some row
    is named, and the hostile values are tried on it all the same."""

    def __missing__(self, key):
        return self["collectors"]


def good_values(w: dict, access_key_pk: int) -> GoodValues:
    """What each URL variable is when it names a row: ids by the segment before them
    (``sources/<int:pk>``), the rest by converter or name."""
    return GoodValues(
        {
            "collectors": str(w["collector"].pk),
            "sources": str(w["source"].pk),
            "fields": str(w["field"].pk),
            "dropped": str(w["dropped"].pk),
            "access-keys": str(access_key_pk),
            "slug": kind_slug(all_kinds()[0]),
            "action": "restart",
            "field_id": w["field"].field_id,
            "name": quote(w["collector"].name),
            "rest": "",
        }
    )


def fill_path(route: Route, pick) -> str:
    """The route's path with each variable replaced by ``pick(what)`` (a key of good_values)."""

    def fill(match):
        converter, name = match.group(1) or "str", match.group(2)
        if converter == "int":
            return pick(route.template[: match.start()].rstrip("/").rpartition("/")[2])
        return pick("slug" if converter == "slug" else name)

    path = "/" + VARIABLE.sub(fill, route.template)
    return path + pick("rest") if route.regex else path


def fuzzed_path(data, route: Route, w: dict, access_key_pk: int) -> str:
    """Mostly the path of existing rows; otherwise ids of other rows, ids no row can have, or
    hostile text in a segment."""
    good = good_values(w, access_key_pk)
    some_id = st.sampled_from(sorted({v for k, v in good.items() if v.isdecimal()}))
    # Raw escapes, or text percent-encoded so that it stays one segment.
    text = st.sampled_from(SEGMENTS) | VALUES.filter(bool).map(lambda v: quote(v[:200], safe=""))
    extra = {
        "slug": st.sampled_from(["nope", "-", "a" * 300]),
        "action": st.just("nope"),
        "field_id": st.sampled_from(["0" * 16, "²"]),
    }

    def pick(what):
        wrong = some_id | st.sampled_from(IDS) if good[what].isdecimal() else text
        return data.draw(st.just(good[what]) | wrong | extra.get(what, wrong))

    return fill_path(route, pick)


# --- clients ----------------------------------------------------------------------------------
@pytest.fixture(autouse=True)
def _no_broker(queued):
    """Sources the fuzzer creates or restarts queue nothing."""


@pytest.fixture(autouse=True)
def _no_nul_in_queries(db):
    """What PostgreSQL would refuse fails here too, though the run is on SQLite."""
    with no_nul_in_queries():
        yield


@dataclass
class Users:
    pages: dict[str, Client]  # logged-in clients by role
    keys: dict[str, str]  # API Authorization headers by role
    admin_key_pk: int


@pytest.fixture
def users(admin_user, viewer_user) -> Users:
    pages, keys = {}, {}
    for role, user in (("admin", admin_user), ("viewer", viewer_user)):
        pages[role] = Client()
        pages[role].force_login(user)
        row, key = create_access_key(user=user)
        keys[role] = basic(row.access_id, key)
        if role == "admin":
            admin_key_pk = row.pk
    return Users(pages, keys, admin_key_pk)


# Most examples as the admin, who reaches the forms and services; some as the view-only user.
ROLES = st.sampled_from(["admin", "admin", "admin", "viewer"])


def assert_no_server_error(response, what: str) -> None:
    assert response.status_code < 500, f"{what} -> {response.status_code}: {response.content[:500]}"


# --- the pages --------------------------------------------------------------------------------
@pytest.mark.parametrize("route", PAGES, ids=str)
@FUZZ
@given(data=st.data(), role=ROLES, query=params(QUERY_KEYS), form=params(FORM_KEYS))
def test_pages_never_answer_5xx(users, make_source, route, data, role, query, form):
    """A GET with random query parameters, then a POST of a random form (CSRF is not enforced
    by the test client, so the post reaches the view)."""
    client = users.pages[role]
    w = world(make_source)
    path = fuzzed_path(data, route, w, users.admin_key_pk)
    assert_no_server_error(client.get(path, query), f"GET {path} {query!r} as {role}")
    path = fuzzed_path(data, route, w, users.admin_key_pk)
    assert_no_server_error(client.post(path, form), f"POST {path} {form!r} as {role}")


# One value of each kind that broke a view once, sent to every route in every name it reads:
# random examples may miss a given name, this does not.
SWEEP = ["\x00", "²", HUGE, "1" * 5000, "[" * 3000, '{"team": "a\\u0000"}', "0"]


@pytest.mark.parametrize("route", ROUTES, ids=str)
def test_every_route_survives_each_known_bad_value_in_every_name(users, make_source, route):
    headers = {"authorization": users.keys["admin"]} if route.api else {}
    client = Client() if route.api else users.pages["admin"]
    for value in SWEEP:
        # The world again for each value: the previous value's POST may have deleted a row.
        path = fill_path(route, good_values(world(make_source), users.admin_key_pk).__getitem__)
        query = {key: value for key in QUERY_KEYS}
        response = client.get(path, query, headers=headers)
        assert_no_server_error(response, f"GET {path} with every parameter {value[:20]!r}")
        # Without the widget's row names, so that the value reaches "fields" itself (the rows
        # would take precedence); the random examples post rows.
        form = {key: value for key in FORM_KEYS if key not in ("fields-key", "fields-value")}
        response = client.post(path, form, headers=headers)
        assert_no_server_error(response, f"POST {path} with every field {value[:20]!r}")


# --- the API ----------------------------------------------------------------------------------
BODIES = (
    json_values.map(lambda v: json.dumps(v).encode())
    | st.binary(max_size=100)
    | st.sampled_from([b"", b"{", b"null", b"[]", b"{}", b'{"a": NaN}', b"[" * 3000, b"\xff\xfe"])
)


@pytest.mark.parametrize("route", API, ids=str)
@FUZZ
@given(
    data=st.data(),
    role=ROLES,
    query=params(QUERY_KEYS),
    body=BODIES,
    content_type=st.sampled_from(["application/json", "application/json; charset=latin-1", ""]),
    if_match=st.sampled_from([None, "*", '"x"', ""]),
)
def test_api_never_answers_5xx(
    users, make_source, route, data, role, query, body, content_type, if_match
):
    """A GET with random query parameters, then another of the route's methods with a random
    JSON or non-JSON body (tests/test_api_fuzz.py shapes the create and update bodies)."""
    headers = {"authorization": users.keys[role]}
    w = world(make_source)
    path = fuzzed_path(data, route, w, users.admin_key_pk)
    response = Client().get(path, query, headers=headers)
    assert_no_server_error(response, f"GET {path} {query!r} as {role}")
    path = fuzzed_path(data, route, w, users.admin_key_pk)
    method = data.draw(st.sampled_from([m for m in route.methods if m != "GET"] or ["POST"]))
    if if_match is not None:
        headers["if-match"] = if_match
    response = Client().generic(method, path, body, content_type=content_type, headers=headers)
    assert_no_server_error(response, f"{method} {path} {body[:200]!r} as {role}")
