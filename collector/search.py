"""The Log Search query language; destination routes select their messages with it too.

A query is Sumo-like text: ``key=value`` metadata terms and free keywords, all combined with AND,
for example ``_sourceCategory=security/* _sourceName=Alerts tenant=Acme* malware``. Quotes group
words (``_source="EU East"``). In values and keywords ``*`` stands for any characters; every
other character, ``%`` ``_`` and ``\\`` included, is literal. Matching ignores the case of ASCII
letters only, the rule SQLite's ``LIKE`` has, applied on PostgreSQL too, so that both databases and
:func:`matches` agree. Health-event records live in ``_index=sumologic_system_events``: without an
``_index`` term only collected data matches (``_index=*`` matches everything).

The same parsed query is answered three ways that must agree: :func:`filter_messages` (SQL, for
Log Search and a route's backlog), :func:`matches` (one message in Python, for a route deciding
without a query) and the helpers behind both. Wildcards never become a regular expression: a
backtracking regex turns ``a*****b`` into exponential work per row, while ``LIKE`` and the
matcher here find each fixed part in turn, in time linear in the value for a given pattern.
:func:`time_limit` bounds the database time of whatever runs inside it.
"""

import logging
import re
import shlex
import string
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import reduce

from django.db import DEFAULT_DB_ALIAS, OperationalError, connections, transaction
from django.db.models import F, Lookup, Q, QuerySet

logger = logging.getLogger(__name__)

WILDCARD = "*"
LIKE_ESCAPE = "\\"
_ASCII_LOWER = str.maketrans(string.ascii_uppercase, string.ascii_lowercase)
_STARS = re.compile(r"\*{2,}")
_NEEDS_QUOTES = re.compile(r"[\s\"'\\]")


@dataclass(frozen=True)
class MetadataKey:
    """A metadata key of the language: its documented spelling and the columns it matches.

    A term matches when any of ``columns`` matches. ``exact`` keys compare the whole value with
    case, where ``*`` alone means "any" and is otherwise literal (``_index``, whose partial index
    serves only an equality).
    """

    name: str
    columns: tuple[str, ...]
    exact: bool = False


INDEX_KEY = MetadataKey("_index", ("index",), exact=True)
# Query key (lower case) -> key. The order is the order shown in the page's help.
KEYS: dict[str, MetadataKey] = {
    key.name.lower(): key
    for key in (
        MetadataKey("_sourceCategory", ("source_category",)),
        MetadataKey("_source", ("source_name",)),
        MetadataKey("_collector", ("collector_name",)),
        MetadataKey("_sourceName", ("stream",)),
        MetadataKey("_siemEventID", ("siem_event_id",)),
        MetadataKey("tenant", ("tenant_id", "tenant_name")),
        INDEX_KEY,
    )
}
KEYWORD_COLUMN = "raw"


@dataclass(frozen=True)
class Term:
    """One ``key=value`` term; ``key`` as typed (any case), ``value`` after unquoting."""

    key: str
    value: str

    @property
    def metadata(self) -> MetadataKey:
        return KEYS[self.key.lower()]


@dataclass
class ParsedQuery:
    terms: list[Term] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)

    @property
    def names_index(self) -> bool:
        """Whether a term picks the ``_index`` (else only collected data, index "", matches)."""
        return any(term.metadata is INDEX_KEY for term in self.terms)


def parse_query(text: str) -> ParsedQuery:
    """Split a query into metadata terms and keywords.

    Shell-like quoting groups words (``"a b"``, ``key="a b"``); an unbalanced quote falls back to
    splitting on whitespace rather than refusing the query. ``key=value`` with an unknown key or an
    empty value is a keyword.
    """
    try:
        tokens = shlex.split(text or "")
    except ValueError:
        tokens = (text or "").split()
    parsed = ParsedQuery()
    for token in tokens:
        key, sep, value = token.partition("=")
        if sep and key.lower() in KEYS and value:
            parsed.terms.append(Term(key, value))
        elif token:
            parsed.keywords.append(token)
    return parsed


def term_text(key: str, value) -> str:
    """The query text of a term, quoted when needed so that :func:`parse_query` reads it back."""
    value = str(value)
    if not _NEEDS_QUOTES.search(value):
        return f"{key}={value}"
    # Inside double quotes shlex treats a backslash as an escape only before " and \.
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return f'{key}="{escaped}"'


