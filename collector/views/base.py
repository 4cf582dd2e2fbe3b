"""Helpers shared by the page modules: pagination, id lists, source kinds by slug, time ranges."""

import datetime as dt
import re
from collections import defaultdict

from django.contrib.staticfiles import finders
from django.core.paginator import Paginator
from django.db.models import Sum
from django.http import Http404
from django.utils import timezone
from django.utils.text import slugify

from collector.buckets import BUCKET, bucket_floor
from collector.kinds import all_kinds, get_kind
from collector.models import IngestBucket

PAGE_SIZE = 50


def paginate(request, queryset, per_page: int = PAGE_SIZE):
    """The requested page of ``queryset`` (out-of-range page numbers give the last page)."""
    return Paginator(queryset, per_page).get_page(request.GET.get("page"))


# The largest id either database stores (a signed 64-bit integer).
MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() also accepts "²" (which int() refuses) and "٣" (which int()
# reads as 3); up to 19 of them, and the value is checked against MAX_ID as well.
ID_RE = re.compile(r"[0-9]{1,19}")


def parse_ids(text: str, limit: int = 1000) -> list[int]:
    """Integer ids from ``"1,2,3"``; anything that is not an id a row could have is ignored.

    An id past the database's integer range must not reach a query: ``pk__in`` with one
    overflows (Django guards exact lookups, not ``in``)."""
    ids = []
    for part in (text or "").split(","):
        part = part.strip()
        if ID_RE.fullmatch(part) and int(part) <= MAX_ID:
            ids.append(int(part))
        if len(ids) >= limit:
            break
    return ids


# --- source kinds -----------------------------------------------------------------------------
def kind_slug(kind) -> str:
    return slugify(kind.name)


def kind_by_slug(slug: str):
    for kind in all_kinds():
        if kind_slug(kind) == slug:
            return kind
    raise Http404("No such source kind.")


def kind_icon(kind) -> str:
    """Static path of a kind's tile icon; a generic one when the kind has none."""
    if kind.icon and finders.find(kind.icon):
        return kind.icon
    return "collector/img/source-tile.svg"


def kind_tiles() -> list[dict]:
    return [
        {"kind": kind, "slug": kind_slug(kind), "icon": kind_icon(kind)} for kind in all_kinds()
    ]


# --- ingest buckets ---------------------------------------------------------------------------
def last_hour_series(source_ids) -> dict[int, list[int]]:
    """Items per 5-minute bucket over the last hour (12 values, oldest first) per source.

    One query over IngestBucket, whatever the number of sources; sources without data get zeros.
    """
    newest = bucket_floor(timezone.now())
    oldest = newest - 11 * BUCKET
    series: dict[int, list[int]] = defaultdict(lambda: [0] * 12)
    ids = list(source_ids)
    if not ids:
        return series
    rows = (
        IngestBucket.objects.filter(source_id__in=ids, start__gte=oldest)
        .values("source_id", "start")
        .annotate(items=Sum("items"))
    )
    for row in rows:
        slot = int((row["start"] - oldest) / BUCKET)
        if 0 <= slot < 12:
            series[row["source_id"]][slot] += row["items"]
    return series


def kind_streams(kind_name: str):
    """The streams of a kind with their chart colours (none for a kind no longer installed)."""
    try:
        return get_kind(kind_name).streams
    except LookupError:
        return ()


def hourly_series(source_id: int, kind_name: str, hours: int = 24) -> list[dict]:
    """Items per hour and stream over the last ``hours`` hours (oldest first), for the chart;
    every stream of the source's kind has a count in every hour."""
    now = timezone.now()
    newest = now.replace(minute=0, second=0, microsecond=0)
    oldest = newest - dt.timedelta(hours=hours - 1)
    names = [stream.name for stream in kind_streams(kind_name)]
    result = [
        {"start": oldest + dt.timedelta(hours=i), "counts": dict.fromkeys(names, 0)}
        for i in range(hours)
    ]
    rows = IngestBucket.objects.filter(source_id=source_id, start__gte=oldest).values_list(
        "stream", "start", "items"
    )
    for stream, start, items in rows:
        slot = int((start - oldest) / dt.timedelta(hours=1))
        if 0 <= slot < hours:
            counts = result[slot]["counts"]
            counts[stream] = counts.get(stream, 0) + items
    return result
