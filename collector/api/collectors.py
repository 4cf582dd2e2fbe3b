"""Collectors: ``/collectors`` in the Sumo Logic Collector Management shape.

Every collector here is a Hosted collector that is always alive. JSON is turned into the data
dict of :class:`collector.forms.CollectorForm`, validated there and stored by collector.services.
"""

import time

from django.db import transaction
from django.http import JsonResponse

from collector import services
from collector.api.common import (
    LEGACY,
    ApiError,
    Method,
    bad_request,
    check_id,
    empty_response,
    entity_response,
    etag_of,
    expect_keys,
    expect_object,
    form_error_codes,
    form_message,
    int_param,
    map_value,
    not_found,
    require_if_match,
    route,
    text_value,
)
from collector.forms import CollectorForm
from collector.models import Collector

VALIDATION = "collectors.validation"
DUPLICATE = "DuplicateResourceName"
WRITABLE_KEYS = ("name", "description", "category", "fields", "timeZone", "collectorType")
# Keys a GET answers with; a GET-edit-PUT round trip sends them back, so they are accepted and
# ignored (``id`` must match the URL).
READ_ONLY_KEYS = ("id", "links", "collectorVersion", "lastSeenAlive", "alive")
FORM_NAMES = {"time_zone": "timeZone"}
# Sumo's list filters; all our collectors are Hosted and alive.
ALL_FILTERS = {"all", "hosted", "alive"}
NO_FILTERS = {"installed", "dead"}


# --- shapes -----------------------------------------------------------------------------------
def collector_config(collector: Collector) -> dict:
    return {
        "name": collector.name,
        "description": collector.description,
        "category": collector.category,
        "timeZone": collector.time_zone,
        "fields": collector.fields or {},
    }


def collector_json(collector: Collector) -> dict:
    return {
        "id": collector.pk,
        **collector_config(collector),
        "links": [{"rel": "sources", "href": f"/v1/collectors/{collector.pk}/sources"}],
        "collectorType": "Hosted",
        "collectorVersion": "",
        # A hosted collector lives in this server, so it is alive whenever the server answers.
        "lastSeenAlive": int(time.time() * 1000),
        "alive": True,
    }


def collector_etag(collector: Collector) -> str:
    return etag_of({"id": collector.pk, **collector_config(collector)})


def collector_response(request, collector: Collector):
    return entity_response(
        request, "collector", collector_json(collector), collector_etag(collector)
    )


def get_collector(collector_id: int, *, lock: bool = False) -> Collector:
    """The collector of a URL id, or 404 ``notfound``."""
    check_id(collector_id, "Collector")
    query = Collector.objects.select_for_update() if lock else Collector.objects
    collector = query.filter(pk=collector_id).first()
    if collector is None:
        raise not_found(f"Collector {collector_id} does not exist.")
    return collector


# --- validation -------------------------------------------------------------------------------
def _collector_member(body: dict) -> dict:
    expect_keys(body, ("collector",), "body", VALIDATION)
    return expect_object(body.get("collector"), "collector", VALIDATION)


def _form_data(obj: dict) -> dict:
    """The form's data dict from a ``collector`` object; types are checked here, rules in the form."""
    expect_keys(obj, WRITABLE_KEYS + READ_ONLY_KEYS, "collector", VALIDATION)
    collector_type = obj.get("collectorType", "Hosted")
    if collector_type != "Hosted":
        raise bad_request(
            "collector.collectorType must be Hosted: only hosted collectors exist here.", VALIDATION
        )
    time_zone = obj.get("timeZone")
    if time_zone is not None and not isinstance(time_zone, str):
        raise bad_request("collector.timeZone must be a string such as UTC.", VALIDATION)
    return {
        "name": text_value(obj, "name", "collector", VALIDATION),
        "description": text_value(obj, "description", "collector", VALIDATION),
        "category": text_value(obj, "category", "collector", VALIDATION),
        "fields": map_value(obj, "fields", "collector", VALIDATION),
        "time_zone": time_zone or "UTC",
    }


def _validated(form: CollectorForm) -> dict:
    if form.is_valid():
        return form.cleaned_data
    message = form_message(form, FORM_NAMES, "collector")
    if form_error_codes(form, "name") & {"unique", "duplicate"}:
        raise bad_request(message, DUPLICATE)
    raise bad_request(message, VALIDATION)


def _service_error(exc: services.ServiceError) -> ApiError:
    return bad_request(exc.message, DUPLICATE if exc.code == "duplicate" else VALIDATION)


# --- handlers ---------------------------------------------------------------------------------
def list_collectors(request):
    kind = request.GET.get("filter", "all").lower()
    if kind not in ALL_FILTERS | NO_FILTERS:
        raise bad_request(
            f"The parameter filter must be one of {', '.join(sorted(ALL_FILTERS | NO_FILTERS))}."
        )
    limit = int_param(request, "limit", default=1000, minimum=1, maximum=1000)
    offset = int_param(request, "offset", default=0, minimum=0, maximum=2**31 - 1)
    collectors = Collector.objects.none() if kind in NO_FILTERS else Collector.objects.all()
    page = collectors.order_by("pk")[offset : offset + limit]
    return JsonResponse({"collectors": [collector_json(c) for c in page]})


def create_collector(request, body):
    form = CollectorForm(data=_form_data(_collector_member(body)))
    cleaned = _validated(form)
    try:
        collector = services.create_collector(cleaned=cleaned, user=request.user)
    except services.ServiceError as exc:
        raise _service_error(exc)
    return collector_response(request, collector)


def get_collector_view(request, collector_id: int):
    return collector_response(request, get_collector(collector_id))


def get_collector_by_name(request, name: str):
    collector = None if "\x00" in name else Collector.objects.filter(name=name).first()
    if collector is None:
        raise not_found(f"There is no collector named {name!r}.")
    return collector_response(request, collector)


def update_collector(request, body, collector_id: int):
    # Locked from the ETag check to the write, so two PUTs of the same version cannot both win
    # (SQLite's IMMEDIATE transactions serialise them the same way).
    with transaction.atomic():
        collector = get_collector(collector_id, lock=True)
        require_if_match(request, collector_etag(collector), "collector")
        obj = _collector_member(body)
        given_id = obj.get("id")
        if type(given_id) is not int or given_id != collector.pk:
            raise bad_request(
                f"collector.id must be {collector.pk}, the id in the URL; a PUT sends the full "
                "collector.",
                VALIDATION,
            )
        form = CollectorForm(data=_form_data(obj), instance=collector)
        cleaned = _validated(form)
        try:
            collector = services.update_collector(collector=collector, cleaned=cleaned)
        except services.ServiceError as exc:
            raise _service_error(exc)
    return collector_response(request, collector)


def delete_collector(request, collector_id: int):
    services.delete_collector(collector=get_collector(collector_id))
    return empty_response()


collectors = route(
    style=LEGACY,
    GET=Method(list_collectors, "collector.view_collector"),
    POST=Method(create_collector, "collector.add_collector", body=True),
)
collector_by_name = route(
    style=LEGACY, GET=Method(get_collector_by_name, "collector.view_collector")
)
collector = route(
    style=LEGACY,
    GET=Method(get_collector_view, "collector.view_collector"),
    PUT=Method(update_collector, "collector.change_collector", body=True),
    DELETE=Method(delete_collector, "collector.delete_collector"),
)
