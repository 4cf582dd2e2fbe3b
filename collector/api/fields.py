"""The Fields schema: ``/fields`` in the Sumo Logic Fields API shape (the newer error style).

New names are validated by :class:`collector.forms.FieldForm` and stored by collector.services, the
same path as the Fields page. Built-in fields are listed but are not rows of the schema.
"""

from django.http import JsonResponse

from collector import services
from collector.api.common import (
    ERRORS,
    ApiError,
    Method,
    bad_request,
    empty_response,
    entity_response,
    etag_of,
    expect_keys,
    form_error_codes,
    route,
)
from collector.forms import FieldForm
from collector.models import DroppedField, Field
from collector.validators import BUILTIN_FIELDS, MAX_CUSTOM_FIELDS

INVALID = "field:invalid"
BOOLEAN_BUILTINS = {"_siemForward"}


def field_json(field: Field) -> dict:
    return {
        "fieldName": field.name,
        "fieldId": field.field_id,
        "dataType": field.data_type,
        "state": field.state,
    }


def builtin_fields() -> list[dict]:
    """The built-in metadata fields, with ids that stay the same from one release to the next."""
    return [
        {
            "fieldName": name,
            "fieldId": f"{index:016X}",
            "dataType": "Boolean" if name in BOOLEAN_BUILTINS else "String",
            "state": "Enabled",
        }
        for index, name in enumerate(BUILTIN_FIELDS, start=1)
    ]


def field_response(request, field: Field):
    body = field_json(field)
    return entity_response(request, None, body, etag_of(body))


def get_field(field_id: str) -> Field:
    """The field of a URL id (case does not matter), or 404 ``field:doesnt_exist``."""
    field = None
    if len(field_id) <= 16 and field_id.isalnum():
        field = Field.objects.filter(field_id=field_id.upper()).first()
    if field is None:
        raise ApiError(404, "field:doesnt_exist", f"There is no field with id {field_id!r}.")
    return field


# --- handlers ---------------------------------------------------------------------------------
def list_fields(request):
    return JsonResponse({"data": [field_json(f) for f in Field.objects.order_by("name")]})


def create_field(request, body):
    expect_keys(body, ("fieldName",), "body", INVALID)
    name = body.get("fieldName")
    if not isinstance(name, str):
        raise bad_request("fieldName is required and must be a string.", INVALID)
    form = FieldForm(data={"name": name})
    if not form.is_valid():
        message = " ".join(form.errors.get("name", []) or ["The field name is not valid."])
        code = (
            "field:already_exists"
            if "already_exists" in form_error_codes(form, "name")
            else INVALID
        )
        raise ApiError(400, code, message, detail="fieldName")
    try:
        field = services.create_field(name=form.cleaned_data["name"])
    except services.ServiceError as exc:
        raise ApiError(400, exc.code, exc.message, detail="fieldName")
    return field_response(request, field)


def get_field_view(request, field_id: str):
    return field_response(request, get_field(field_id))


def delete_field(request, field_id: str):
    try:
        services.delete_field(field=get_field(field_id))
    except services.ServiceError as exc:
        raise ApiError(400, exc.code, exc.message)
    return empty_response(204)


def enable_field(request, field_id: str):
    services.set_field_enabled(field=get_field(field_id), enabled=True)
    return empty_response(204)


def disable_field(request, field_id: str):
    services.set_field_enabled(field=get_field(field_id), enabled=False)
    return empty_response(204)


def dropped_fields(request):
    names = DroppedField.objects.order_by("name").values_list("name", flat=True)
    return JsonResponse({"data": [{"fieldName": name} for name in names]})


def builtin_fields_view(request):
    return JsonResponse({"data": builtin_fields()})


def quota(request):
    used = Field.objects.count()
    return JsonResponse({"quota": MAX_CUSTOM_FIELDS, "remaining": max(0, MAX_CUSTOM_FIELDS - used)})


fields = route(
    style=ERRORS,
    GET=Method(list_fields, "collector.view_field"),
    POST=Method(create_field, "collector.add_field", body=True),
)
field = route(
    style=ERRORS,
    GET=Method(get_field_view, "collector.view_field"),
    DELETE=Method(delete_field, "collector.delete_field"),
)
enable = route(style=ERRORS, PUT=Method(enable_field, "collector.change_field"))
disable = route(style=ERRORS, DELETE=Method(disable_field, "collector.change_field"))
dropped = route(style=ERRORS, GET=Method(dropped_fields, "collector.view_droppedfield"))
builtin = route(style=ERRORS, GET=Method(builtin_fields_view, "collector.view_field"))
quota_view = route(style=ERRORS, GET=Method(quota, "collector.view_field"))
