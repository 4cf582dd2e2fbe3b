"""Sources: ``/collectors/{cid}/sources`` in the Sumo Logic "Universal" source shape.

A source travels as ``{"schemaRef": {"type": <kind>}, "sourceType": "Universal", "config": {...}}``
with the shared config keys (name, description, category, fields) and the kind's own
(``SourceKind.config_keys``). The config is turned into the data dict of the kind's form
(collector.forms.source_form_class), validated there and stored by collector.services, so the API
and the UI accept exactly the same sources.

The secret never leaves the server: it is always answered as ``********``, and ``********`` (or
no secret key at all) in a PUT keeps the stored one.
"""

from django.db import transaction
from django.http import JsonResponse

from collector import services
from collector.api.collectors import get_collector
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
    map_value,
    not_found,
    require_if_match,
    route,
)
from collector.choices import SourceState
from collector.crypto import MASK
from collector.forms import CheckpointResetForm, source_form_class
from collector.kinds import all_kinds, get_kind
from collector.kinds.base import TEXT, ConfigKey
from collector.models import Source
from collector.shapes import SOURCE_TYPE, source_config, source_json

API_VERSION = "v1"
CREATE_INVALID = "createValidationError"
UPDATE_INVALID = "updateValidationError"
DUPLICATE = "DuplicateResourceName"
EMPTY_TYPE = "EmptySourceType"
INVALID_TYPE = "InvalidSourceType"


# The keys every kind shares; each kind adds its own (collector.kinds.base.SourceKind).
COMMON_KEYS = {
    "name": ConfigKey("name", TEXT),
    "description": ConfigKey("description", TEXT),
    "category": ConfigKey("category", TEXT),
}


def kind_keys(kind: str) -> dict[str, ConfigKey]:
    try:
        return get_kind(kind).config_keys
    except LookupError:
        return {}


# Keys a GET answers with that a round trip sends back; accepted and ignored (``id`` must match).
READ_ONLY_SOURCE_KEYS = ("id", "state")


# --- ETags and answers (the JSON shapes themselves are in collector.shapes) -----------------------
def source_etag(source: Source) -> str:
    """Covers the configuration, including the (encrypted) secret so a new secret changes it, but
    not the state, which the engine moves on its own."""
    return etag_of(
        {
            "id": source.pk,
            "kind": source.kind,
            "config": source_config(source),
            "secret": source.secret_encrypted,
        }
    )


def source_response(request, source: Source):
    return entity_response(request, "source", source_json(source), source_etag(source))


def get_source(collector_id: int, source_id: int, *, lock: bool = False) -> Source:
    """The source of the URL ids, or 404 naming the collector or source that does not exist.

    ``lock`` holds the row until the caller's transaction ends (PostgreSQL; SQLite's IMMEDIATE
    transactions serialise writers anyway).
    """
    check_id(collector_id, "Collector")
    check_id(source_id, "Source")
    query = Source.objects.select_for_update(of=("self",)) if lock else Source.objects
    source = (
        query.select_related("collector").filter(pk=source_id, collector_id=collector_id).first()
    )
    if source is None:
        get_collector(collector_id)
        raise not_found(f"Source {source_id} does not exist on collector {collector_id}.")
    return source


def _not_stopping(source: Source) -> None:
    if source.state == SourceState.STOPPING:
        raise ApiError(
            409, "conflict", f"Source {source.pk} is being deleted; it can no longer be changed."
        )


# --- validation -------------------------------------------------------------------------------
def _source_member(body: dict, code: str) -> dict:
    if "sources" in body and "source" not in body:
        raise bad_request(
            'One source per request: send {"api.version": "v1", "source": {...}} for each source '
            "of a download.",
            code,
        )
    expect_keys(body, ("api.version", "source"), "body", code)
    version = body.get("api.version", API_VERSION)
    if version != API_VERSION:
        raise bad_request(f'api.version must be "{API_VERSION}".', code)
    return expect_object(body.get("source"), "source", code)


