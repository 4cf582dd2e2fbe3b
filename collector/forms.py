"""Forms: the one validation path for the HTML pages and the JSON API.

The API turns its JSON into the same ``data`` dict a browser would post (see collector.api) and
validates with these classes, so a rule written here holds everywhere.
"""

import datetime as dt
import json
import re
from itertools import zip_longest

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils import timezone

from collector.crypto import MASK
from collector.models import Collector, Destination, Field, Source
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
            # Lists of unequal length pair up with blanks, so a key without a value is kept and a
            # value without a key is refused ("needs a name") instead of silently dropped.
            return [
                (k.strip(), v.strip())
                for k, v in zip_longest(keys, values, fillvalue="")
                if k.strip() or v.strip()
            ]
        return data.get(name)

    def value_omitted_from_data(self, data, files, name):
        return False

    def format_value(self, value):
        """The rows to show, always ``(key, value)`` pairs: a refused value (JSON text, a list of
        non-pairs) is redisplayed as far as it has rows, since the template unpacks each one."""
        if isinstance(value, str):
            try:
                value = parse_fields_json(value)
            except ValueError:
                return []
        if isinstance(value, dict):
            return list(value.items())
        if isinstance(value, list | tuple):
            return [tuple(row) for row in value if isinstance(row, list | tuple) and len(row) == 2]
        return []

    def get_context(self, name, value, attrs):
        context = super().get_context(name, value, attrs)
        rows = self.format_value(value)
        context["widget"]["rows"] = rows
        context["widget"]["max_rows"] = MAX_FIELDS_PER_RESOURCE
        return context


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not a field value")


def _unique_keys(pairs) -> dict:
    result = dict(pairs)
    if len(result) != len(pairs):
        raise ValueError("a key appears twice in one object")
    return result


def parse_fields_json(text: str):
    """JSON text of a fields value; ValueError for anything the API would refuse too (NaN,
    Infinity, a key given twice), or that nests past the parser's depth."""
    try:
        return json.loads(text, parse_constant=_refuse_constant, object_pairs_hook=_unique_keys)
    except RecursionError:
        raise ValueError("nested too deeply")


