"""The Sophos Central source form: the shared source fields plus credentials and APIs.

The same form validates the Add Source page and the JSON API (whose config keys map onto these
fields through ``SophosCentralKind.config_keys``).
"""

from django import forms
from django.core.exceptions import ValidationError

from collector.forms import SourceForm
from collector.kinds.base import Fieldset

STREAMS = ("Alerts", "Events")


class SophosCentralSourceForm(SourceForm):
    """A Sophos Central source: the shared fields plus credentials and the APIs to collect."""

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
        choices=[(s, s) for s in STREAMS],
        widget=forms.CheckboxSelectMultiple,
        initial=list(STREAMS),
        error_messages={"required": "Select at least one of Alerts and Events."},
        help_text=(
            "Endpoint details (hostname, OS, IP addresses, health, tamper protection, last user) "
            "of the endpoints that endpoint alerts name come with Alerts, as _sourceName "
            "Endpoints."
        ),
    )

    kind_name = "Sophos Central"
    secret_field = "client_secret"
    fieldsets = (
        Fieldset("Credentials", ("client_id", "client_secret"), test_connection=True),
        Fieldset("Collection", ("supported_apis", "polling_interval")),
    )

    class Meta(SourceForm.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        source = self.instance
        if source.pk:
            self.fields["client_id"].initial = source.config.get("clientId", "")
            self.fields["supported_apis"].initial = list(source.config.get("supported_apis") or [])

    def clean_client_id(self):
        value = self.cleaned_data["client_id"].strip()
        if not value:
            raise ValidationError("A Client ID is required.", code="required")
        return value

    def kind_config(self) -> dict:
        """The non-secret configuration stored in ``Source.config``."""
        chosen = self.cleaned_data["supported_apis"]
        return {
            "clientId": self.cleaned_data["client_id"],
            "supported_apis": [api for api in STREAMS if api in chosen],
        }
