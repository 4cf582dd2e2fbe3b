"""The forms of the HTTP destination kinds: the shared destination fields plus each kind's own.

They validate the Add/Edit Destination page and the JSON API alike (the API's config keys map onto
these fields through each kind's ``config_keys``). Imported only when a form is needed: forms
import models, which the kind registry must not do when it loads.

Rules every HTTP kind shares:

* **URLs** are ``https://``; plain ``http://`` is accepted only for this machine (127.0.0.1, ::1,
  localhost), where no credential crosses a network in clear text. User info in a URL is refused
  (credentials belong in the secret field, which is encrypted and never shown back).
* **CA bundle** (``caBundle``): optional PEM certificates trusted instead of the system store for
  the receiver's TLS; it must parse as certificates and may not carry a private key (the config is
  stored unencrypted). It only applies to an https URL.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any
from urllib.parse import urlsplit

from django import forms
from django.core.exceptions import ValidationError

from collector.crypto import MASK
from collector.destinations.http import is_loopback
from collector.forms import DestinationForm
from collector.kinds.base import Fieldset

CA_BUNDLE_LIMIT = 100_000
_CONTROL = re.compile(r"[\x00-\x20\x7f]")
_VISIBLE = re.compile(r"^[\x21-\x7e]+$")  # what a token in an HTTP header may be made of
_GUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")


def secret_input() -> forms.PasswordInput:
    return forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


def check_url(value: str, *, path: bool = True, query: bool = False) -> str:
    """``value`` as a URL a destination may send to (see the module docstring), stripped."""
    value = (value or "").strip()
    if not value:
        raise ValidationError("A URL is required.", code="required")
    if _CONTROL.search(value):
        raise ValidationError("A URL may not contain spaces or control characters.", code="invalid")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - parsing the port is the check
    except ValueError:
        raise ValidationError("Enter a valid http(s) URL.", code="invalid")
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ValidationError(
            "Enter a URL that starts with https:// and names a host.", code="invalid"
        )
    if parts.username is not None or parts.password is not None:
        raise ValidationError(
            "Do not put credentials in the URL; enter them in the secret field.", code="invalid"
        )
    if parts.scheme == "http" and not is_loopback(parts.hostname):
        raise ValidationError(
            "Use https://: plain http:// is allowed only to this machine (127.0.0.1 or "
            "localhost), so credentials never cross a network unencrypted.",
            code="insecure",
        )
    if not query and (parts.query or parts.fragment):
        raise ValidationError("The URL may not have a query (?...) or fragment (#...).", "invalid")
    if parts.fragment:
        raise ValidationError("The URL may not have a fragment (#...).", code="invalid")
    if not path and parts.path not in ("", "/"):
        raise ValidationError(
            "Enter only the address of the receiver (https://host[:port]), without a path.",
            code="invalid",
        )
    return value


def check_plain(value: str, label: str, *, limit: int = 256) -> str:
    """A one-line setting (index, source type, client id...): no control characters."""
    value = (value or "").strip()
    if len(value) > limit:
        raise ValidationError(f"{label} can have at most {limit} characters.", code="max_length")
    if re.search(r"[\x00-\x1f\x7f]", value):
        raise ValidationError(f"{label} may not contain control characters.", code="invalid")
    return value


class DefaultCheckbox(forms.CheckboxInput):
    """A checkbox whose value is None when the data holds its key with no value (the JSON API's
    omitted key), so the field's default applies; an HTML form's unticked box sends no key at
    all and stays False."""

    def value_from_datadict(self, data, files, name):
        if name in data and data.get(name) is None:
            return None
        return super().value_from_datadict(data, files, name)


class HTTPDestinationForm(DestinationForm):
    """The shared destination fields plus a URL and a CA bundle.

    ``config_fields`` maps each non-secret API config key to its form field: the edit page's
    initial values come from it and :meth:`kind_config` stores by it.
    """

    ca_bundle = forms.CharField(
        label="CA bundle (PEM)",
        required=False,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3, "spellcheck": "false"}),
        help_text="Optional: certificates to trust for the receiver's TLS instead of the system "
        "store (a private CA or a self-signed receiver).",
    )

    config_fields: dict[str, str] = {}

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            config = self.instance.config or {}
            for key, name in self.config_fields.items():
                if name in self.fields and key in config:
                    self.fields[name].initial = config[key]

    def clean_ca_bundle(self) -> str:
        text = (self.cleaned_data.get("ca_bundle") or "").strip()
        if not text:
            return ""
        if len(text) > CA_BUNDLE_LIMIT:
            raise ValidationError("The CA bundle is too long.", code="max_length")
        if "PRIVATE KEY" in text:
            raise ValidationError(
                "The CA bundle holds a private key; paste only the CA certificates.",
                code="invalid",
            )
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(text.encode("ascii"))
        except (ValueError, UnicodeEncodeError):
            raise ValidationError(
                "The CA bundle must be one or more PEM certificates (-----BEGIN CERTIFICATE-----).",
                code="invalid",
            )
        return text + "\n"

    def url_scheme(self) -> str:
        """The scheme of the cleaned URL ('' when unknown, e.g. a kept secret URL)."""
        return urlsplit(self.cleaned_data.get("url") or "").scheme

    def clean(self):
        cleaned = super().clean()
        if cleaned.get("ca_bundle") and self.url_scheme() == "http":
            self.add_error(
                "ca_bundle",
                ValidationError("A CA bundle only applies to an https:// URL.", code="invalid"),
            )
        return cleaned

    def kind_config(self) -> dict:
        return {key: self.cleaned_data.get(name) for key, name in self.config_fields.items()}


# --- Splunk HEC -------------------------------------------------------------------------------
_SPLUNK_INDEX = re.compile(r"^[a-z0-9_][a-z0-9_-]{0,79}$")
_HEC_SUFFIXES = ("/services/collector/event", "/services/collector/raw", "/services/collector")


class SplunkHECForm(HTTPDestinationForm):
    url = forms.CharField(
        label="HEC URL",
        max_length=2048,
        help_text="The HTTP Event Collector's base address, e.g. https://splunk.example.com:8088.",
    )
    token = forms.CharField(
        label="HEC token", max_length=512, required=False, widget=secret_input()
    )
    index = forms.CharField(
        label="Index", max_length=80, required=False, help_text="Empty: the token's default index."
    )
    sourcetype = forms.CharField(
        label="Source type", max_length=256, required=False, initial="_json"
    )
    source = forms.CharField(
        label="Source", max_length=256, required=False, help_text="Empty: each message's _source."
    )
    host = forms.CharField(
        label="Host", max_length=256, required=False, help_text="Empty: each message's _collector."
    )
    ack = forms.BooleanField(
        label="Indexer acknowledgement",
        required=False,
        help_text="Wait until Splunk confirms each batch is indexed (the token must have it on).",
    )
    channel = forms.CharField(
        label="Channel",
        max_length=36,
        required=False,
        help_text="A GUID sent as X-Splunk-Request-Channel; generated on save when "
        "acknowledgement is on and this is empty.",
    )

    kind_name = "SplunkHEC"
    secret_field = "token"
    config_fields = {
        "url": "url",
        "index": "index",
        "sourcetype": "sourcetype",
        "source": "source",
        "host": "host",
        "channel": "channel",
        "ack": "ack",
        "caBundle": "ca_bundle",
    }
    fieldsets = (
        Fieldset("Receiver", ("url", "token", "ca_bundle"), test_connection=True),
        Fieldset("Events", ("index", "sourcetype", "source", "host")),
        Fieldset("Acknowledgement", ("ack", "channel")),
    )

    def clean_url(self) -> str:
        value = check_url(self.cleaned_data.get("url"), query=False).rstrip("/")
        # People paste the endpoint they read about; the base is what is meant.
        for suffix in _HEC_SUFFIXES:
            if value.endswith(suffix):
                value = value[: -len(suffix)]
                break
        return value

    def clean_token(self) -> str:
        value = (self.cleaned_data.get("token") or "").strip()
        if value and value != MASK and not _VISIBLE.match(value):
            raise ValidationError(
                "A HEC token has only visible ASCII characters (no spaces).", "invalid"
            )
        return value

    def clean_index(self) -> str:
        value = check_plain(self.cleaned_data.get("index"), "The index")
        if value and not _SPLUNK_INDEX.match(value):
            raise ValidationError(
                "A Splunk index name has lower-case letters, digits, '_' and '-' only.", "invalid"
            )
        return value

    def clean_sourcetype(self) -> str:
        return check_plain(self.cleaned_data.get("sourcetype"), "The source type") or "_json"

    def clean_source(self) -> str:
        return check_plain(self.cleaned_data.get("source"), "The source")

    def clean_host(self) -> str:
        return check_plain(self.cleaned_data.get("host"), "The host")

    def clean_channel(self) -> str:
        value = (self.cleaned_data.get("channel") or "").strip()
        if value and not _GUID.match(value):
            raise ValidationError(
                "The channel must be a GUID, e.g. 0B7A1E2C-3D4F-4A5B-8C6D-7E8F9A0B1C2D.", "invalid"
            )
        return value.upper()

    def kind_config(self) -> dict:
        config = super().kind_config()
        config["ack"] = bool(config.get("ack"))
        if config["ack"] and not config.get("channel"):
            kept = (self.instance.config or {}).get("channel") if self.instance.pk else ""
            config["channel"] = kept or str(uuid.uuid4()).upper()
        return config


# --- Elasticsearch / OpenSearch _bulk ---------------------------------------------------------
_BAD_INDEX_CHARS = set('\\/*?"<>| ,#:')


class ElasticBulkForm(HTTPDestinationForm):
    """Authentication is by API key, or by user name and password: a user name chooses the
    latter. The API keeps the two spellings (``apiKey``; ``username`` + ``password``) and the one
    encrypted secret holds whichever is in use; ``auth`` in the stored config says which."""

    url = forms.CharField(
        label="URL",
        max_length=2048,
        help_text="The cluster's address, e.g. https://es.example.com:9200 (a path prefix is "
        "kept); _bulk is appended.",
    )
    index = forms.CharField(
        label="Index", max_length=255, help_text="An index, alias or data stream, e.g. logs-sumo."
    )
    api_key = forms.CharField(
        label="API key",
        max_length=1024,
        required=False,
        widget=secret_input(),
        help_text="The encoded API key (or id:key). Leave empty to use a user name and password.",
    )
    username = forms.CharField(label="User name", max_length=256, required=False)
    password = forms.CharField(
        label="Password", max_length=1024, required=False, strip=False, widget=secret_input()
    )

    kind_name = "ElasticBulk"
    secret_field = "api_key"
    secret_required = False  # either secret will do: clean() decides which one is required
    config_fields = {
        "url": "url",
        "index": "index",
        "username": "username",
        "caBundle": "ca_bundle",
    }
    fieldsets = (
        Fieldset(
            "Receiver",
            ("url", "api_key", "username", "password", "ca_bundle"),
            test_connection=True,
        ),
        Fieldset("Documents", ("index",)),
    )

    def clean_url(self) -> str:
        value = check_url(self.cleaned_data.get("url")).rstrip("/")
        return value.removesuffix("/_bulk")

    def clean_index(self) -> str:
        value = check_plain(self.cleaned_data.get("index"), "The index", limit=255)
        if not value:
            raise ValidationError("An index is required.", code="required")
        if (
            value != value.lower()
            or value in (".", "..")
            or value[0] in "-_+"
            or _BAD_INDEX_CHARS & set(value)
            or len(value.encode("utf-8")) > 255
        ):
            raise ValidationError(
                "An index name is lower-case, does not start with '-', '_' or '+', and has none "
                'of \\ / * ? " < > | , # : or spaces.',
                code="invalid",
            )
        return value

    def clean_username(self) -> str:
        value = check_plain(self.cleaned_data.get("username"), "The user name")
        if ":" in value:
            raise ValidationError("A user name for basic authentication has no ':'.", "invalid")
        return value

    def clean(self):
        cleaned = super().clean()
        api_key = cleaned.get("api_key") or ""  # the base turned ******** into ""
        password = cleaned.get("password") or ""
        if password == MASK:
            password = ""
        cleaned["password"] = password
        auth = "basic" if cleaned.get("username") else "apikey"
        cleaned["auth"] = auth
        stored_auth = (self.instance.config or {}).get("auth") if self.instance.pk else None
        # A stored secret may be kept only by the mode that stored it: an API key is no password.
        keeps = self.instance.has_secret and stored_auth == auth
        if auth == "basic":
            if api_key:
                self.add_error(
                    "api_key",
                    ValidationError(
                        "Give an API key or a user name and password, not both.", "invalid"
                    ),
                )
            elif not password and not keeps and "password" not in self.errors:
                self.add_error(
                    "password",
                    ValidationError("A password is required with a user name.", "required"),
                )
        elif not api_key and not keeps and "api_key" not in self.errors:
            if password:
                self.add_error(
                    "username",
                    ValidationError("A user name is required with a password.", "required"),
                )
            else:
                self.add_error(
                    "api_key",
                    ValidationError(
                        "An API key, or a user name and password, is required.", "required"
                    ),
                )
        if api_key and not _VISIBLE.match(api_key):
            self.add_error(
                "api_key",
                ValidationError("An API key has only visible ASCII characters.", "invalid"),
            )
        return cleaned

    def new_secret(self) -> str:
        if not hasattr(self, "cleaned_data"):
            return ""
        if self.cleaned_data.get("auth") == "basic":
            return self.cleaned_data.get("password") or ""
        return self.cleaned_data.get("api_key") or ""

    def kind_config(self) -> dict:
        config = super().kind_config()
        config["auth"] = "basic" if config.get("username") else "apikey"
        return config


# --- Sumo Logic HTTP Logs source --------------------------------------------------------------
SUMO_PATH = "/receiver/v1/http/"


class SumoHTTPForm(HTTPDestinationForm):
    """The HTTP source URL is the secret (its last path segment is the source's token): it is
    stored encrypted and shown masked; the config keeps only its ``endpoint`` (scheme and host)
    for lists and messages."""

    url = forms.CharField(
        label="HTTP source URL",
        max_length=2048,
        required=False,
        widget=secret_input(),
        help_text="The address Sumo Logic shows for the HTTP Logs source, "
        "https://endpoint…sumologic.com/receiver/v1/http/…; it is kept secret.",
    )

    kind_name = "SumoHTTP"
    secret_field = "url"
    config_fields = {"caBundle": "ca_bundle"}
    fieldsets = (Fieldset("Receiver", ("url", "ca_bundle"), test_connection=True),)

    def clean_url(self) -> str:
        value = (self.cleaned_data.get("url") or "").strip()
        if not value or value == MASK:
            return value
        value = check_url(value)
        path = urlsplit(value).path
        if not path.startswith(SUMO_PATH) or len(path) <= len(SUMO_PATH):
            raise ValidationError(
                f"An HTTP Logs source URL has the path {SUMO_PATH}<token>.", code="invalid"
            )
        return value

    def url_scheme(self) -> str:
        url = self.cleaned_data.get("url") or ""
        if url:
            return urlsplit(url).scheme
        return urlsplit((self.instance.config or {}).get("endpoint", "")).scheme

    def kind_config(self) -> dict:
        config = super().kind_config()
        url = self.cleaned_data.get("url") or ""
        if url:
            parts = urlsplit(url)
            config["endpoint"] = f"{parts.scheme}://{parts.netloc}"
        else:  # the stored URL is kept, and so is what we know of it
            config["endpoint"] = (self.instance.config or {}).get("endpoint", "")
        return config


# --- Microsoft Sentinel (Logs Ingestion API) --------------------------------------------------
_DCR = re.compile(r"^dcr-[0-9a-f]{32}$")
_STREAM = re.compile(r"^(Custom|Microsoft)-[A-Za-z0-9_]{1,100}$")


class SentinelForm(HTTPDestinationForm):
    url = forms.CharField(
        label="Data collection endpoint",
        max_length=2048,
        help_text="The logs ingestion URL of the data collection endpoint (or of the rule), e.g. "
        "https://my-dce-a1b2.westeurope-1.ingest.monitor.azure.com.",
    )
    dcr_immutable_id = forms.CharField(
        label="Data collection rule immutable ID", max_length=64, help_text="dcr-… (32 hex digits)."
    )
    stream_name = forms.CharField(
        label="Stream",
        max_length=128,
        help_text="The rule's input stream, e.g. Custom-SumoSources.",
    )
    token_url = forms.CharField(
        label="Token URL",
        max_length=2048,
        help_text="https://login.microsoftonline.com/<tenant id>/oauth2/v2.0/token",
    )
    client_id = forms.CharField(label="Application (client) ID", max_length=64)
    client_secret = forms.CharField(
        label="Client secret", max_length=1024, required=False, strip=False, widget=secret_input()
    )

    kind_name = "SentinelLogsIngestion"
    secret_field = "client_secret"
    config_fields = {
        "url": "url",
        "dcrImmutableId": "dcr_immutable_id",
        "streamName": "stream_name",
        "tokenUrl": "token_url",
        "clientId": "client_id",
        "caBundle": "ca_bundle",
    }
    fieldsets = (
        Fieldset(
            "Azure",
            ("url", "dcr_immutable_id", "stream_name", "token_url", "client_id", "client_secret"),
            test_connection=True,
        ),
        Fieldset("TLS", ("ca_bundle",)),
    )

    def clean_url(self) -> str:
        return check_url(self.cleaned_data.get("url"), path=False).rstrip("/")

    def clean_dcr_immutable_id(self) -> str:
        value = (self.cleaned_data.get("dcr_immutable_id") or "").strip()
        if not _DCR.match(value):
            raise ValidationError(
                "The immutable ID looks like dcr- followed by 32 lower-case hex digits.", "invalid"
            )
        return value

    def clean_stream_name(self) -> str:
        value = (self.cleaned_data.get("stream_name") or "").strip()
        if not _STREAM.match(value):
            raise ValidationError(
                "A stream name starts with Custom- or Microsoft- followed by letters, digits or "
                "'_'.",
                code="invalid",
            )
        return value

    def clean_token_url(self) -> str:
        return check_url(self.cleaned_data.get("token_url"))

    def clean_client_id(self) -> str:
        value = (self.cleaned_data.get("client_id") or "").strip()
        if not _GUID.match(value):
            raise ValidationError("The application (client) ID is a GUID.", code="invalid")
        return value.lower()

    def clean(self):
        cleaned = super().clean()
        token_url = cleaned.get("token_url") or ""
        if cleaned.get("ca_bundle") and urlsplit(token_url).scheme == "http":
            self.add_error(
                "ca_bundle",
                ValidationError("A CA bundle only applies to https:// URLs.", code="invalid"),
            )
        return cleaned


# --- generic webhook --------------------------------------------------------------------------
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "trailers", "transfer-encoding", "upgrade",
    }
)  # fmt: skip
# Headers the kind sets itself (or that would change how the request is framed or routed).
RESERVED_HEADERS = frozenset({"authorization", "host", "expect"})
_TOKEN_CHARS = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,64}$")
_HEADER_VALUE = re.compile(r"^[\x20-\x7e\t]{0,4096}$")
MAX_HEADERS = 20


def check_headers(value: Any) -> dict[str, str]:
    """A webhook's custom headers: a JSON object of names to string values, none that the kind
    sets itself (Authorization, Content-*, Host), no hop-by-hop header, visible ASCII only (no
    line breaks: no header injection)."""
    if value in (None, "", {}):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise ValidationError("Headers must be a JSON object of names to values.", "invalid")
    if not isinstance(value, dict):
        raise ValidationError("Headers must be a JSON object of names to values.", "invalid")
    if len(value) > MAX_HEADERS:
        raise ValidationError(f"At most {MAX_HEADERS} custom headers are allowed.", "too_many")
    seen: set[str] = set()
    out: dict[str, str] = {}
    for name, val in value.items():
        if not isinstance(name, str) or not _TOKEN_CHARS.match(name):
            raise ValidationError(f"{name!r} is not a valid header name.", code="invalid")
        lower = name.lower()
        if lower in HOP_BY_HOP:
            raise ValidationError(
                f"{name} is a hop-by-hop header and cannot be set.", code="reserved"
            )
        if lower in RESERVED_HEADERS or lower.startswith("content-"):
            raise ValidationError(
                f"{name} is set by the destination itself (use Authentication for credentials).",
                code="reserved",
            )
        if lower in seen:
            raise ValidationError(f"Header {name} is given twice.", code="duplicate")
        seen.add(lower)
        if not isinstance(val, str) or not _HEADER_VALUE.match(val):
            raise ValidationError(
                f"The value of header {name} must be text of visible ASCII characters.", "invalid"
            )
        out[name] = val.strip()
    return out


class HeadersField(forms.JSONField):
    def to_python(self, value):
        return check_headers(super().to_python(value))


class WebhookForm(HTTPDestinationForm):
    url = forms.CharField(
        label="URL",
        max_length=2048,
        help_text="Where batches are POSTed, e.g. https://host/ingest.",
    )
    payload = forms.ChoiceField(
        label="Payload",
        choices=[("ndjson", "NDJSON (application/x-ndjson)"), ("array", "JSON array")],
        initial="ndjson",
        required=False,  # omitted: NDJSON
    )
    gzip = forms.NullBooleanField(
        label="Compress with gzip",
        required=False,
        initial=True,
        widget=DefaultCheckbox,
        help_text="Content-Encoding: gzip (on by default).",
    )
    headers = HeadersField(
        label="Custom headers",
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "spellcheck": "false"}),
        help_text='A JSON object, e.g. {"X-Env": "prod"}. Shown to every viewer: put credentials '
        "in Authentication, not here.",
    )
    auth = forms.ChoiceField(
        label="Authentication",
        choices=[("none", "None"), ("bearer", "Bearer token"), ("basic", "Basic (user, password)")],
        initial="none",
        required=False,  # omitted: none
    )
    username = forms.CharField(label="User name", max_length=256, required=False)
    token = forms.CharField(
        label="Token or password",
        max_length=4096,
        required=False,
        strip=False,
        widget=secret_input(),
        help_text="The bearer token, or the password for basic authentication.",
    )

    kind_name = "Webhook"
    secret_field = "token"
    secret_required = False  # only bearer and basic need one: clean() decides
    config_fields = {
        "url": "url",
        "payload": "payload",
        "headers": "headers",
        "auth": "auth",
        "username": "username",
        "gzip": "gzip",
        "caBundle": "ca_bundle",
    }
    fieldsets = (
        Fieldset(
            "Receiver", ("url", "auth", "username", "token", "ca_bundle"), test_connection=True
        ),
        Fieldset("Requests", ("payload", "gzip", "headers")),
    )

    def clean_url(self) -> str:
        return check_url(self.cleaned_data.get("url"), query=True)

    def clean_payload(self) -> str:
        return self.cleaned_data.get("payload") or "ndjson"

    def clean_auth(self) -> str:
        return self.cleaned_data.get("auth") or "none"

    def clean_username(self) -> str:
        value = check_plain(self.cleaned_data.get("username"), "The user name")
        if ":" in value:
            raise ValidationError("A user name for basic authentication has no ':'.", "invalid")
        return value

    def clean(self):
        cleaned = super().clean()
        auth = cleaned.get("auth") or "none"
        if cleaned.get("gzip") is None:
            cleaned["gzip"] = True
        if auth == "basic" and not cleaned.get("username") and "username" not in self.errors:
            self.add_error(
                "username", ValidationError("A user name is required for basic.", "required")
            )
        if (
            auth != "none"
            and not cleaned.get("token")
            and not self.instance.has_secret
            and "token" not in self.errors
        ):
            self.add_error(
                "token",
                ValidationError(
                    "A token is required for bearer authentication."
                    if auth == "bearer"
                    else "A password is required for basic authentication.",
                    code="required",
                ),
            )
        token = cleaned.get("token") or ""
        if auth == "bearer" and token and not _VISIBLE.match(token):
            self.add_error(
                "token",
                ValidationError("A bearer token has only visible ASCII characters.", "invalid"),
            )
        return cleaned

    def kind_config(self) -> dict:
        config = super().kind_config()
        config["gzip"] = config.get("gzip") is not False
        config["headers"] = config.get("headers") or {}
        if config.get("auth") != "basic":
            config["username"] = ""
        return config
