"""Log Search: collected messages (and health-event log records) by metadata, time and keywords.

The query language is :mod:`collector.search`; this view reads the request, picks the time range,
pages the results and renders them, inside the search time budget.
"""

import datetime as dt
import logging

from django import forms
from django.conf import settings
from django.contrib.auth.decorators import permission_required
from django.shortcuts import render
from django.utils import timezone

from collector.choices import SYSTEM_EVENTS_INDEX
from collector.models import Message
from collector.search import (
    KEYS,
    ParsedQuery,
    SearchTimeout,
    filter_messages,
    parse_query,
    term_text,
    time_limit,
)

logger = logging.getLogger(__name__)

PER_PAGE = 50
MAX_PAGE = 200
RANGES = {
    "15m": ("Last 15 minutes", dt.timedelta(minutes=15)),
    "1h": ("Last hour", dt.timedelta(hours=1)),
    "6h": ("Last 6 hours", dt.timedelta(hours=6)),
    "24h": ("Last 24 hours", dt.timedelta(hours=24)),
    "7d": ("Last 7 days", dt.timedelta(days=7)),
    "30d": ("Last 30 days", dt.timedelta(days=30)),
}
LOCAL_FORMATS = ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d %H:%M:%S"]


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
    return filter_messages(messages, parsed).order_by("-message_time", "-id")


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
    budget = settings.SEARCH_TIMEOUT_SECONDS
    timed_out = False
    try:
        with time_limit(budget):
            rows = list(search_messages(parsed, start, end)[offset : offset + PER_PAGE + 1])
    except SearchTimeout:
        # A page that says what happened, not a 500: the budget exists so that one search cannot
        # hold a web worker, and the user can narrow the search and try again.
        timed_out, rows = True, []
        logger.warning(
            "Log Search stopped after %g s: user=%s q=%r range=%s page=%s",
            budget,
            request.user.get_username(),
            data.get("q", ""),
            chosen,
            number,
        )
    has_next = len(rows) > PER_PAGE and number < MAX_PAGE
    rows = rows[:PER_PAGE]
    for message in rows:
        message.metadata = [(k, v, term_text(k, v)) for k, v in _metadata(message)]
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
            # What to mark in the text: a keyword's fixed parts (``mal*re`` marks mal and re).
            "keywords": [part for k in parsed.keywords for part in k.split("*") if part],
            "terms": parsed.terms,
            "keys": [key.name for key in KEYS.values()],
            "timed_out": timed_out,
            "budget": budget,
            "page_number": number,
            "has_next": has_next,
            "has_previous": number > 1,
            "first_index": offset + 1,
            "last_index": offset + len(rows),
            "system_index": SYSTEM_EVENTS_INDEX,
            "examples": [
                "_sourceCategory=security/*",
                "_sourceName=Alerts malware",
                "_siemEventID=runtimeDetections",
                f"_index={SYSTEM_EVENTS_INDEX}",
            ],
        },
    )
