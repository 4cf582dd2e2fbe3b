"""The Sophos Central source form: the shared source fields plus credentials, APIs and interval.

The same form validates the Add Source page and the JSON API (whose config keys map onto these
fields through ``SophosCentralKind.config_keys``).
"""

from django import forms
from django.conf import settings
from django.core.exceptions import ValidationError

from collector.choices import Stream
from collector.crypto import MASK
from collector.forms import SourceForm


class SophosCentralSourceForm(SourceForm):
    """A Sophos Central source: the shared fields plus credentials, APIs and polling interval."""

    client_id = forms.CharField(label="Client ID", max_length=128)
    client_secret = forms.CharField(
        label="Client Secret",
        max_length=256,
        required=False,
        strip=True,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
    )
    supported_apis = forms.MultipleChoiceField(
        label="Supported APIs to collect",
        choices=Stream.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[Stream.ALERTS, Stream.EVENTS],
        error_messages={"required": "Select at least one of Alerts and Events."},
    )
    polling_interval = forms.IntegerField(
        label="Polling Interval (seconds)",
        initial=settings.POLLING_INTERVAL_DEFAULT,
        min_value=settings.POLLING_INTERVAL_MIN,
        max_value=settings.POLLING_INTERVAL_MAX,
        required=False,
        help_text="How often the source checks for new data; 300 seconds by default.",
    )

    kind_name = "Sophos Central"

    class Meta(SourceForm.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        source = self.instance
        if source.pk:
            self.fields["client_id"].initial = source.client_id
            self.fields["supported_apis"].initial = source.supported_apis
            self.fields["polling_interval"].initial = source.polling_interval
            self.fields["client_secret"].help_text = "Leave blank to keep the current secret."
        else:
            self.fields["client_secret"].required = True

    def clean_client_id(self):
        value = self.cleaned_data["client_id"].strip()
        if not value:
            raise ValidationError("A Client ID is required.", code="required")
        return value

    def clean_client_secret(self):
        value = self.cleaned_data.get("client_secret", "")
        if value == MASK:
            value = ""
        if not value and not self.instance.has_secret:
            raise ValidationError("A Client Secret is required.", code="required")
        return value

    def clean_polling_interval(self):
        value = self.cleaned_data.get("polling_interval")
        return settings.POLLING_INTERVAL_DEFAULT if value is None else value

    def kind_config(self) -> dict:
        """The non-secret configuration stored in ``Source.config``."""
        apis = [
            api
            for api in (Stream.ALERTS, Stream.EVENTS)
            if api in self.cleaned_data["supported_apis"]
        ]
        return {
            "clientId": self.cleaned_data["client_id"],
            "supported_apis": [str(a) for a in apis],
        }

    def new_secret(self) -> str:
        """The secret to store, or "" to keep the stored one."""
        return self.cleaned_data.get("client_secret", "")
