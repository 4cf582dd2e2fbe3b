"""Log Search: collected messages (and health-event log records) by metadata, time and keywords.

A query is Sumo-like text: ``key=value`` terms for metadata (``*`` is a wildcard) and free
keywords, all combined with AND, for example
``_sourceCategory=sophos/* _sourceName=Alerts tenant=Acme* malware``.
Health-event records live in ``_index=sumologic_system_events``; without an ``_index`` term only
collected data is searched (``_index=*`` searches everything).
"""

import datetime as dt
import re
import shlex
from dataclasses import dataclass, field

from django import forms
from django.contrib.auth.decorators import permission_required
from django.db.models import Q
from django.shortcuts import render
from django.utils import timezone

from collector.choices import SYSTEM_EVENTS_INDEX
from collector.models import Message

PER_PAGE = 50
MAX_PAGE = 200
# Query key (lower case) -> (column, label shown in the help).
KEYS = {
    "_sourcecategory": "source_category",
    "_source": "source_name",
    "_collector": "collector_name",
    "_sourcename": "stream",
    "_siemeventid": "siem_event_id",
    "_index": "index",
    "tenant": "tenant",
}
RANGES = {
    "15m": ("Last 15 minutes", dt.timedelta(minutes=15)),
    "1h": ("Last hour", dt.timedelta(hours=1)),
    "6h": ("Last 6 hours", dt.timedelta(hours=6)),
    "24h": ("Last 24 hours", dt.timedelta(hours=24)),
    "7d": ("Last 7 days", dt.timedelta(days=7)),
    "30d": ("Last 30 days", dt.timedelta(days=30)),
}
LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


@dataclass
class ParsedQuery:
    terms: list[tuple[str, str]] = field(default_factory=list)  # (key as typed, value)
    keywords: list[str] = field(default_factory=list)


def parse_query(text: str) -> ParsedQuery:
    """Split a query into metadata terms and keywords; quotes group words ("a b", key="a b")."""
    try:
        tokens = shlex.split(text or "")
    except ValueError:  # an unbalanced quote: fall back to plain words rather than refuse
        tokens = (text or "").split()
    parsed = ParsedQuery()
    for token in tokens:
        key, sep, value = token.partition("=")
        if sep and key.lower() in KEYS and value:
            parsed.terms.append((key, value))
        elif token:
            parsed.keywords.append(token)
    return parsed


def wildcard_q(column: str, pattern: str) -> Q:
    """Case-insensitive match of ``column`` with ``*`` as "any characters"."""
    if "*" not in pattern:
        return Q(**{f"{column}__iexact": pattern})
    if set(pattern) == {"*"}:
        return Q()
    inner = pattern.strip("*")
    if "*" not in inner:
        if pattern.startswith("*") and pattern.endswith("*"):
            return Q(**{f"{column}__icontains": inner})
        if pattern.endswith("*"):
            return Q(**{f"{column}__istartswith": inner})
        return Q(**{f"{column}__iendswith": inner})
    regex = "^" + ".*".join(re.escape(part) for part in pattern.split("*")) + "$"
    return Q(**{f"{column}__iregex": regex})


def term_q(key: str, value: str) -> Q:
    column = KEYS[key.lower()]
    if column == "tenant":
        return wildcard_q("tenant_id", value) | wildcard_q("tenant_name", value)
    if column == "index":
        # The index is partial (records with an index name only); SQLite uses it only when the
        # query repeats its condition.
        return Q() if value == "*" else Q(index=value) & ~Q(index="")
    return wildcard_q(column, value)


def term(key: str, value) -> str:
    """A query term for a metadata value, quoted when it has spaces (for the metadata links)."""
    value = str(value)
    return f'{key}="{value}"' if re.search(r"\s", value) else f"{key}={value}"


class SearchForm(forms.Form):
    q = forms.CharField(required=False, max_length=1000)
    range = forms.ChoiceField(
        choices=[(k, v[0]) for k, v in RANGES.items()] + [("custom", "Custom range")],
        required=False,
    )
    start = forms.DateTimeField(required=False, input_formats=LOCAL_FORMATS)
    end = forms.DateTimeField(required=False, input_formats=LOCAL_FORMATS)
    page = forms.IntegerField(required=False, min_value=1, max_value=MAX_PAGE)


def search_messages(parsed: ParsedQuery, start: dt.datetime, end: dt.datetime):
    """Messages in ``[start, end]`` matching every term and keyword, newest first."""
    messages = Message.objects.filter(message_time__gte=start, message_time__lte=end)
    if not any(key.lower() == "_index" for key, _ in parsed.terms):
        messages = messages.filter(index="")
    for key, value in parsed.terms:
        messages = messages.filter(term_q(key, value))
    for keyword in parsed.keywords:
        messages = messages.filter(raw__icontains=keyword)
    return messages.order_by("-message_time", "-id")


def _metadata(message: Message) -> list[tuple[str, str]]:
    pairs = [
        ("_source", message.source_name),
        ("_sourceCategory", message.source_category),
        ("_collector", message.collector_name),
        ("_sourceName", message.stream),
        ("tenant", message.tenant_name or message.tenant_id),
        ("_siemEventID", message.siem_event_id),
        ("_index", message.index),
    ]
    return [(key, value) for key, value in pairs if value]


@permission_required("collector.view_message", raise_exception=True)
def log_search(request):
    """Newest first, 50 a page; no COUNT over the message table (a page knows only if another
    follows), so the query count and cost stay fixed however many messages match."""
    form = SearchForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    parsed = parse_query(data.get("q", ""))
    now = timezone.now()
    chosen = data.get("range") or "24h"
    if chosen == "custom":
        start = data.get("start") or now - RANGES["24h"][1]
        end = data.get("end") or now
    else:
        start, end = now - RANGES[chosen][1], now
    number = data.get("page") or 1
    offset = (number - 1) * PER_PAGE
    rows = list(search_messages(parsed, start, end)[offset : offset + PER_PAGE + 1])
    has_next = len(rows) > PER_PAGE and number < MAX_PAGE
    rows = rows[:PER_PAGE]
    for message in rows:
        message.metadata = [(k, v, term(k, v)) for k, v in _metadata(message)]
    return render(
        request,
        "collector/log_search.html",
        {
            "form": form,
            "query": data.get("q", ""),
            "range": chosen,
            "ranges": [(k, v[0]) for k, v in RANGES.items()],
            "start": start,
            "end": end,
            "rows": rows,
            "keywords": parsed.keywords,
            "terms": parsed.terms,
            "page_number": number,
            "has_next": has_next,
            "has_previous": number > 1,
            "first_index": offset + 1,
            "last_index": offset + len(rows),
            "system_index": SYSTEM_EVENTS_INDEX,
            "examples": [
                "_sourceCategory=sophos/*",
                "_sourceName=Alerts malware",
                "_siemEventID=runtimeDetections",
                f"_index={SYSTEM_EVENTS_INDEX}",
            ],
        },
    )