# --- wildcards --------------------------------------------------------------------------------
def fold(text: str) -> str:
    """Lower-case ASCII letters only: the case rule of every comparison in the language."""
    return text.translate(_ASCII_LOWER)


def collapse_stars(pattern: str) -> str:
    """``a***b`` -> ``a*b``: the same language, and fewer wildcards for the database to try."""
    return _STARS.sub(WILDCARD, pattern)


def to_like(pattern: str) -> str:
    """A ``LIKE`` pattern (escape ``\\``) for a wildcard pattern, ASCII-folded; ``*`` -> ``%``."""
    parts = []
    for part in fold(collapse_stars(pattern)).split(WILDCARD):
        for char in (LIKE_ESCAPE, "%", "_"):
            part = part.replace(char, LIKE_ESCAPE + char)
        parts.append(part)
    return "%".join(parts)


def wildcard_match(pattern: str, value: str) -> bool:
    """Whether ``value`` matches the whole wildcard ``pattern`` (ASCII case ignored).

    The first part must start the value and the last end it; the parts between are found left to
    right, each at its first place after the previous one. Taking the first place is always safe
    (a later place leaves less room for what follows), so there is no backtracking.
    """
    parts = fold(collapse_stars(pattern)).split(WILDCARD)
    value = fold(value)
    if len(parts) == 1:
        return value == parts[0]
    first, *middle, last = parts
    if len(value) < len(first) + len(last) or not value.startswith(first):
        return False
    if not value.endswith(last):
        return False
    position, end = len(first), len(value) - len(last)
    for part in middle:
        found = value.find(part, position, end)
        if found < 0:
            return False
        position = found + len(part)
    return True


