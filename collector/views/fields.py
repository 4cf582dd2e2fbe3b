"""The Fields schema page and the Dropped Fields view."""

from django.contrib import messages
from django.contrib.auth.decorators import permission_required
from django.core.exceptions import ValidationError
from django.db.models.functions import Lower
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from collector import services
from collector.forms import FieldForm
from collector.models import DroppedField, Field
from collector.services import ServiceError
from collector.validators import BUILTIN_FIELDS, MAX_CUSTOM_FIELDS, validate_field_name
from collector.views.base import paginate


def _fields_page(request, form):
    fields = list(Field.objects.order_by("name"))
    usage = services.field_usage_counts()
    for field in fields:
        field.collectors_using, field.sources_using = usage.get(field.name.lower(), (0, 0))
    return render(
        request,
        "collector/fields.html",
        {
            "form": form,
            "fields": fields,
            "quota": MAX_CUSTOM_FIELDS,
            "remaining": max(MAX_CUSTOM_FIELDS - len(fields), 0),
            "builtins": BUILTIN_FIELDS,
            "dropped_count": DroppedField.objects.count(),
            "tab": "fields",
        },
    )


@permission_required("collector.view_field", raise_exception=True)
def fields(request):
    """The schema: status, name, how many collectors and sources use each field; the quota."""
    return _fields_page(request, FieldForm())


@permission_required("collector.add_field", raise_exception=True)
@require_POST
def field_add(request):
    form = FieldForm(request.POST)
    if form.is_valid():
        try:
            field = services.create_field(name=form.cleaned_data["name"])
        except ServiceError as exc:
            form.add_error("name", exc.message)
        else:
            messages.success(request, f"Field {field.name} added.")
            return redirect("collector:fields")
    return _fields_page(request, form)


@permission_required("collector.change_field", raise_exception=True)
@require_POST
def field_enable(request, pk, enabled: bool):
    field = get_object_or_404(Field, pk=pk)
    services.set_field_enabled(field=field, enabled=enabled)
    if enabled:
        messages.success(request, f"Field {field.name} enabled.")
    else:
        messages.success(request, f"Field {field.name} disabled; new data no longer gets it.")
    return redirect("collector:fields")


@permission_required("collector.delete_field", raise_exception=True)
@require_POST
def field_delete(request, pk):
    field = get_object_or_404(Field, pk=pk)
    try:
        services.delete_field(field=field)
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Field {field.name} deleted.")
    return redirect("collector:fields")


@permission_required("collector.view_droppedfield", raise_exception=True)
def dropped_fields(request):
    """Field names that arrived on data but were missing or disabled in the schema."""
    page = paginate(request, DroppedField.objects.order_by("-last_seen", "name"))
    page.object_list = list(page.object_list)
    existing = dict(
        Field.objects.annotate(lname=Lower("name"))
        .filter(lname__in=[d.name.lower() for d in page.object_list])
        .values_list("lname", "enabled")
    )
    for dropped in page.object_list:
        dropped.schema_state = existing.get(dropped.name.lower())
    return render(
        request,
        "collector/dropped_fields.html",
        {
            "page": page,
            "remaining": max(MAX_CUSTOM_FIELDS - Field.objects.count(), 0),
            "dropped_count": page.paginator.count,
            "tab": "dropped",
        },
    )


@permission_required("collector.add_field", raise_exception=True)
@require_POST
def dropped_create(request, pk):
    """Create (or enable) the schema field of a dropped name."""
    dropped = get_object_or_404(DroppedField, pk=pk)
    try:
        validate_field_name(dropped.name)
        services.ensure_fields(names=[dropped.name])
    except ValidationError as exc:
        messages.error(request, f"{dropped.name} cannot be a field: {' '.join(exc.messages)}")
    except ServiceError as exc:
        messages.error(request, exc.message)
    else:
        messages.success(request, f"Field {dropped.name} is in the schema; new data keeps it.")
    return redirect("collector:dropped_fields")
