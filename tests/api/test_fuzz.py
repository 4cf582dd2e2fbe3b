"""Random JSON at the create and update endpoints: every answer is a 2xx or a 4xx, never a 5xx.

Bodies are partly shaped like the contract (the right envelopes and config keys with random
values) so that generated input reaches the forms and services, not only the JSON parser.
"""

import json

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from collector.auth import create_access_key
from collector.crypto import MASK
from collector.models import Collector
from tests.api.test_api import Api, basic

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the working tree
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# Values that pass some checks, so that others further in are reached too.
plausible = st.sampled_from(
    [
        "Sophos",
        "",
        " ",
        "x" * 129,
        "x" * 1025,
        "UTC",
        "Europe/Berlin",
        MASK,
        "Hosted",
        "Sophos Central",
        "Universal",
        ["Events"],
        ["Alerts", "Events"],
        ["Logs"],
        [],
        300,
        59,
        86401,
        0,
        -1,
        {"_siemForward": True},
        {"_siemForward": "true"},
        {"team": "east"},
        {"_budget": "b"},
        {"1bad": "x"},
        {"team": "x" * 201},
        {"Team": "a", "team": "b"},
        {f"f{i}": "v" for i in range(11)},
    ]
)
values = plausible | json_values


def members(keys, max_size=None):
    return st.dictionaries(st.sampled_from(keys), values, max_size=max_size or len(keys))


def near_valid(valid, keys):
    """A valid object as it is, or with one member replaced or added at random."""
    return valid | st.builds(lambda base, changes: {**base, **changes}, valid, members(keys, 1))


collector_keys = [
    "name",
    "description",
    "category",
    "fields",
    "timeZone",
    "collectorType",
    "id",
    "links",
    "alive",
    "hostName",
]
config_keys = [
    "name",
    "description",
    "category",
    "fields",
    "clientId",
    "clientSecret",
    "supported_apis",
    "pollingInterval",
    "region",
]
names = st.text(min_size=1, max_size=30) | st.uuids().map(str)
valid_collector = st.fixed_dictionaries(
    {"collectorType": st.just("Hosted"), "name": names},
    optional={"description": st.text(max_size=50), "fields": st.just({"team": "east"})},
)
valid_config = st.fixed_dictionaries(
    {
        "name": names,
        "clientId": st.text(min_size=1, max_size=20),
        "clientSecret": st.just(MASK) | st.text(min_size=1, max_size=20),
        "supported_apis": st.sampled_from([["Events"], ["Alerts"], ["Events", "Alerts"]]),
    },
    optional={
        "pollingInterval": st.integers(min_value=60, max_value=86400),
        "fields": st.just({"_siemForward": True}),
    },
)
collector_bodies = st.fixed_dictionaries(
    {
        "collector": st.one_of(
            near_valid(valid_collector, collector_keys), members(collector_keys), values
        )
    }
)
source_bodies = st.fixed_dictionaries(
    {
        "source": st.fixed_dictionaries(
            {
                "schemaRef": st.just({"type": "Sophos Central"}) | values,
                "sourceType": st.just("Universal") | values,
                "config": st.one_of(
                    near_valid(valid_config, config_keys), members(config_keys), values
                ),
            },
            optional={"id": values, "state": values},
        )
        | values
    },
    optional={"api.version": st.just("v1") | values},
)
# (entity, body): shaped bodies go to their own endpoint, anything at all to either.
targeted = st.one_of(
    st.tuples(st.just("collector"), collector_bodies),
    st.tuples(st.just("source"), source_bodies),
    st.tuples(st.sampled_from(["collector", "source"]), json_values),
)


@pytest.fixture(autouse=True)
def no_broker(queued):
    """Sources created by the fuzzer queue nothing."""


@pytest.fixture
def api(client, admin_user):
    row, key = create_access_key(user=admin_user)
    return Api(client, basic(row.access_id, key))


def assert_answered(response) -> None:
    """A 2xx or a 4xx with one of the documented shapes, never a 5xx."""
    assert response.status_code < 500, response.content
    if response.status_code >= 400:
        body = response.json()
        assert body["code"] and body["message"] and body["status"] == response.status_code
        # Shown by --hypothesis-show-statistics: which checks the generated input reached.
        event(f"{response.status_code} {body['code']}")
    else:
        event(str(response.status_code))


def fuzz_collector() -> Collector:
    """The same collector for every example of a test (examples share one database)."""
    return Collector.objects.get_or_create(name="Fuzz")[0]


def with_id(body, key: str, pk: int):
    """Most generated PUT bodies carry the right id, so validation goes on past the id check."""
    if isinstance(body, dict) and isinstance(body.get(key), dict):
        body[key].setdefault("id", pk)
    return body


@FUZZ
@given(case=targeted)
def test_create_never_answers_5xx(api, case):
    target, body = case
    path = "/collectors" if target == "collector" else f"/collectors/{fuzz_collector().pk}/sources"
    assert_answered(api.post(path, body))


@FUZZ
@given(case=targeted, keep_id=st.booleans())
def test_update_never_answers_5xx(api, make_source, case, keep_id):
    target, body = case
    collector = fuzz_collector()
    source = collector.sources.first() or make_source("Fuzz source", collector=collector)
    path = f"/collectors/{collector.pk}"
    if target == "source":
        path += f"/sources/{source.pk}"
    if keep_id:
        body = with_id(body, target, collector.pk if target == "collector" else source.pk)
    etag = api.get(path)["ETag"]
    assert_answered(api.put(path, body, if_match=etag))


@FUZZ
@given(raw=st.binary(max_size=200) | st.text(max_size=200).map(str.encode))
def test_arbitrary_bytes_never_answer_5xx(api, raw):
    collector = fuzz_collector()
    for path in ("/collectors", f"/collectors/{collector.pk}/sources"):
        assert_answered(api.post(path, raw=raw))


@pytest.mark.parametrize("escape", ["\\u0000", "\\ud800", "\\udfff\\ud800"])
def test_text_the_databases_cannot_store_is_refused(api, make_collector, escape):
    collector = make_collector("Fuzz")
    for body in (
        {"collector": {"name": f"a{escape}"}},
        {"collector": {"name": "ok", "fields": {"team": f"x{escape}"}}},
    ):
        raw = json.dumps(body).replace("\\\\", "\\")
        response = api.post("/collectors", raw=raw)
        assert response.status_code == 400, response.content
    path = f"/collectors/{collector.pk}/sources"
    raw = json.dumps({"source": {"config": {f"k{escape}": 1}}}).replace("\\\\", "\\")
    assert api.post(path, raw=raw).status_code == 400
