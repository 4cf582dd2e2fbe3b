"""Destinations: ``/destinations`` in the Collector Management dialect (sumo-api.md, Destinations).

A destination travels as ``{"destination": {"name", "description", "destinationType", "siem",
"route", "startFrom", "config": {...}}}``; ``config`` holds the kind's own keys
(``DestinationKind.config_keys``). The body is turned into the data dict of the kind's form
(collector.forms.destination_form_class), validated there and stored by collector.services, so
the API and the pages accept exactly the same destinations.

The secret never leaves the server: it is answered as ``********``, and ``********`` (or no
secret key at all) in a PUT keeps the stored one. Answers add ``id``, ``state`` and ``delivery``
(collector.shapes.destination_json).
"""

from django.db import transaction
from django.http import JsonResponse

from collector import services
from collector.api.common import (
    LEGACY,
    ApiError,
    Method,
    bad_request,
    check_id,
    config_value,
    empty_response,
    entity_response,
    etag_of,
    expect_keys,
    expect_object,
    form_error_codes,
    form_message,
    not_found,
    require_if_match,
    route,
    text_value,
)
from collector.crypto import MASK
from collector.destinations import all_destination_kinds, get_destination_kind
from collector.forms import destination_form_class
from collector.kinds.base import ConfigKey
from collector.models import Destination
from collector.shapes import destination_config, destination_json
from collector.status import delivery_figures

CREATE_INVALID = "createValidationError"
UPDATE_INVALID = "updateValidationError"
DUPLICATE = "DuplicateResourceName"
EMPTY_TYPE = "EmptyDestinationType"
INVALID_TYPE = "InvalidDestinationType"

# Top-level keys of a destination and the form fields they feed.
COMMON_NAMES = {
    "name": "name",
    "description": "description",
    "route": "route",
    "siem": "siem",
    "start_from": "startFrom",
}
WRITABLE_KEYS = ("name", "description", "destinationType", "siem", "route", "startFrom", "config")
# Keys a GET answers with that a round trip sends back: accepted and ignored (``id`` must match).
READ_ONLY_KEYS = ("id", "state", "delivery")
START_FROM = ("new", "all")


def kind_keys(kind: str) -> dict[str, ConfigKey]:
    try:
        return get_destination_kind(kind).config_keys
    except LookupError:
        return {}


# --- ETags and answers ------------------------------------------------------------------------
def destination_etag(destination: Destination) -> str:
    """Covers the configuration, including the (encrypted) secret so a new secret changes it, but
    not the state or the delivery figures, which the engine moves on its own."""
    return etag_of(
        {
            "id": destination.pk,
            "kind": destination.kind,
            "name": destination.name,
            "description": destination.description,
            "route": destination.route,
            "siem": destination.siem,
            "config": destination_config(destination),
            "secret": destination.secret_encrypted,
        }
    )


def destination_response(request, destination: Destination):
    figures = delivery_figures([destination])[destination.pk]
    return entity_response(
        request,
        "destination",
        destination_json(destination, figures),
        destination_etag(destination),
    )


def get_destination(destination_id: int, *, lock: bool = False) -> Destination:
    """The destination of the URL id, or 404. ``lock`` holds the row until the caller's
    transaction ends (PostgreSQL; SQLite's IMMEDIATE transactions serialise writers anyway)."""
    check_id(destination_id, "Destination")
    query = Destination.objects.select_for_update() if lock else Destination.objects
    destination = query.filter(pk=destination_id).first()
    if destination is None:
        raise not_found(f"Destination {destination_id} does not exist.")
    return destination


# --- validation -------------------------------------------------------------------------------
def _member(body: dict, code: str) -> dict:
    expect_keys(body, ("destination",), "body", code)
    return expect_object(body.get("destination"), "destination", code)


def _kind_of(obj: dict, code: str) -> str:
    """The kind named by ``destinationType`` (EmptyDestinationType / InvalidDestinationType)."""
    expect_keys(obj, (*WRITABLE_KEYS, *READ_ONLY_KEYS), "destination", code)
    known = ", ".join(kind.name for kind in all_destination_kinds())
    kind = obj.get("destinationType")
    if kind is None or kind == "":
        raise bad_request(
            f"destination.destinationType is required; known types: {known}.", EMPTY_TYPE
        )
    if not isinstance(kind, str):
        raise bad_request("destination.destinationType must be a string.", INVALID_TYPE)
    try:
        get_destination_kind(kind)
    except LookupError:
        raise bad_request(
            f"destination.destinationType {kind!r} is not a known destination type; known: "
            f"{known}.",
            INVALID_TYPE,
        )
    return kind


def _form_data(obj: dict, kind: str, code: str) -> tuple[dict, dict]:
    """The form's data dict from a ``destination`` object, and the JSON config it came from."""
    config = expect_object(obj.get("config", {}), "destination.config", code)
    keys = kind_keys(kind)
    expect_keys(config, keys, "destination.config", code)
    data = {
        spec.form_field: config_value(config, key, spec, "destination.config", code)
        for key, spec in keys.items()
    }
    for key in ("name", "description", "route"):
        data[key] = text_value(obj, key, "destination", code)
    siem = obj.get("siem", False)
    if siem is None:
        siem = False
    if not isinstance(siem, bool):
        raise bad_request("destination.siem must be true or false.", code)
    data["siem"] = siem
    start = obj.get("startFrom")
    if start is None:
        start = "new"
    if start not in START_FROM:
        raise bad_request('destination.startFrom must be "new" or "all".', code)
    data["start_from"] = start
    return data, config


