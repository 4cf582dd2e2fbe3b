"""Source pages: the kind picker, Add and Edit forms, Test connection, the source page with its
timeline, checkpoints, runs and chart, the JSON view, and the lifecycle actions.

The stored secret never reaches the browser: forms render the secret field empty, the JSON
view shows ``********``, and Test connection on an edit uses the stored secret on the server.
"""

import datetime as dt
import json

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Count, F, Min, Sum
from django.http import Http404, HttpResponse, HttpResponseRedirect, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from collector import services
from collector.choices import SourceState
from collector.forms import CheckpointResetForm, source_form_class
from collector.kinds import get_kind
from collector.models import Collector, HealthEvent, Source
from collector.services import ServiceError
from collector.shapes import source_json as api_source_json
from collector.status import describe, status_payload
from collector.views.base import (
    hourly_series,
    kind_by_slug,
    kind_icon,
    kind_slug,
    kind_streams,
    kind_tiles,
    last_hour_series,
)
from collector.views.destinations import siem_destinations, source_deliveries

SHOWN_CHECKPOINTS = 50
SHOWN_TENANTS = 20
KEEP_SECRET = "Leave blank to keep the current secret"
LIFECYCLE_STEPS = (
    SourceState.PENDING,
    SourceState.STARTED,
    SourceState.INITIALIZED,
    SourceState.AUTHENTICATED,
    SourceState.COLLECTING,
)


def source_document(source: Source) -> dict:
    """The source exactly as the Collector Management API shows it (the secret as ``********``)."""
    return {"source": api_source_json(source)}


def _form_context(form, collector, kind, source=None) -> dict:
    return {
        "form": form,
        "collector": collector,
        "kind": kind,
        "kind_icon": kind_icon(kind),
        "kind_slug": kind_slug(kind),
        "source": source,
        "siem_fields": [
            ("_siemVendor", kind.siem_vendor),
            ("_siemProduct", kind.siem_product),
            ("_siemFormat", "JSON"),
            ("_siemEventID", kind.siem_event_id_source),
        ],
        "siem_destinations": siem_destinations(),
    }


@permission_required("collector.add_source", raise_exception=True)
def source_kinds(request, pk):
    collector = get_object_or_404(Collector, pk=pk)
    return render(
        request, "collector/source_kinds.html", {"collector": collector, "tiles": kind_tiles()}
    )


def _form_class(kind_name: str):
    try:
        return source_form_class(kind_name)
    except LookupError:
        raise Http404("No form for this source kind.")


def _kind_of(source: Source):
    """The source's kind; a kind no longer installed is a 404 on the pages that need it."""
    try:
        return get_kind(source.kind)
    except LookupError:
        raise Http404(f"The source kind {source.kind!r} is not installed.")


@permission_required("collector.add_source", raise_exception=True)
def source_add(request, pk, kind):
    collector = get_object_or_404(Collector, pk=pk)
    source_kind = kind_by_slug(kind)
    form = _form_class(source_kind.name)(request.POST or None, collector=collector)
    if request.method == "POST" and form.is_valid():
        try:
            source = services.create_source(collector=collector, form=form, user=request.user)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Source {source.name} saved. Watch it start up below.")
            return redirect("collector:source_detail", pk=source.pk)
    return render(
        request, "collector/source_form.html", _form_context(form, collector, source_kind)
    )


def _editable_source(pk) -> Source:
    source = get_object_or_404(Source.objects.select_related("collector"), pk=pk)
    if source.state == SourceState.STOPPING:
        raise Http404("This source is being deleted.")
    return source


@permission_required("collector.change_source", raise_exception=True)
def source_edit(request, pk):
    source = _editable_source(pk)
    source_kind = _kind_of(source)
    form = _form_class(source.kind)(
        request.POST or None, instance=source, collector=source.collector
    )
    if form.secret_field in form.fields:
        form.fields[form.secret_field].widget.attrs["placeholder"] = KEEP_SECRET
    if request.method == "POST" and form.is_valid():
        try:
            services.update_source(source=source, form=form)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Source {source.name} saved; it starts again.")
            return redirect("collector:source_detail", pk=source.pk)
    return render(
        request,
        "collector/source_form.html",
        _form_context(form, source.collector, source_kind, source),
    )


