"""Destination pages: the Destinations list, the kind picker, Add and Edit with Send test message,
a destination's page, Pause/Resume/Test actions and Delete; and what the source page and the
source form show about delivery.

The pages work for any registered kind (collector.destinations): a kind brings its form
(fieldsets, secret field) and its ``label`` and ``describe``. The stored secret never reaches the
browser: forms render the secret field empty, the JSON shows ``********``, and a test from the
Edit form with a blank secret uses the stored one on the server.
"""

import json

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.db.models import Q
from django.http import Http404, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.text import slugify
from django.views.decorators.http import require_POST

from collector import services
from collector.delivery.routes import Route
from collector.destinations import all_destination_kinds, get_destination_kind
from collector.forms import DestinationForm
from collector.models import Destination, HealthEvent
from collector.search import KEYS, ParsedQuery, matches
from collector.services import ServiceError
from collector.shapes import destination_json
from collector.status import (
    backlog_of,
    delivery_figures,
    describe_destination,
    destination_status_payload,
    open_events_by_destination,
)

KEEP_SECRET = "Leave blank to keep the current secret"
ALL_DATA = "All collected data"
SIEM_ONLY = "Forward to SIEM sources"


# --- kinds ------------------------------------------------------------------------------------
def kind_slug(kind) -> str:
    return slugify(kind.name)


def kind_by_slug(slug: str):
    for kind in all_destination_kinds():
        if kind_slug(kind) == slug:
            return kind
    raise Http404("No such destination kind.")


def installed_kind(name: str):
    """The kind of that name, or None when it is no longer installed."""
    try:
        return get_destination_kind(name)
    except LookupError:
        return None


def _kind_of(destination: Destination):
    """The destination's kind; a kind no longer installed is a 404 on the pages that need it."""
    kind = installed_kind(destination.kind)
    if kind is None:
        raise Http404(f"The destination kind {destination.kind!r} is not installed.")
    return kind


def _annotate(destination: Destination, events, figures=None) -> Destination:
    """Attach what the templates show: open events, figures, the kind's words, the route's."""
    kind = installed_kind(destination.kind)
    destination.open_events = events
    destination.figures = figures
    destination.kind_label = (kind.label or kind.name) if kind else destination.kind
    destination.kind_text = kind.describe(destination) if kind else "(kind not installed)"
    destination.route_words = route_words(destination)
    return destination


def route_words(destination) -> str:
    """How the route reads in a list when it has no text of its own ("" when it has)."""
    if (destination.route or "").strip():
        return ""
    return SIEM_ONLY if destination.siem else ALL_DATA


# --- the Destinations list --------------------------------------------------------------------
@permission_required("collector.view_destination", raise_exception=True)
def destinations(request):
    """Every destination with its status, kind, route, delivered in the last hour and backlog.

    A fixed number of queries (destinations, their open events, every last-hour series) plus the
    two bounded backlog queries per destination (collector.status.backlog_of)."""
    rows = list(Destination.objects.defer("secret_encrypted").order_by("name"))
    events = open_events_by_destination([d.pk for d in rows])
    figures = delivery_figures(rows)
    for destination in rows:
        _annotate(destination, events.get(destination.pk, []), figures[destination.pk])
    return render(
        request,
        "collector/destinations.html",
        {"destinations": rows},
    )


@permission_required("collector.view_destination", raise_exception=True)
def destination_detail(request, pk):
    destination = get_object_or_404(Destination, pk=pk)
    events = HealthEvent.objects.filter(
        resource_type=Destination.RESOURCE_TYPE, resource_id=str(pk)
    )
    open_events = list(events.filter(resolved_at__isnull=True).order_by("severity", "-last_seen"))
    past_events = list(events.filter(resolved_at__isnull=False).order_by("-resolved_at")[:10])
    figures = delivery_figures([destination])[destination.pk]
    _annotate(destination, open_events, figures)
    document = {"destination": destination_json(destination, figures)}
    return render(
        request,
        "collector/destination_detail.html",
        {
            "destination": destination,
            "status_text": destination_status_payload(destination, open_events)["tooltip"],
            "health": describe_destination(destination, open_events),
            "open_events": open_events,
            "past_events": past_events,
            "figures": figures,
            "document": json.dumps(document, indent=2, ensure_ascii=False),
        },
    )