def _form_names(kind: str) -> dict[str, str]:
    names = dict(COMMON_NAMES)
    names.update({spec.form_field: f"config.{key}" for key, spec in kind_keys(kind).items()})
    return names


def _validate(form, kind: str, config: dict, code: str) -> None:
    if form.is_valid():
        return
    message = form_message(form, _form_names(kind), "destination")
    secret_key = get_destination_kind(kind).secret_key
    secret_field = kind_keys(kind)[secret_key].form_field if secret_key in kind_keys(kind) else None
    if secret_field in form.errors and config.get(secret_key) == MASK:
        message += f" {MASK} keeps a stored secret only; a new destination needs the real one."
    if form_error_codes(form, "name") & {"duplicate", "unique"}:
        raise bad_request(message, DUPLICATE)
    raise bad_request(message, code)


def _service_error(exc: services.ServiceError, code: str) -> ApiError:
    return bad_request(exc.message, DUPLICATE if exc.code == "duplicate" else code)


# --- handlers ---------------------------------------------------------------------------------
def list_destinations(request):
    """Every destination by id, with delivery figures (two bounded queries per destination)."""
    rows = list(Destination.objects.order_by("pk"))
    figures = delivery_figures(rows)
    return JsonResponse({"destinations": [destination_json(d, figures[d.pk]) for d in rows]})


def create_destination(request, body):
    obj = _member(body, CREATE_INVALID)
    kind = _kind_of(obj, CREATE_INVALID)
    data, config = _form_data(obj, kind, CREATE_INVALID)
    form = destination_form_class(kind)(data=data)
    _validate(form, kind, config, CREATE_INVALID)
    try:
        destination = services.create_destination(form=form, user=request.user)
    except services.ServiceError as exc:
        raise _service_error(exc, CREATE_INVALID)
    destination.refresh_from_db()
    return destination_response(request, destination)


def get_destination_view(request, destination_id: int):
    return destination_response(request, get_destination(destination_id))


def update_destination(request, body, destination_id: int):
    # Locked from the ETag check to the write, so two PUTs of the same version cannot both win.
    with transaction.atomic():
        return _update_destination(request, body, destination_id)


def _update_destination(request, body, destination_id: int):
    destination = get_destination(destination_id, lock=True)
    require_if_match(request, destination_etag(destination), "destination")
    obj = _member(body, UPDATE_INVALID)
    given_id = obj.get("id")
    if type(given_id) is not int or given_id != destination.pk:
        raise bad_request(
            f"destination.id must be {destination.pk}, the id in the URL; a PUT sends the full "
            "destination.",
            UPDATE_INVALID,
        )
    kind = _kind_of(obj, UPDATE_INVALID)
    if kind != destination.kind:
        raise bad_request(
            f"destination.destinationType cannot change: this destination is {destination.kind!r}.",
            UPDATE_INVALID,
        )
    data, config = _form_data(obj, kind, UPDATE_INVALID)
    form = destination_form_class(kind)(data=data, instance=destination)
    _validate(form, kind, config, UPDATE_INVALID)
    try:
        destination = services.update_destination(destination=destination, form=form)
    except services.ServiceError as exc:
        raise _service_error(exc, UPDATE_INVALID)
    return destination_response(request, destination)


def delete_destination(request, destination_id: int):
    services.delete_destination(destination=get_destination(destination_id))
    return empty_response()


def test_destination(request, destination_id: int):
    """Send one test message with the stored settings: ``{"ok", "message"}``, 200 either way
    (the receiver's refusal is an answer, not an error of the call)."""
    destination = get_destination(destination_id)
    result = services.send_test_message(destination=destination, user=request.user)
    return JsonResponse({"ok": result.ok, "message": result.message})


def pause_destination(request, destination_id: int):
    destination = services.pause_destination(destination=get_destination(destination_id))
    return destination_response(request, destination)


def resume_destination(request, destination_id: int):
    destination = services.resume_destination(destination=get_destination(destination_id))
    return destination_response(request, destination)


destinations = route(
    style=LEGACY,
    GET=Method(list_destinations, "collector.view_destination"),
    POST=Method(create_destination, "collector.add_destination", body=True),
)
destination = route(
    style=LEGACY,
    GET=Method(get_destination_view, "collector.view_destination"),
    PUT=Method(update_destination, "collector.change_destination", body=True),
    DELETE=Method(delete_destination, "collector.delete_destination"),
)
test = route(style=LEGACY, POST=Method(test_destination, "collector.change_destination"))
pause = route(style=LEGACY, POST=Method(pause_destination, "collector.change_destination"))
resume = route(style=LEGACY, POST=Method(resume_destination, "collector.change_destination"))