def _kind_of(obj: dict, code: str) -> str:
    """The kind named by ``schemaRef.type`` (EmptySourceType / InvalidSourceType otherwise)."""
    expect_keys(obj, ("schemaRef", "sourceType", "config", *READ_ONLY_SOURCE_KEYS), "source", code)
    known = ", ".join(kind.name for kind in all_kinds())
    ref = obj.get("schemaRef")
    if ref is None:
        raise bad_request(f'source.schemaRef is required, e.g. {{"type": "{known}"}}.', EMPTY_TYPE)
    expect_keys(expect_object(ref, "source.schemaRef", code), ("type",), "source.schemaRef", code)
    kind = ref.get("type")
    if kind is None or kind == "":
        raise bad_request(f"source.schemaRef.type is required; known types: {known}.", EMPTY_TYPE)
    if not isinstance(kind, str):
        raise bad_request("source.schemaRef.type must be a string.", INVALID_TYPE)
    try:
        get_kind(kind)
    except LookupError:
        raise bad_request(
            f"source.schemaRef.type {kind!r} is not a known source type; known: {known}.",
            INVALID_TYPE,
        )
    source_type = obj.get("sourceType")
    if source_type is None or source_type == "":
        raise bad_request(f'source.sourceType is required and must be "{SOURCE_TYPE}".', EMPTY_TYPE)
    if source_type != SOURCE_TYPE:
        raise bad_request(f'source.sourceType must be "{SOURCE_TYPE}".', INVALID_TYPE)
    return kind


def _form_data(obj: dict, kind: str, code: str) -> tuple[dict, dict]:
    """The form's data dict from a ``source`` object, and the JSON config it came from."""
    config = expect_object(obj.get("config"), "source.config", code)
    keys = {**COMMON_KEYS, **kind_keys(kind)}
    expect_keys(config, (*keys, "fields"), "source.config", code)
    data = {
        spec.form_field: config_value(config, key, spec, "source.config", code)
        for key, spec in keys.items()
    }
    # The form moves fields._siemForward onto forward_to_siem; without it the box is unticked.
    data["fields"] = map_value(config, "fields", "source.config", code)
    data["forward_to_siem"] = False
    return data, config


def _form_names(kind: str) -> dict[str, str]:
    names = {spec.form_field: key for key, spec in kind_keys(kind).items()}
    names["forward_to_siem"] = "fields._siemForward"
    return names


def _validate(form, kind: str, config: dict, code: str) -> None:
    if form.is_valid():
        return
    message = form_message(form, _form_names(kind), "source.config")
    secret_key = get_kind(kind).secret_key
    secret_field = kind_keys(kind)[secret_key].form_field if secret_key else None
    if secret_field in form.errors and config.get(secret_key) == MASK:
        message += (
            f" A download shows {secret_key} as {MASK}; put the real secret in before importing."
        )
    if form_error_codes(form, "name") & {"duplicate", "unique"}:
        raise bad_request(message, DUPLICATE)
    raise bad_request(message, code)


def _service_error(exc: services.ServiceError, code: str) -> ApiError:
    return bad_request(exc.message, DUPLICATE if exc.code == "duplicate" else code)


# --- handlers ---------------------------------------------------------------------------------
def list_sources(request, collector_id: int):
    collector = get_collector(collector_id)
    download = request.GET.get("download", "false").lower()
    if download not in ("true", "false"):
        raise bad_request("The parameter download must be true or false.")
    sources = collector.sources.order_by("pk")
    if download == "false":
        return JsonResponse({"sources": [source_json(s) for s in sources]})
    # A download re-imports elsewhere, so a source that is being deleted is not part of it.
    exported = [source_json(s, export=True) for s in sources.exclude(state=SourceState.STOPPING)]
    return JsonResponse({"api.version": API_VERSION, "sources": exported})


def create_source(request, body, collector_id: int):
    collector = get_collector(collector_id)
    obj = _source_member(body, CREATE_INVALID)
    kind = _kind_of(obj, CREATE_INVALID)
    data, config = _form_data(obj, kind, CREATE_INVALID)
    form = source_form_class(kind)(data=data, collector=collector)
    _validate(form, kind, config, CREATE_INVALID)
    try:
        source = services.create_source(collector=collector, form=form, user=request.user)
    except services.ServiceError as exc:
        raise _service_error(exc, CREATE_INVALID)
    # The first run was queued when the insert committed; show the state that left behind.
    source.refresh_from_db()
    return source_response(request, source)