# --- test connection --------------------------------------------------------------------------
def _connection_test(request, form, stored: Source | None) -> HttpResponse:
    """Answer the HTML fragment of a Test connection (collector.services.test_connection)."""
    test = services.test_connection(form=form, stored=stored)
    report = test.report
    context = {
        "problems": test.problems,
        "failure": test.failure,
        "report": report,
        "identity": report.identity if report else None,
        "regions": test.regions,
        "samples": [line for line, _item in test.samples],
        "error": report.error if report else None,
    }
    response = render(request, "collector/_connection_report.html", context)
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@permission_required("collector.add_source", raise_exception=True)
def source_test_new(request, pk, kind):
    """Test the credentials typed into the Add Source form (nothing is saved)."""
    collector = get_object_or_404(Collector, pk=pk)
    source_kind = kind_by_slug(kind)
    form = _form_class(source_kind.name)(request.POST, collector=collector)
    return _connection_test(request, form, None)


@require_POST
@permission_required("collector.change_source", raise_exception=True)
def source_test_existing(request, pk):
    """Test an Edit form's credentials; a blank secret means the stored one (used server-side)."""
    source = _editable_source(pk)
    form = _form_class(source.kind)(request.POST, instance=source, collector=source.collector)
    return _connection_test(request, form, source)


@require_GET
def fields_check(request):
    """``GET ?name=a&name=b`` -> ``{"fields": {"a": {"status", "message"}}}`` for the live check
    icons of the fields widget. Statuses: ``enabled``, ``builtin`` (green); ``missing``,
    ``disabled`` (orange, added or enabled on save when asked); ``invalid``. Field names are not
    sensitive, so any logged-in user may ask."""
    return JsonResponse({"fields": services.check_field_names(request.GET.getlist("name"))})


# --- the source page --------------------------------------------------------------------------
def lifecycle_steps(state: str, transitions) -> list[tuple[str, bool]]:
    """The start-up steps with whether each was reached in the current start (newest first).

    In a start-up state every step up to it is reached; in Error, Paused or Stopping, the steps
    the timeline shows since the latest Pending are.
    """
    if state in LIFECYCLE_STEPS:
        index = LIFECYCLE_STEPS.index(state)
        return [(step, i <= index) for i, step in enumerate(LIFECYCLE_STEPS)]
    reached = set()
    for transition in transitions:
        reached.add(transition.to_state)
        if transition.to_state == SourceState.PENDING:
            break
    return [(step, step in reached) for step in LIFECYCLE_STEPS]


@permission_required("collector.view_source", raise_exception=True)
def source_detail(request, pk):
    source = get_object_or_404(Source.objects.select_related("collector"), pk=pk)
    events = HealthEvent.objects.filter(resource_type="Source", resource_id=str(pk))
    open_events = list(events.filter(resolved_at__isnull=True).order_by("severity", "-last_seen"))
    past_events = list(events.filter(resolved_at__isnull=False).order_by("-resolved_at")[:10])
    # A credential that fans out may have hundreds of tenants: totals come from SQL, and the page lists
    # the most-behind checkpoints and the first tenants only.
    stored = source.checkpoints.aggregate(
        total=Sum("items_total"), oldest=Min("data_until"), count=Count("id")
    )
    checkpoints = list(
        source.checkpoints.order_by(F("data_until").asc(nulls_first=True), "stream", "tenant_id")[
            :SHOWN_CHECKPOINTS
        ]
    )
    # The implicit tenant of a kind without tenants (an empty id) is the source itself.
    listed_tenants = source.tenants.exclude(tenant_id="")
    tenants = list(listed_tenants.order_by("name", "tenant_id")[:SHOWN_TENANTS])
    names = {
        t.tenant_id: t
        for t in source.tenants.filter(tenant_id__in={c.tenant_id for c in checkpoints})
    }
    for checkpoint in checkpoints:
        checkpoint.tenant = names.get(checkpoint.tenant_id)
    last_hour = last_hour_series([pk])[pk]
    hours = hourly_series(pk, source.kind)
    transitions = list(source.transitions.all()[:30])
    health = describe(source, open_events)
    context = {
        "source": source,
        "collector": source.collector,
        "status_text": status_payload(source, open_events)["tooltip"],
        "open_events": open_events,
        "past_events": past_events,
        "transitions": transitions,
        "checkpoints": checkpoints,
        "checkpoint_count": stored["count"],
        "tenants": tenants,
        "tenant_count": listed_tenants.count(),
        "runs": source.runs.all()[:20],
        "spark": last_hour,
        "last_hour": sum(last_hour),
        "hours": hours,
        "streams": kind_streams(source.kind),
        "last_day": sum(sum(h["counts"].values()) for h in hours),
        "total": stored["total"] or 0,
        "oldest_data": stored["oldest"],
        "steps": lifecycle_steps(source.state, transitions),
        "extra_step": None
        if source.state in LIFECYCLE_STEPS
        else {"label": health.state_look.label, "colour": health.look.colour},
        "document": json.dumps(source_document(source), indent=2, ensure_ascii=False),
        "reset_form": CheckpointResetForm(source=source),
        "deliveries": source_deliveries(source),
    }
    return render(request, "collector/source_detail.html", context)


