"""The Log Search query language (collector.search): parsing, wildcards, SQL and Python agreeing,
and the time limit."""

import random
import re

import pytest
from django.db import DatabaseError, connection
from hypothesis import given
from hypothesis import strategies as st

from collector.choices import SYSTEM_EVENTS_INDEX
from collector.models import Collector, Message
from collector.search import (
    KEYS,
    ParsedQuery,
    SearchTimeout,
    Term,
    collapse_stars,
    filter_messages,
    fold,
    matches,
    name_search_q,
    parse_query,
    term_text,
    time_limit,
    to_like,
    wildcard_match,
    wildcard_q,
)
from tests.support.messages import make_message, message_fields


# --- parsing ----------------------------------------------------------------------------------
def test_parse_query_splits_terms_and_keywords():
    parsed = parse_query('_SOURCECATEGORY=sophos/* tenant="Acme Ltd" malware "two words" x=1')
    assert parsed.terms == [Term("_SOURCECATEGORY", "sophos/*"), Term("tenant", "Acme Ltd")]
    assert parsed.terms[0].metadata is KEYS["_sourcecategory"]
    assert parsed.keywords == ["malware", "two words", "x=1"]
    assert not parsed.names_index
    assert parse_query("_index=x").names_index


def test_parse_query_keeps_an_empty_value_and_an_unbalanced_quote_as_keywords():
    assert parse_query("tenant= a").keywords == ["tenant=", "a"]
    assert parse_query('tenant=Acme "open').terms == [Term("tenant", "Acme")]
    assert parse_query('tenant=Acme "open').keywords == ['"open']
    assert parse_query("") == ParsedQuery() == parse_query(None)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ("plain", "tenant=plain"),
        ("two words", 'tenant="two words"'),
        ('say "hi"', 'tenant="say \\"hi\\""'),
        ("back\\slash", 'tenant="back\\\\slash"'),
        ("O'Brien", 'tenant="O\'Brien"'),
    ],
)
def test_term_text_quotes_what_needs_it(value, text):
    assert term_text("tenant", value) == text


@given(st.text(min_size=1).filter(lambda v: "\x00" not in v))
def test_term_text_reads_back_as_the_same_term(value):
    assert parse_query(term_text("_source", value)).terms == [Term("_source", value)]


# --- wildcards --------------------------------------------------------------------------------
def test_collapse_stars_and_to_like_escape_like_metacharacters():
    assert collapse_stars("0*******Z") == "0*Z"
    assert collapse_stars("**a**b*") == "*a*b*"
    assert to_like("A%b_C\\d*E**") == "a\\%b\\_c\\\\d%e%"
    assert fold("ÀBC-xyz") == "Àbc-xyz"  # ASCII letters only, like SQLite's LIKE


def reference(pattern: str, value: str) -> bool:
    """A slow but obviously right matcher, for short strings only."""
    regex = ".*".join(re.escape(fold(part)) for part in pattern.split("*"))
    return re.fullmatch(regex, fold(value), re.DOTALL) is not None


ALPHABET = "aAb*%_\\é"


@given(st.text(alphabet=ALPHABET, max_size=8), st.text(alphabet=ALPHABET, max_size=10))
def test_wildcard_match_agrees_with_a_reference(pattern, value):
    assert wildcard_match(pattern, value) == reference(pattern, value)


def test_wildcard_match_is_linear_on_a_pathological_pattern():
    value = "0" + "a" * 200_000 + "Z"
    assert wildcard_match("0" + "*a" * 5000 + "*Z", value)
    assert not wildcard_match("0" + "*a" * 50 + "*b*Z", value)
    assert not wildcard_match("0" + "*" * 500 + "Y", value)


def test_wildcard_match_does_not_let_the_prefix_and_suffix_overlap():
    assert not wildcard_match("ab*ba", "aba")
    assert wildcard_match("ab*ba", "abba")
    assert not wildcard_match("a*b*a", "ab")


# --- SQL and Python agree ---------------------------------------------------------------------
VALUES = ["", "a", "A", "ab", "aB", "ba", "a%b", "a_b", "a\\b", "a*b", "é", "É", "aé", "%", "_"]


def test_wildcard_q_agrees_with_wildcard_match_on_every_row(db):
    for n, value in enumerate(VALUES):
        make_message(n, tenant_name=value)
    rows = list(Message.objects.all())
    rng = random.Random(20261201)
    patterns = {"".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 5))) for _ in range(150)}
    patterns |= {"*", "a", "A*", "*b", "%", "_", "\\", "é", "É*", "*\\*"}
    for pattern in sorted(patterns):
        in_sql = set(Message.objects.filter(wildcard_q("tenant_name", pattern)))
        in_python = {m for m in rows if wildcard_match(pattern, m.tenant_name)}
        assert in_sql == in_python, pattern