def get_source_view(request, collector_id: int, source_id: int):
    return source_response(request, get_source(collector_id, source_id))


def update_source(request, body, collector_id: int, source_id: int):
    # Locked from the ETag check to the write, so two PUTs of the same version cannot both win.
    with transaction.atomic():
        return _update_source(request, body, collector_id, source_id)


def _update_source(request, body, collector_id: int, source_id: int):
    source = get_source(collector_id, source_id, lock=True)
    require_if_match(request, source_etag(source), "source")
    _not_stopping(source)
    obj = _source_member(body, UPDATE_INVALID)
    given_id = obj.get("id")
    if type(given_id) is not int or given_id != source.pk:
        raise bad_request(
            f"source.id must be {source.pk}, the id in the URL; a PUT sends the full source.",
            UPDATE_INVALID,
        )
    kind = _kind_of(obj, UPDATE_INVALID)
    if kind != source.kind:
        raise bad_request(
            f"source.schemaRef cannot change: this source is {source.kind!r}.", UPDATE_INVALID
        )
    data, config = _form_data(obj, kind, UPDATE_INVALID)
    form = source_form_class(kind)(data=data, instance=source, collector=source.collector)
    _validate(form, kind, config, UPDATE_INVALID)
    try:
        source = services.update_source(source=source, form=form)
    except services.ServiceError as exc:
        raise _service_error(exc, UPDATE_INVALID)
    return source_response(request, source)


def delete_source(request, collector_id: int, source_id: int):
    """Asynchronous: the source answers ``Stopping`` until the engine has removed it."""
    services.delete_source(source=get_source(collector_id, source_id))
    return empty_response()


def restart_source(request, collector_id: int, source_id: int):
    source = get_source(collector_id, source_id)
    _not_stopping(source)
    return source_response(request, services.restart_source(source=source))


RESET_NAMES = {"stream": "stream", "resume_from": "resumeFrom"}


def reset_checkpoint(request, body, collector_id: int, source_id: int):
    """``{"stream": <name> | null, "resumeFrom": <ISO 8601>}``: the stream (null: every stream)
    of every tenant resumes at that time (UTC without a zone) and the source restarts; answers
    the source like a restart. The rules are collector.services.reset_checkpoint's."""
    source = get_source(collector_id, source_id)
    _not_stopping(source)
    expect_keys(body, RESET_NAMES.values(), "body")
    stream = body.get("stream")
    if stream is not None and not isinstance(stream, str):
        raise bad_request(
            f"body.stream must be one of {', '.join(source.streams)}, or null for every stream."
        )
    moment = body.get("resumeFrom")
    if moment is None or moment == "":
        raise bad_request(
            "body.resumeFrom is required: an ISO 8601 time such as 2026-12-01T10:00:00Z."
        )
    if not isinstance(moment, str):
        raise bad_request(
            "body.resumeFrom must be a string: an ISO 8601 time such as 2026-12-01T10:00:00Z."
        )
    form = CheckpointResetForm(data={"stream": stream or "", "resume_from": moment}, source=source)
    if not form.is_valid():
        raise bad_request(form_message(form, RESET_NAMES, "body"))
    try:
        source = services.reset_checkpoint(
            source=source,
            stream=form.cleaned_data["stream"],
            resume_from=form.cleaned_data["resume_from"],
            user=request.user,
        )
    except services.ServiceError as exc:
        if exc.code == "stopping":
            raise ApiError(409, "conflict", f"{exc.message} It can no longer be changed.")
        where = f"body.{RESET_NAMES[exc.field]}: " if exc.field in RESET_NAMES else ""
        raise bad_request(where + exc.message)
    return source_response(request, source)


sources = route(
    style=LEGACY,
    GET=Method(list_sources, "collector.view_source"),
    POST=Method(create_source, "collector.add_source", body=True),
)
source = route(
    style=LEGACY,
    GET=Method(get_source_view, "collector.view_source"),
    PUT=Method(update_source, "collector.change_source", body=True),
    DELETE=Method(delete_source, "collector.delete_source"),
)
restart = route(style=LEGACY, POST=Method(restart_source, "collector.change_source"))
checkpoint_reset = route(
    style=LEGACY, POST=Method(reset_checkpoint, "collector.change_source", body=True)
)