@never_cache
@permission_required("collector.view_source", raise_exception=True)
def source_timeline(request, pk):
    """The state timeline fragment, refreshed by status.js when the state changes."""
    source = get_object_or_404(Source.objects.only("id"), pk=pk)
    return render(
        request, "collector/_timeline.html", {"transitions": source.transitions.all()[:30]}
    )


@permission_required("collector.view_source", raise_exception=True)
def source_json(request, pk):
    """The JSON view (``?download=1`` for the file), the secret shown as ``********``."""
    source = get_object_or_404(Source.objects.select_related("collector"), pk=pk)
    document = source_document(source)
    if request.GET.get("download"):
        response = JsonResponse(document, json_dumps_params={"indent": 2})
        response["Content-Disposition"] = f'attachment; filename="source-{source.pk}.json"'
        return response
    return render(
        request,
        "collector/source_json.html",
        {"source": source, "document": json.dumps(document, indent=2, ensure_ascii=False)},
    )


# --- lifecycle actions ------------------------------------------------------------------------
ACTIONS = {
    "restart": (services.restart_source, "Source {} restarts now."),
    "pause": (services.pause_source, "Source {} is paused; its checkpoints are kept."),
    "resume": (services.resume_source, "Source {} resumes collecting."),
}


def _back(request, default: str):
    """Back to ``next`` (the path of the page the action was posted from), else ``default``."""
    target = request.POST.get("next", "")
    # A path on this site only, redirected to as it is: redirect() would take other text for a
    # view name to reverse, and a "next" of "0" answered 500.
    if target.startswith("/") and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return HttpResponseRedirect(target)
    return redirect(default)


@permission_required("collector.change_source", raise_exception=True)
@require_POST
def source_action(request, pk, action):
    if action not in ACTIONS:
        raise Http404("No such action.")
    source = _editable_source(pk)
    service, message = ACTIONS[action]
    service(source=source)
    messages.success(request, message.format(source.name))
    return _back(request, reverse("collector:source_detail", args=[source.pk]))


@permission_required("collector.change_source", raise_exception=True)
def source_checkpoint_reset(request, pk):
    """Reset checkpoint (collector.services.reset_checkpoint): the form posts from the source
    page and goes back there; a refused one shows its field errors on a page of its own."""
    source = _editable_source(pk)
    form = CheckpointResetForm(request.POST or None, source=source)
    if request.method == "POST" and form.is_valid():
        stream, moment = form.cleaned_data["stream"], form.cleaned_data["resume_from"]
        try:
            services.reset_checkpoint(
                source=source, stream=stream, resume_from=moment, user=request.user
            )
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(
                request,
                f"Source {source.name} resumes {stream or 'every stream'} from "
                f"{moment.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC; it restarts now.",
            )
            return redirect("collector:source_detail", pk=source.pk)
    return render(
        request, "collector/checkpoint_reset.html", {"source": source, "reset_form": form}
    )


@permission_required("collector.delete_source", raise_exception=True)
def source_delete(request, pk):
    source = _editable_source(pk)
    if request.method == "POST":
        services.delete_source(source=source)
        messages.success(
            request,
            f"Source {source.name} is stopping and disappears once no worker holds it. "
            "Data already collected stays searchable.",
        )
        return redirect("collector:collection")
    return render(request, "collector/source_delete.html", {"source": source})