# --- Add and Edit -----------------------------------------------------------------------------
@permission_required("collector.add_destination", raise_exception=True)
def destination_kinds(request):
    tiles = [{"kind": kind, "slug": kind_slug(kind)} for kind in all_destination_kinds()]
    return render(request, "collector/destination_kinds.html", {"tiles": tiles})


def _form_context(form, kind, destination=None) -> dict:
    return {
        "form": form,
        "kind": kind,
        "kind_slug": kind_slug(kind),
        "destination": destination,
        "route_keys": [key.name for key in KEYS.values()],
    }


@permission_required("collector.add_destination", raise_exception=True)
def destination_add(request, kind):
    destination_kind = kind_by_slug(kind)
    form = destination_kind.form_class(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            destination = services.create_destination(form=form, user=request.user)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(
                request, f"Destination {destination.name} saved; its first delivery starts now."
            )
            return redirect("collector:destination_detail", pk=destination.pk)
    return render(request, "collector/destination_form.html", _form_context(form, destination_kind))


@permission_required("collector.change_destination", raise_exception=True)
def destination_edit(request, pk):
    destination = get_object_or_404(Destination, pk=pk)
    destination_kind = _kind_of(destination)
    form = destination_kind.form_class(request.POST or None, instance=destination)
    if form.secret_field in form.fields:
        form.fields[form.secret_field].widget.attrs["placeholder"] = KEEP_SECRET
    if request.method == "POST" and form.is_valid():
        try:
            services.update_destination(destination=destination, form=form)
        except ServiceError as exc:
            form.add_error(exc.field, exc.message)
        else:
            messages.success(request, f"Destination {destination.name} saved; it starts again.")
            return redirect("collector:destination_detail", pk=destination.pk)
    return render(
        request,
        "collector/destination_form.html",
        _form_context(form, destination_kind, destination),
    )


# --- Send test message ------------------------------------------------------------------------
def _form_problems(form) -> dict[str, list[str]]:
    """Errors of the kind's own fields (the receiver settings a test needs), by label; errors of
    the shared fields (a taken name, a bad route) do not stop a test."""
    form.is_valid()
    shared = set(DestinationForm.base_fields)
    problems = {}
    for name, errors in form.errors.items():
        if name in shared:
            continue
        label = form.fields[name].label if name in form.fields else "Settings"
        problems[label or name] = list(errors)
    return problems


def _test_fragment(request, form, destination: Destination | None) -> HttpResponse:
    """The HTML fragment answering a Send test message of a form being filled in."""
    problems = _form_problems(form)
    result = None
    if not problems:
        result = services.send_test_message(destination=destination, form=form, user=request.user)
    response = render(
        request, "collector/_destination_test.html", {"problems": problems, "result": result}
    )
    response["Cache-Control"] = "no-store"
    return response


@require_POST
@permission_required("collector.add_destination", raise_exception=True)
def destination_test_new(request, kind):
    """Send a test message with the settings typed into the Add form (nothing is saved)."""
    form = kind_by_slug(kind).form_class(request.POST)
    return _test_fragment(request, form, None)


def _test_stored(request, destination: Destination):
    """Send a test message with the stored settings and say what the receiver answered."""
    result = services.send_test_message(destination=destination, user=request.user)
    if result.ok:
        messages.success(request, f"Test message to {destination.name}: {result.message}")
    else:
        messages.error(request, f"Test message to {destination.name} failed: {result.message}")


# --- actions ----------------------------------------------------------------------------------
def _back(request, default: str):
    """Back to the page the action was posted from (``next``, same host only), else ``default``."""
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(
        target, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return redirect(target)
    return redirect(default)


ACTIONS = {
    "pause": (services.pause_destination, "Destination {} is paused; its backlog is kept."),
    "resume": (services.resume_destination, "Destination {} resumes delivering."),
}


@require_POST
@permission_required("collector.change_destination", raise_exception=True)
def destination_action(request, pk, action):
    """``pause``, ``resume`` and ``test``. A ``test`` that posts the Edit form's fields (the
    Send test message button) tries those settings and answers an HTML fragment, a blank
    secret meaning the stored one; without them it tests the stored settings and goes back."""
    destination = get_object_or_404(Destination, pk=pk)
    default = reverse("collector:destination_detail", args=[destination.pk])
    if action == "test":
        if "name" in request.POST:
            form = _kind_of(destination).form_class(request.POST, instance=destination)
            return _test_fragment(request, form, destination)
        _test_stored(request, destination)
        return _back(request, default)
    if action not in ACTIONS:
        raise Http404("No such action.")
    service, message = ACTIONS[action]
    service(destination=destination)
    messages.success(request, message.format(destination.name))
    return _back(request, default)


@permission_required("collector.delete_destination", raise_exception=True)
def destination_delete(request, pk):
    destination = get_object_or_404(Destination, pk=pk)
    if request.method == "POST":
        name = destination.name
        services.delete_destination(destination=destination)
        messages.success(
            request,
            f"Destination {name} deleted. Nothing more is sent to it; collected data stays "
            "searchable.",
        )
        return redirect("collector:destinations")
    backlog = backlog_of(destination, oldest=False)
    return render(
        request,
        "collector/destination_delete.html",
        {"destination": destination, "backlog": backlog},
    )


# --- what other pages show --------------------------------------------------------------------
# Route terms that one source decides for all its messages; the others (_sourceName, tenant,
# _siemEventID, keywords) differ from message to message.
SOURCE_LEVEL_KEYS = {"_source", "_sourcecategory", "_collector", "_index"}


def receives(destination, source) -> str:
    """Whether ``destination`` receives ``source``'s collected data: ``"all"``, ``"part"`` or "".

    Decided from the route's terms, not from stored messages, so a new source shows where its data
    will go before it has any: the source-level terms (``_source``, ``_sourceCategory``,
    ``_collector``, ``_index``) are matched exactly as Log Search matches them against the
    source's name, effective category and collector; terms that differ per message
    (``_sourceName``, ``tenant``, ``_siemEventID``) and keywords cannot be decided per source, so
    such a route receives "part" of it. A SIEM destination receives all of a source with Forward
    to SIEM on.
    """
    route = Route.of(destination)
    if route.siem and source.forward_to_siem:
        return "all"
    if route.parsed is None:
        return "" if route.siem else "all"
    terms = [t for t in route.parsed.terms if t.key.lower() in SOURCE_LEVEL_KEYS]
    representative = {
        "index": "",
        "source_name": source.name,
        "source_category": source.effective_category,
        "collector_name": source.collector.name,
    }
    if not matches(ParsedQuery(terms=terms), representative):
        return ""
    decided = len(terms) == len(route.parsed.terms) and not route.parsed.keywords
    return "all" if decided else "part"


def source_deliveries(source) -> list[dict]:
    """Each destination that receives ``source`` (see :func:`receives`), with its status, its
    backlog of this source's messages and its last successful delivery: one query for the
    destinations, one for their open events, one bounded count per receiving destination."""
    rows = []
    for destination in Destination.objects.defer("secret_encrypted").order_by("name"):
        share = receives(destination, source)
        if share:
            rows.append((destination, share))
    events = open_events_by_destination([d.pk for d, _ in rows])
    return [
        {
            "destination": destination,
            "events": events.get(destination.pk, []),
            "share": share,
            "backlog": backlog_of(destination, only=Q(source=source), oldest=False),
        }
        for destination, share in rows
    ]


def siem_destinations() -> list[Destination]:
    """The SIEM destinations, for the Forward to SIEM note of the source form."""
    return list(Destination.objects.filter(siem=True).only("id", "name").order_by("name"))