QUERIES = [
    "",
    "tenant=ACME",
    "tenant=t*-1 malware",
    "_sourceCategory=sophos/* _sourceName=alerts",
    "_collector=*EU",
    "_siemEventID=malware*",
    "item",
    "ITEM*2",
    '"number 1"',
    "_index=*",
    f"_index={SYSTEM_EVENTS_INDEX}",
    f"_index={SYSTEM_EVENTS_INDEX.upper()}",
    "_index=sumo*",
    "tenant=Émile",
    "tenant=émile",
    "100%",
    "nothing-at-all",
]


def test_filter_messages_and_matches_agree_on_whole_queries(db):
    make_message(1)
    make_message(2, tenant_name="Émile", stream="Events", siem_event_id="malwareX")
    make_message(3, tenant_name="émile", collector_name="Hosted US", source_category="fw/eu")
    make_message(4, index=SYSTEM_EVENTS_INDEX, raw='{"id": "v-4", "rate": "100%"}')
    make_message(5, tenant_id="t-9-1", raw='{"id": "v-5", "rate": "100% malware"}')
    rows = list(Message.objects.all())
    for text in QUERIES:
        parsed = parse_query(text)
        in_sql = {m.vendor_id for m in filter_messages(Message.objects.all(), parsed)}
        in_python = {m.vendor_id for m in rows if matches(parsed, m)}
        assert in_sql == in_python, text
    assert {m.vendor_id for m in rows if matches(parse_query("tenant=émile"), m)} == {"v-3"}


def test_matches_takes_a_mapping_of_columns_before_any_row_exists():
    fields = message_fields(1, tenant_name="Acme")
    assert matches(parse_query("tenant=acme item"), fields)
    assert not matches(parse_query("tenant=beta"), fields)
    assert not matches(parse_query(""), {**fields, "index": SYSTEM_EVENTS_INDEX})
    assert matches(parse_query("_source=*"), {})  # missing columns are empty


def test_name_search_q_matches_anywhere_or_at_the_start_with_a_trailing_star(db):
    for name in ("Sophos East", "East Sophos", "100% Sophos", "100x Sophos"):
        Collector.objects.create(name=name)

    def names(query):
        return set(
            Collector.objects.filter(name_search_q(query, "name", "category")).values_list(
                "name", flat=True
            )
        )

    assert names("sophos") == {"Sophos East", "East Sophos", "100% Sophos", "100x Sophos"}
    assert names("SOPH*") == {"Sophos East"}
    assert names("100%") == {"100% Sophos"}
    assert names("east*") == {"East Sophos"}
    assert names("s*east") == {"Sophos East"}


def test_no_query_runs_a_regular_expression(db):
    from django.test.utils import CaptureQueriesContext

    with CaptureQueriesContext(connection) as captured:
        list(filter_messages(Message.objects.all(), parse_query("tenant=0*********Z a*b*c")))
    sql = captured.captured_queries[-1]["sql"]
    assert "REGEXP" not in sql.upper() and "~" not in sql and sql.count("LIKE") == 3


# --- time limit -------------------------------------------------------------------------------
# Counts to a large number inside the database: runs for many seconds unless stopped.
LONG_QUERY = (
    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 100000000) "
    "SELECT count(*) FROM c"
)


def statement_timeout():
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


def test_time_limit_stops_a_long_statement_and_leaves_the_connection_clean(db):
    before = statement_timeout() if connection.vendor == "postgresql" else None
    with pytest.raises(SearchTimeout) as stopped, time_limit(0.05), connection.cursor() as cursor:
        cursor.execute(LONG_QUERY)
        cursor.fetchone()
    assert stopped.value.seconds == 0.05 and "0.05 s" in str(stopped.value)
    # Nothing is left behind: a statement after the block runs to its end.
    with connection.cursor() as cursor:
        cursor.execute(LONG_QUERY.replace("100000000", "100000"))
        assert cursor.fetchone()[0] == 100000
    if before is not None:
        assert statement_timeout() == before


def test_time_limit_lets_quick_work_through_and_restores_the_setting(db):
    make_message(1)
    before = statement_timeout() if connection.vendor == "postgresql" else None
    with time_limit(5):
        assert Message.objects.count() == 1
    if before is not None:
        assert statement_timeout() == before


def test_time_limit_passes_other_database_errors_through(db):
    with pytest.raises(DatabaseError) as error, time_limit(5), connection.cursor() as cursor:
        cursor.execute("SELECT * FROM no_such_table")
    assert not isinstance(error.value, SearchTimeout)
