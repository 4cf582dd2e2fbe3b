"""Forms: the one validation path for the HTML pages and the JSON API.

The API turns its JSON into the same ``data`` dict a browser would post (see collector.api) and
validates with these classes, so a rule written here holds everywhere.
"""

import json

from django import forms
from django.core.exceptions import ValidationError

from collector.models import Collector, Field, Source
from collector.validators import (
    MAX_FIELDS_PER_RESOURCE,
    time_zones,
    validate_field_name,
    validate_fields_map,
)


class FieldsWidget(forms.Widget):
    """Key/value rows posted as ``<name>-key`` and ``<name>-value`` lists; a dict from the API."""

    template_name = "collector/widgets/fields.html"

    def value_from_datadict(self, data, files, name):
        if hasattr(data, "getlist") and (f"{name}-key" in data or f"{name}-value" in data):
            keys = data.getlist(f"{name}-key")
            values = data.getlist(f"{name}-value")
            return [
                (k.strip(), v.strip())
                for k, v in zip(keys, values, strict=False)
                if k.strip() or v.strip()
            ]
        return data.get(name)

    def value_omitted_from_data(self, data, files, name):
        return False

    def format_value(self, value):
        if isinstance(value, dict):
            return list(value.items())
        return value or []

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rows = self.format_value(value)
        context["widget"]["rows"] = rows
        context["widget"]["max_rows"] = MAX_FIELDS_PER_RESOURCE
        return context


class FieldsMapField(forms.Field):
    """A map of field names to values (design section 7), from rows, a dict or a JSON text."""

    widget = FieldsWidget
    default_error_messages = {"invalid": "Fields must be a map of names to values."}

    def to_python(self, value):
        if value in (None, "", [], {}):
            return {}
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                raise ValidationError(self.error_messages["invalid"], code="invalid")
        if isinstance(value, list | tuple):
            result = {}
            for pair in value:
                if not isinstance(pair, list | tuple) or len(pair) != 2:
                    raise ValidationError(self.error_messages["invalid"], code="invalid")
                key, val = pair
                if not key:
                    raise ValidationError("Every field needs a name.", code="required")
                if key in result:
                    raise ValidationError(f"Field {key!r} is given twice.", code="duplicate")
                result[key] = val
            value = result
        if not isinstance(value, dict):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        return value

    def validate(self, value):
        super().validate(value)
        validate_fields_map(value)


class CollectorForm(forms.ModelForm):
    """A Hosted Collector."""

    fields = FieldsMapField(required=False)
    time_zone = forms.TypedChoiceField(choices=(), initial="UTC")

    class Meta:
        model = Collector
        fields = ["name", "description", "category", "fields", "time_zone"]
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {"category": "Stored in _sourceCategory for sources that set none."}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = [(tz, tz) for tz in sorted(time_zones())]


class SourceForm(forms.ModelForm):
    """The fields every source kind shares, in the order of the seed's form."""

    fields = FieldsMapField(
        required=False,
        help_text="Custom metadata; only fields that exist and are enabled in the Fields schema "
        "are applied.",
    )
    auto_add_fields = forms.BooleanField(
        required=False,
        initial=True,
        label="Automatically add or enable nonexistent fields in the Fields schema on save",
    )

    class Meta:
        model = Source
        fields = ["name", "description", "category", "forward_to_siem", "fields"]
        labels = {"category": "Source Category", "forward_to_siem": "Forward to SIEM"}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "category": "Tags the output; stored in _sourceCategory.",
            "forward_to_siem": "Sets _siemForward, _siemVendor, _siemProduct, _siemFormat=JSON and "
            "_siemEventID on every item.",
        }

    def __init__(self, *args, collector: Collector, **kwargs):
        self.collector = collector
        super().__init__(*args, **kwargs)

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("A name is required.", code="required")
        clash = Source.objects.filter(collector=self.collector, name=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(
                f"A source named {name!r} already exists on this collector.", code="duplicate"
            )
        return name

    def clean(self):
        cleaned = super().clean()
        fields = dict(cleaned.get("fields") or {})
        # _siemForward in fields is the API's spelling of the checkbox (the seed's JSON example).
        if "_siemForward" in fields:
            cleaned["forward_to_siem"] = str(fields.pop("_siemForward")).lower() == "true"
        cleaned["fields"] = fields
        return cleaned


def source_form_class(kind: str) -> type[SourceForm]:
    """The form of a source kind (each kind declares its own; see collector.kinds.base)."""
    from collector.kinds import get_kind

    return get_kind(kind).form_class


class FieldForm(forms.Form):
    """A new custom field of the schema."""

    name = forms.CharField(label="Field name", max_length=255, validators=[validate_field_name])

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if Field.objects.filter(name__iexact=name).exists():
            raise ValidationError(f"A field named {name!r} already exists.", code="already_exists")
        return name