class FieldsMapField(forms.Field):
    """A map of field names to values (design section 7), from rows, a dict or a JSON text."""

    widget = FieldsWidget
    default_error_messages = {"invalid": "Fields must be a map of names to values."}

    def to_python(self, value):
        if value in (None, "", [], {}):
            return {}
        if isinstance(value, str):
            try:
                value = parse_fields_json(value)
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
                if not isinstance(key, str):
                    raise ValidationError(self.error_messages["invalid"], code="invalid")
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

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("A name is required.", code="required")
        clash = Collector.objects.filter(name__iexact=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(
                f"A collector named {clash.first().name!r} already exists (names are compared "
                "without regard to case).",
                code="duplicate",
            )
        return name


class KindFormMixin:
    """The form protocol a kind's form follows, shared by source and destination forms.

    * ``kind_name``: the registered kind it belongs to.
    * ``fieldsets``: the kind's own fields as titled groups (collector.kinds.base.Fieldset), in
      page order.
    * ``secret_field``: its secret field ("" for none): rendered empty, kept when left blank or
      sent as ``********``, required on a new row unless ``secret_required`` is False.
    * ``kind_config()``: the non-secret configuration the row stores.
    """

    kind_name = ""
    secret_field = ""
    secret_required = True
    fieldsets: tuple = ()

    def _prepare_secret(self) -> None:
        secret = self.fields.get(self.secret_field)
        if secret is None:
            return
        if self.instance.has_secret:
            secret.help_text = "Leave blank to keep the current secret."
        elif self.secret_required:
            secret.required = True

    def _clean_secret(self, cleaned: dict) -> None:
        if self.secret_field not in self.fields:
            return
        secret = cleaned.get(self.secret_field) or ""
        if secret == MASK:
            secret = ""
        cleaned[self.secret_field] = secret
        if (
            self.secret_required
            and not secret
            and not self.instance.has_secret
            and self.secret_field not in self.errors
        ):
            label = self.fields[self.secret_field].label
            self.add_error(
                self.secret_field, ValidationError(f"{label} is required.", code="required")
            )

    def kind_config(self) -> dict:
        """The non-secret configuration stored on the row; kinds override it."""
        return {}

    def new_secret(self) -> str:
        """The secret to store, or "" to keep the stored one."""
        if not self.secret_field or not hasattr(self, "cleaned_data"):
            return ""
        return self.cleaned_data.get(self.secret_field) or ""

    def kind_field_groups(self) -> list[dict]:
        """The kind's fieldsets with their bound fields, for the template."""
        return [
            {
                "title": fieldset.title,
                "fields": [self[name] for name in fieldset.fields if name in self.fields],
                "test_connection": fieldset.test_connection,
            }
            for fieldset in self.fieldsets
        ]


class SourceForm(KindFormMixin, forms.ModelForm):
    """The fields every source kind shares, in the order of the seed's form; a kind's form
    (a subclass) follows :class:`KindFormMixin`'s protocol and may place ``polling_interval`` in
    one of its fieldsets, else it comes last."""

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
    polling_interval = forms.IntegerField(
        label="Polling Interval (seconds)",
        initial=settings.POLLING_INTERVAL_DEFAULT,
        min_value=settings.POLLING_INTERVAL_MIN,
        max_value=settings.POLLING_INTERVAL_MAX,
        required=False,
        help_text="How often the source checks for new data; "
        f"{settings.POLLING_INTERVAL_DEFAULT} seconds by default.",
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
        if self.instance.pk:
            self.fields["polling_interval"].initial = self.instance.polling_interval
        self._prepare_secret()

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

    def clean_polling_interval(self):
        value = self.cleaned_data.get("polling_interval")
        return settings.POLLING_INTERVAL_DEFAULT if value is None else value

    def clean(self):
        cleaned = super().clean()
        fields = dict(cleaned.get("fields") or {})
        # _siemForward in fields is the API's spelling of the checkbox (the seed's JSON example).
        if "_siemForward" in fields:
            cleaned["forward_to_siem"] = str(fields.pop("_siemForward")).lower() == "true"
        cleaned["fields"] = fields
        self._clean_secret(cleaned)
        return cleaned

    def kind_field_groups(self) -> list[dict]:
        """The kind's fieldsets; the polling interval comes last unless a fieldset places it."""
        placed = {name for fieldset in self.fieldsets for name in fieldset.fields}
        groups = super().kind_field_groups()
        if "polling_interval" not in placed:
            groups.append(
                {
                    "title": "Collection",
                    "fields": [self["polling_interval"]],
                    "test_connection": False,
                }
            )
        return groups

    @classmethod
    def common_field_names(cls) -> set[str]:
        """Fields every kind shares: a Test connection ignores their errors."""
        return set(SourceForm.base_fields)


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


class DestinationForm(KindFormMixin, forms.ModelForm):
    """The fields every destination kind shares; a kind's form adds its own fieldsets.

    A kind's form follows :class:`KindFormMixin`'s protocol, as source kinds' forms do. ``start_from`` only matters on creation: ``new`` starts after the newest
    stored message, ``all`` with everything still stored.
    """

    START_CHOICES = [("new", "New data only"), ("all", "Everything still stored")]
    start_from = forms.ChoiceField(
        label="Start from",
        choices=START_CHOICES,
        initial="new",
        required=False,
        help_text="Where a new destination's delivery starts.",
    )

    class Meta:
        model = Destination
        fields = ["name", "description", "route", "siem"]
        labels = {"siem": "SIEM destination"}
        widgets = {"description": forms.Textarea(attrs={"rows": 2})}
        help_texts = {
            "route": "Log Search metadata terms that select its messages, e.g. "
            "_sourceCategory=prod/* _collector=EU. Empty: all collected data.",
            "siem": "Also receives every source with Forward to SIEM on.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._prepare_secret()
        if self.instance.pk:
            del self.fields["start_from"]

    def clean_name(self):
        name = self.cleaned_data["name"].strip()
        if not name:
            raise ValidationError("A name is required.", code="required")
        clash = Destination.objects.filter(name__iexact=name)
        if self.instance.pk:
            clash = clash.exclude(pk=self.instance.pk)
        if clash.exists():
            raise ValidationError(
                f"A destination named {clash.first().name!r} already exists.", code="duplicate"
            )
        return name

    def clean_route(self):
        from collector.search import KEYS, parse_query

        text = (self.cleaned_data.get("route") or "").strip()
        try:
            parsed = parse_query(text)
        except Exception:  # the parser reports no structured errors: say what is accepted
            raise ValidationError("The route is not a valid query.", code="invalid")
        # The language reads an unknown key=value as a keyword; a route would then silently select
        # nothing, so it is refused here.
        unknown = [
            kw.split("=", 1)[0]
            for kw in parsed.keywords
            if re.match(r"[_A-Za-z]\w*=", kw) and kw.split("=", 1)[0].lower() not in KEYS
        ]
        if unknown:
            known = ", ".join(key.name for key in KEYS.values())
            raise ValidationError(
                f"Unknown key {unknown[0]!r} in the route; use {known}.", code="invalid"
            )
        return text

    def clean(self):
        cleaned = super().clean()
        self._clean_secret(cleaned)
        return cleaned


def destination_form_class(kind: str) -> type[DestinationForm]:
    from collector.destinations import get_destination_kind

    return get_destination_kind(kind).form_class


class UTCDateTimeField(forms.DateTimeField):
    """A date and time read as UTC when it names no zone (a ``datetime-local`` input has none),
    whatever the server's time zone; ISO 8601 with ``Z`` or an offset is taken as given."""

    def to_python(self, value):
        with timezone.override(dt.UTC):
            return super().to_python(value)

    def prepare_value(self, value):
        with timezone.override(dt.UTC):
            return super().prepare_value(value)


class CheckpointResetForm(forms.Form):
    """Where a source's streams resume (collector.services.reset_checkpoint): one stream or all
    of them, from a time in UTC. The service judges the time (not in the future, not older than
    the kind serves); its refusal is a field error here."""

    INPUT_FORMAT = "%Y-%m-%dT%H:%M"

    stream = forms.ChoiceField(label="Stream", required=False)
    resume_from = UTCDateTimeField(
        label="Resume from (UTC)",
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format=INPUT_FORMAT),
        input_formats=[INPUT_FORMAT, "%Y-%m-%dT%H:%M:%S"],
        help_text="Collection starts again from this time; items read twice are stored once.",
    )

    def __init__(self, *args, source: Source, **kwargs):
        super().__init__(*args, **kwargs)
        self.source = source
        self.fields["stream"].choices = [("", "All streams")] + [(s, s) for s in source.streams]
        if not self.is_bound:
            hour_ago = timezone.now().astimezone(dt.UTC) - dt.timedelta(hours=1)
            self.initial.setdefault("resume_from", hour_ago.replace(second=0, microsecond=0))

    def resume_from_text(self) -> str:
        """The ``datetime-local`` input's value: what was posted, else the initial time."""
        if self.is_bound:
            return str(self.data.get(self.add_prefix("resume_from"), ""))
        initial = self.initial.get("resume_from")
        return initial.strftime(self.INPUT_FORMAT) if initial else ""

    def clean_stream(self) -> str | None:
        """The stream, or None for all of them."""
        return self.cleaned_data.get("stream") or None
