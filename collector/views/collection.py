"""The Collection page (hosted collectors and their sources), its live-status JSON, and the
Add/Edit/Delete pages of hosted collectors."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Prefetch, Q
from django.http import JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from collector import services
from collector.choices import Health
from collector.forms import CollectorForm
from collector.models import Collector, Source
from collector.search import name_search_q
from collector.services import ServiceError
from collector.status import health_of, open_events_by_source, status_payload
from collector.views.base import last_hour_series, paginate, parse_ids

COLLECTORS_PER_PAGE = 50


@permission_required("collector.view_collector", raise_exception=True)
def collection(request):
    """Collectors (50 a page) with their sources, health icons and last-hour counts.

    A fixed number of queries whatever the number of rows: the page of collectors, one prefetch of
    their sources, one query of open health events and one of ingest buckets.
    """
    query = request.GET.get("q", "").strip()
    sources = Source.objects.defer("secret_encrypted", "config").order_by("name")
    collectors = Collector.objects.all()
    if query:
        matching = services.search_sources(query)
        by_collector = name_search_q(query, "name", "category")
        collectors = collectors.filter(
            by_collector | Q(pk__in=matching.values("collector_id"))
        ).distinct()
        sources = sources.filter(
            Q(pk__in=matching.values("pk"))
            | Q(collector__in=Collector.objects.filter(by_collector))
        )
    collectors = collectors.prefetch_related(
        Prefetch("sources", queryset=sources, to_attr="visible_sources")
    )
    page = paginate(request, collectors, COLLECTORS_PER_PAGE)
    page.object_list = list(page.object_list)
    source_ids = [s.pk for c in page.object_list for s in c.visible_sources]
    events = open_events_by_source(source_ids)
    series = last_hour_series(source_ids)
    for collector in page.object_list:
        collector.last_hour = 0
        collector.problems = 0
        for source in collector.visible_sources:
            source.open_events = events.get(source.pk, [])
            source.spark = series[source.pk]
            source.last_hour = sum(source.spark)
            collector.last_hour += source.last_hour
            if health_of(source.state, source.open_events) in (Health.ERROR, Health.WARNING):
                collector.problems += 1
    return render(
        request,
        "collector/collection.html",
        {"page": page, "query": query, "source_count": len(source_ids)},
    )


@require_GET
@never_cache
@permission_required("collector.view_source", raise_exception=True)
def status_json(request):
    """``GET ?ids=1,2,3`` -> ``{"sources": {"1": {state, stateLabel, health, label, icon, colour,
    tooltip}}}`` for the icons on a page; two queries whatever the number of ids (at most 1000)."""
    ids = parse_ids(request.GET.get("ids", ""))
    events = open_events_by_source(ids)
    rows = Source.objects.filter(pk__in=ids).only("id", "state", "state_detail")
    return JsonResponse(
        {"sources": {str(s.pk): status_payload(s, events.get(s.pk, [])) for s in rows}}
    )


# --- hosted collectors ------------------------------------------------------------------------
@permission_required("collector.add_collector", raise_exception=True)
def collector_add(request):
    form = CollectorForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            collector = services.create_collector(cleaned=form.cleaned_data, user=request.user)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Collector {collector.name} created. Add a source to it.")
            return redirect(f"{reverse('collector:collection')}#collector-{collector.pk}")
    return render(request, "collector/collector_form.html", {"form": form})


@permission_required("collector.change_collector", raise_exception=True)
def collector_edit(request, pk):
    collector = get_object_or_404(Collector, pk=pk)
    form = CollectorForm(request.POST or None, instance=collector)
    if request.method == "POST" and form.is_valid():
        try:
            services.update_collector(collector=collector, cleaned=form.cleaned_data)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Collector {collector.name} saved.")
            return redirect(f"{reverse('collector:collection')}#collector-{collector.pk}")
    return render(request, "collector/collector_form.html", {"form": form, "collector": collector})


@permission_required("collector.delete_collector", raise_exception=True)
def collector_delete(request, pk):
    collector = get_object_or_404(Collector, pk=pk)
    if request.method == "POST":
        name = collector.name
        services.delete_collector(collector=collector)
        messages.success(request, f"Collector {name} and its sources were deleted.")
        return redirect("collector:collection")
    sources = collector.sources.only("id", "name").order_by("name")
    return render(
        request, "collector/collector_delete.html", {"collector": collector, "sources": sources}
    )
