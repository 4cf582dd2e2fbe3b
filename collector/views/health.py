"""The Health Events table and the health status page."""

import datetime as dt

from django import forms
from django.contrib.auth.decorators import permission_required
from django.db.models import Count, F, Min, TextField
from django.db.models.functions import Cast
from django.shortcuts import render
from django.utils import timezone

from collector.choices import (
    DATA_GAP_EVENT,
    STATE_LOOK,
    ErrorType,
    Severity,
    SourceState,
)
from collector.cluster import cluster_summary
from collector.delivery.retention import DATA_LOSS_EVENT
from collector.models import Destination, HealthEvent, Source
from collector.status import (
    delivery_figures,
    open_events_by_destination,
    open_events_by_source,
)
from collector.views.base import paginate

WITHIN = {
    "1h": dt.timedelta(hours=1),
    "24h": dt.timedelta(hours=24),
    "7d": dt.timedelta(days=7),
    "30d": dt.timedelta(days=30),
}
WITHIN_CHOICES = [
    ("", "Any time"),
    ("1h", "Last hour"),
    ("24h", "Last 24 hours"),
    ("7d", "Last 7 days"),
    ("30d", "Last 30 days"),
]
EVENT_SORTS = {
    "severity": "severity",
    "resource": "resource_name",
    "event": "event_name",
    "type": "resource_type",
    "opened": "first_seen",
    "seen": "last_seen",
    "count": "count",
    "resolved": "resolved_at",
}


class EventFilterForm(forms.Form):
    """The column filters of the Health Events table (a GET form; every field optional)."""

    status = forms.ChoiceField(
        choices=[("open", "Open"), ("resolved", "Resolved"), ("all", "All")], required=False
    )
    severity = forms.ChoiceField(choices=[("", "Any")] + Severity.choices, required=False)
    resource = forms.CharField(required=False, max_length=128)
    resource_id = forms.CharField(required=False, max_length=64)
    event = forms.ChoiceField(
        choices=[("", "Any")]
        + [(e.event_name, e.event_name) for e in ErrorType]
        + [(DATA_GAP_EVENT, DATA_GAP_EVENT), (DATA_LOSS_EVENT, DATA_LOSS_EVENT)],
        required=False,
    )
    type = forms.ChoiceField(
        choices=[
            ("", "Any"),
            ("Source", "Source"),
            ("Collector", "Collector"),
            (Destination.RESOURCE_TYPE, Destination.RESOURCE_TYPE),
        ],
        required=False,
    )
    opened = forms.ChoiceField(choices=WITHIN_CHOICES, required=False)
    seen = forms.ChoiceField(choices=WITHIN_CHOICES, required=False)
    count = forms.IntegerField(required=False, min_value=1, label="Count at least")
    details = forms.CharField(required=False, max_length=200)
    sort = forms.CharField(required=False, max_length=20)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name, field in self.fields.items():
            css = "form-select" if isinstance(field, forms.ChoiceField) else "form-control"
            # The inputs sit in the table's header row; form= ties them to the one GET form.
            field.widget.attrs.update(
                {
                    "class": f"{css} {css}-sm",
                    "form": "event-filters",
                    "id": f"filter-{name}",
                    "aria-label": f"Filter by {field.label or name}",
                }
            )
        self.fields["resource"].widget.attrs["placeholder"] = "Name contains"
        self.fields["details"].widget.attrs["placeholder"] = "Text contains"
        self.fields["count"].widget.attrs["placeholder"] = "≥"


def filter_events(data: dict):
    """Health events per the filter form's cleaned data, sorted; invalid values are ignored."""
    now = timezone.now()
    events = HealthEvent.objects.all()
    status = data.get("status") or "open"
    if status == "open":
        events = events.filter(resolved_at__isnull=True)
    elif status == "resolved":
        events = events.filter(resolved_at__isnull=False)
    if data.get("severity"):
        events = events.filter(severity=data["severity"])
    if data.get("resource"):
        events = events.filter(resource_name__icontains=data["resource"])
    if data.get("resource_id"):
        events = events.filter(resource_id=data["resource_id"])
    if data.get("event"):
        events = events.filter(event_name=data["event"])
    if data.get("type"):
        events = events.filter(resource_type=data["type"])
    if data.get("opened"):
        events = events.filter(first_seen__gte=now - WITHIN[data["opened"]])
    if data.get("seen"):
        events = events.filter(last_seen__gte=now - WITHIN[data["seen"]])
    if data.get("count"):
        events = events.filter(count__gte=data["count"])
    if data.get("details"):
        events = events.annotate(details_text=Cast("details", TextField())).filter(
            details_text__icontains=data["details"]
        )
    sort = data.get("sort") or "-seen"
    key = EVENT_SORTS.get(sort.lstrip("-"), "last_seen")
    order = F(key).desc(nulls_last=True) if sort.startswith("-") else F(key).asc(nulls_last=True)
    return events.order_by(order, "-id"), status, sort