class Like(Lookup):
    """``lhs LIKE rhs ESCAPE '\\'`` with ASCII letters folded on both sides.

    Used as an expression (``Q(Like(F("name"), to_like("ab*")))``), never registered on fields.
    SQLite's ``LIKE`` already ignores the case of ASCII letters and only those; PostgreSQL folds
    the column with ``translate`` to get the same rule (its ``ILIKE`` and ``UPPER`` follow the
    locale, which SQLite and :func:`matches` cannot). The right-hand side must come from
    :func:`to_like`, already folded.
    """

    lookup_name = "search_like"
    prepare_rhs = False

    def as_sql(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        sql = f"translate({lhs}, %s, %s) LIKE {rhs} ESCAPE '{LIKE_ESCAPE}'"
        params = (*lhs_params, string.ascii_uppercase, string.ascii_lowercase, *rhs_params)
        return sql, params

    def as_sqlite(self, compiler, connection):
        lhs, lhs_params = self.process_lhs(compiler, connection)
        rhs, rhs_params = self.process_rhs(compiler, connection)
        return f"{lhs} LIKE {rhs} ESCAPE '{LIKE_ESCAPE}'", (*lhs_params, *rhs_params)


# A condition no row meets. Text holding NUL gets it: no stored text has NUL (PostgreSQL cannot
# store it), and PostgreSQL refuses to even compare with it, which would answer 500.
NOTHING = Q(pk__in=[])


def wildcard_q(column: str, pattern: str) -> Q:
    """Rows whose ``column`` matches the whole wildcard ``pattern`` (see :func:`wildcard_match`)."""
    if "\x00" in pattern:
        return NOTHING
    pattern = collapse_stars(pattern)
    if pattern == WILDCARD:
        return Q()
    return Q(Like(F(column), to_like(pattern)))


def name_search_q(query: str, *columns: str) -> Q:
    """The list pages' name search: ``query`` anywhere in any of ``columns``, or, ending with
    ``*``, at the beginning only (``soph*``). Other ``*`` are wildcards too."""
    pattern = query if query.endswith(WILDCARD) else f"{WILDCARD}{query}{WILDCARD}"
    return reduce(lambda a, b: a | b, (wildcard_q(column, pattern) for column in columns))


# --- a parsed query over messages ---------------------------------------------------------------
def term_q(term: Term) -> Q:
    key = term.metadata
    if key is INDEX_KEY:
        # The index is partial (records with an index name only); SQLite uses it only when the
        # query repeats its condition.
        if "\x00" in term.value:
            return NOTHING
        return Q() if term.value == WILDCARD else Q(index=term.value) & ~Q(index="")
    return reduce(lambda a, b: a | b, (wildcard_q(column, term.value) for column in key.columns))


def keyword_pattern(keyword: str) -> str:
    return f"{WILDCARD}{keyword}{WILDCARD}"


def query_q(parsed: ParsedQuery) -> Q:
    """The condition on ``Message`` rows of every term and keyword of ``parsed``."""
    condition = Q() if parsed.names_index else Q(index="")
    for term in parsed.terms:
        condition &= term_q(term)
    for keyword in parsed.keywords:
        condition &= wildcard_q(KEYWORD_COLUMN, keyword_pattern(keyword))
    return condition


def filter_messages(queryset: QuerySet, parsed: ParsedQuery) -> QuerySet:
    """``queryset`` (of ``Message``) narrowed to the messages ``parsed`` matches; no ordering."""
    return queryset.filter(query_q(parsed))


def _get(message, column: str) -> str:
    value = message.get(column) if isinstance(message, Mapping) else getattr(message, column, None)
    return "" if value is None else str(value)


def matches(parsed: ParsedQuery, message) -> bool:
    """Whether one message matches ``parsed``, exactly as :func:`filter_messages` would decide.

    ``message`` is a ``Message`` (saved or not) or a mapping with its column names (``index``,
    ``stream``, ``tenant_id``, ``raw``...); a missing column counts as empty.
    """
    if not parsed.names_index and _get(message, "index") != "":
        return False
    for term in parsed.terms:
        key = term.metadata
        if key is INDEX_KEY:
            index = _get(message, "index")
            if term.value != WILDCARD and (index == "" or index != term.value):
                return False
        elif not any(wildcard_match(term.value, _get(message, c)) for c in key.columns):
            return False
    raw = _get(message, KEYWORD_COLUMN) if parsed.keywords else ""
    return all(wildcard_match(keyword_pattern(keyword), raw) for keyword in parsed.keywords)


# --- bounded database time ----------------------------------------------------------------------
class SearchTimeout(Exception):
    """The database work inside :func:`time_limit` ran past its budget and was stopped."""

    def __init__(self, seconds: float):
        super().__init__(f"stopped after {seconds:g} s")
        self.seconds = seconds


# SQLite calls the progress handler every this many virtual-machine instructions: often enough to
# stop within a millisecond, rarely enough to cost nothing measurable.
PROGRESS_INSTRUCTIONS = 1000
_QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout


@contextmanager
def time_limit(seconds: float, using: str = DEFAULT_DB_ALIAS) -> Iterator[None]:
    """Stop the queries run inside after ``seconds`` of database time; raise :class:`SearchTimeout`.

    Evaluate querysets inside the block. On PostgreSQL the block runs in a transaction (a savepoint
    when one is open) with ``statement_timeout`` set locally, and the previous value is put back
    afterwards, so an enclosing transaction keeps its own. On SQLite a progress handler interrupts
    the running statement once the deadline passes, and is removed on the way out. A stopped
    statement is read-only work here, so nothing needs undoing.
    """
    connection = connections[using]
    if connection.vendor == "postgresql":
        try:
            with transaction.atomic(using=using), connection.cursor() as cursor:
                milliseconds = str(max(1, round(seconds * 1000)))
                cursor.execute(
                    "SELECT current_setting('statement_timeout'), "
                    "set_config('statement_timeout', %s, true)",
                    [milliseconds],
                )
                previous = cursor.fetchone()[0]
                yield
                cursor.execute("SELECT set_config('statement_timeout', %s, true)", [previous])
        except OperationalError as exc:
            cause = exc.__cause__
            code = getattr(cause, "sqlstate", None) or getattr(cause, "pgcode", None)
            if code == _QUERY_CANCELED:
                raise SearchTimeout(seconds) from exc
            raise
    elif connection.vendor == "sqlite":
        connection.ensure_connection()
        database = connection.connection
        deadline = time.monotonic() + seconds
        stopped = False

        def progress() -> int:
            nonlocal stopped
            stopped = time.monotonic() >= deadline
            return int(stopped)

        database.set_progress_handler(progress, PROGRESS_INSTRUCTIONS)
        try:
            yield
        except OperationalError as exc:
            if stopped:
                raise SearchTimeout(seconds) from exc
            raise
        finally:
            database.set_progress_handler(None, 0)
    else:
        yield