@permission_required("collector.view_healthevent", raise_exception=True)
def health_events(request):
    """Open (or resolved) health events with a filter per column, sortable, 50 a page."""
    form = EventFilterForm(request.GET or None)
    data = form.cleaned_data if form.is_bound and form.is_valid() else {}
    events, status, sort = filter_events(data)
    page = paginate(request, events)
    page.object_list = list(page.object_list)
    _link_destinations(page.object_list)
    counts = dict(
        HealthEvent.objects.filter(resolved_at__isnull=True)
        .values_list("severity")
        .annotate(n=Count("id"))
    )
    columns = [
        ("severity", "Severity"),
        ("resource", "Resource name"),
        ("event", "Event name"),
        ("type", "Resource type"),
        ("opened", "Opened"),
        ("seen", "Last seen"),
        ("count", "Count"),
    ]
    if status != "open":
        columns.append(("resolved", "Resolved"))
    return render(
        request,
        "collector/health_events.html",
        {
            "form": form,
            "page": page,
            "status": status,
            "sort": sort,
            "columns": columns,
            "open_counts": counts,
            "open_total": sum(counts.values()),
            "resource_id": data.get("resource_id", ""),
        },
    )


def _link_destinations(events) -> None:
    """Mark the events of destinations that still exist (``destination_pk``), so the page links
    them; one query for the page."""
    ids = {
        int(e.resource_id)
        for e in events
        if e.resource_type == Destination.RESOURCE_TYPE and e.resource_id.isdigit()
    }
    existing = (
        set(Destination.objects.filter(pk__in=ids).values_list("pk", flat=True)) if ids else set()
    )
    for event in events:
        pk = int(event.resource_id) if event.resource_id.isdigit() else None
        is_destination = event.resource_type == Destination.RESOURCE_TYPE
        event.destination_pk = pk if is_destination and pk in existing else None


# --- health status ----------------------------------------------------------------------------
STATUS_SORTS = {
    "name": ("name",),
    "collector": ("collector__name", "name"),
    "state": ("state", "name"),
    "success": ("last_success_at", "name"),
    "lag": ("oldest_data", "name"),
}


@permission_required("collector.view_source", raise_exception=True)
def health_status(request):
    """Counts of sources by state, open events by severity, and each source's last successful
    collection and lag (how old the oldest checkpoint's newest data is)."""
    by_state = dict(Source.objects.values_list("state").annotate(n=Count("id")))
    states = [(state, STATE_LOOK[state], by_state.get(state, 0)) for state in SourceState.values]
    severities = dict(
        HealthEvent.objects.filter(resolved_at__isnull=True)
        .values_list("severity")
        .annotate(n=Count("id"))
    )
    sort = request.GET.get("sort") or "lag"
    ordering = STATUS_SORTS.get(sort.lstrip("-"), STATUS_SORTS["lag"])
    descending = sort.startswith("-")
    sources = (
        Source.objects.select_related("collector")
        .defer("secret_encrypted", "config", "collector__fields")
        .annotate(oldest_data=Min("checkpoints__data_until"))
        .order_by(
            *[
                (F(key).desc(nulls_last=True) if descending else F(key).asc(nulls_first=True))
                for key in ordering
            ]
        )
    )
    page = paginate(request, sources)
    page.object_list = list(page.object_list)
    events = open_events_by_source([s.pk for s in page.object_list])
    for source in page.object_list:
        source.open_events = events.get(source.pk, [])
    return render(
        request,
        "collector/health_status.html",
        {
            "states": states,
            "total": sum(by_state.values()),
            "severities": [(s, severities.get(s, 0)) for s in Severity.values],
            "page": page,
            "sort": sort,
            "sort_columns": [
                ("name", "Source"),
                ("collector", "Collector"),
                ("state", "State"),
                ("success", "Last successful collection"),
                ("lag", "Behind"),
            ],
            "cluster": cluster_summary(),
            "destinations": _destination_rows(request.user),
        },
    )


def _destination_rows(user) -> list[Destination] | None:
    """Every destination with its open events and delivery figures (None without the view
    permission): a fixed number of queries plus two bounded backlog queries per destination."""
    if not user.has_perm("collector.view_destination"):
        return None
    rows = list(Destination.objects.defer("secret_encrypted", "config").order_by("name"))
    events = open_events_by_destination([d.pk for d in rows])
    figures = delivery_figures(rows)
    for destination in rows:
        destination.open_events = events.get(destination.pk, [])
        destination.figures = figures[destination.pk]
    return rows
