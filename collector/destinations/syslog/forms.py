"""The Syslog destination form: receiver, format and TLS fields with field-level messages.

The same form validates the Add/Edit Destination page and the JSON API (whose config keys map
onto these fields through ``SyslogKind.config_keys``). The client key is the secret: it is never
rendered back, and blank (or ``********``) keeps the stored one.
"""

from __future__ import annotations

import ipaddress
import re
import ssl

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from django import forms
from django.core.exceptions import ValidationError

from collector.crypto import MASK, DecryptionError
from collector.destinations.syslog import frames
from collector.forms import DestinationForm
from collector.kinds.base import Fieldset

# A DNS name: labels of letters, digits, hyphens (and underscores, which internal DNS zones use)
# of at most 63 characters, not starting or ending with a hyphen; 253 characters in all.
_LABEL = r"(?!-)[A-Za-z0-9_-]{1,63}(?<!-)"
HOSTNAME_RE = re.compile(rf"^(?=.{{1,253}}\.?$){_LABEL}(?:\.{_LABEL})*\.?$")

PEM_CERT = "-----BEGIN CERTIFICATE-----"


class SecretTextarea(forms.Textarea):
    """A textarea (a PEM key has line breaks, which a password input drops) that never renders
    its value, so a key typed into a form that failed validation is not sent back in HTML."""

    def format_value(self, value):
        return None


def _pem_certificates(text: str, what: str) -> list[x509.Certificate]:
    try:
        certificates = x509.load_pem_x509_certificates(text.encode())
    except ValueError:
        certificates = []
    if not certificates:
        raise ValidationError(
            f"The {what} must be one or more PEM certificates ({PEM_CERT} ...).", code="invalid"
        )
    return certificates


def _public_bytes(public_key) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


class SyslogDestinationForm(DestinationForm):
    host = forms.CharField(
        label="Host",
        max_length=255,
        help_text="The receiver's host name or IP address, without a scheme or port.",
        error_messages={"required": "A host is required."},
    )
    port = forms.IntegerField(
        label="Port",
        min_value=1,
        max_value=65535,
        help_text="Usually 514 for UDP and TCP, 6514 for TLS.",
        error_messages={
            "required": "A port is required.",
            "invalid": "Enter the port as a whole number.",
            "min_value": "Enter a port between 1 and 65535.",
            "max_value": "Enter a port between 1 and 65535.",
        },
    )
    protocol = forms.ChoiceField(
        label="Protocol",
        choices=[("tls", "TLS"), ("tcp", "TCP"), ("udp", "UDP")],
        initial="tls",
        help_text="UDP sends one datagram per message, unacknowledged; a message over 65,507 "
        "bytes is cut.",
        error_messages={"required": "Choose UDP, TCP or TLS."},
    )
    framing = forms.ChoiceField(
        label="Framing",
        choices=[(frames.OCTET_COUNTING, "Octet counting (RFC 6587)"), (frames.LF, "LF")],
        initial=frames.OCTET_COUNTING,
        required=False,
        help_text="How messages are separated on a TCP or TLS stream; not used with UDP.",
    )
    syslog_format = forms.ChoiceField(
        label="Syslog format",
        choices=[(frames.RFC5424, "RFC 5424"), (frames.RFC3164, "RFC 3164 (BSD)")],
        initial=frames.RFC5424,
        required=False,
    )
    payload = forms.ChoiceField(
        label="Message format",
        choices=[(frames.JSON, "JSON (metadata and the vendor item)"), (frames.CEF, "CEF")],
        initial=frames.JSON,
        required=False,
    )
    ca_bundle = forms.CharField(
        label="CA bundle",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": PEM_CERT}),
        help_text="TLS only: the PEM certificates that may sign the receiver's certificate. "
        "Empty: this machine's trusted CAs.",
    )
    client_cert = forms.CharField(
        label="Client certificate",
        required=False,
        widget=forms.Textarea(attrs={"rows": 3, "placeholder": PEM_CERT}),
        help_text="TLS only, for receivers that require one: PEM, the certificate first.",
    )
    client_key = forms.CharField(
        label="Client key",
        required=False,
        widget=SecretTextarea(attrs={"rows": 3, "autocomplete": "off"}),
        help_text="The client certificate's unencrypted PEM private key; stored encrypted and "
        "never shown again.",
    )

    kind_name = "Syslog"
    secret_field = "client_key"
    secret_required = False  # only with a client certificate; clean() says so
    fieldsets = (
        Fieldset("Receiver", ("host", "port", "protocol", "framing")),
        Fieldset("Format", ("syslog_format", "payload")),
        Fieldset("TLS", ("ca_bundle", "client_cert", "client_key"), test_connection=True),
    )

    class Meta(DestinationForm.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self.instance.config or {}
        if self.instance.pk:
            for key, spec in (
                ("host", "host"),
                ("port", "port"),
                ("protocol", "protocol"),
                ("framing", "framing"),
                ("format", "syslog_format"),
                ("payload", "payload"),
                ("caBundle", "ca_bundle"),
                ("clientCert", "client_cert"),
            ):
                if key in config:
                    self.fields[spec].initial = config[key]
            if self.instance.has_secret:
                self.fields["client_key"].help_text = "Leave blank to keep the stored key."

    # --- one field at a time ------------------------------------------------------------------
    def clean_host(self) -> str:
        value = self.cleaned_data["host"].strip()
        if "://" in value:
            raise ValidationError(
                "Enter the host name only, without a scheme such as tcp://.", code="invalid"
            )
        bare = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        try:
            return str(ipaddress.ip_address(bare))
        except ValueError:
            pass
        if "/" in value:
            raise ValidationError("Enter the host name only, without a path.", code="invalid")
        if ":" in value:
            raise ValidationError(
                "Enter the port in the Port field, not after the host.", code="invalid"
            )
        if not HOSTNAME_RE.match(value):
            raise ValidationError(
                "Enter a host name (such as siem.example.net) or an IP address.", code="invalid"
            )
        return value

    def clean_framing(self) -> str:
        return self.cleaned_data.get("framing") or frames.OCTET_COUNTING

    def clean_syslog_format(self) -> str:
        return self.cleaned_data.get("syslog_format") or frames.RFC5424

    def clean_payload(self) -> str:
        return self.cleaned_data.get("payload") or frames.JSON

    def clean_ca_bundle(self) -> str:
        text = (self.cleaned_data.get("ca_bundle") or "").strip()
        if not text:
            return ""
        _pem_certificates(text, "CA bundle")
        try:  # what the session will do with it, so a bundle that passes here also works there
            ssl.create_default_context(cadata=text)
        except (ssl.SSLError, ValueError):
            raise ValidationError(
                "The CA bundle could not be loaded as trusted certificates.", code="invalid"
            )
        return text

    def clean_client_cert(self) -> str:
        text = (self.cleaned_data.get("client_cert") or "").strip()
        if text:
            _pem_certificates(text, "client certificate")
        return text

    def clean_client_key(self) -> str:
        # Error messages here never quote the value: it is a private key.
        text = (self.cleaned_data.get("client_key") or "").strip()
        if not text or text == MASK:
            return text
        try:
            serialization.load_pem_private_key(text.encode(), password=None)
        except TypeError:
            raise ValidationError(
                "The client key is encrypted; enter it without a passphrase "
                "(openssl pkey -in key.pem -out plain.pem).",
                code="invalid",
            )
        except Exception:  # cryptography raises ValueError, and others for some garbage
            raise ValidationError(
                "The client key must be a PEM private key (-----BEGIN PRIVATE KEY----- ...).",
                code="invalid",
            )
        return text

    # --- the fields together ------------------------------------------------------------------
    def clean(self):
        cleaned = super().clean()  # turns a blank or ******** key into "" (keep the stored one)
        protocol = cleaned.get("protocol")
        cert = cleaned.get("client_cert") or ""
        key = cleaned.get("client_key") or ""
        if protocol and protocol != "tls":
            for name, label in (
                ("ca_bundle", "A CA bundle"),
                ("client_cert", "A client certificate"),
                ("client_key", "A client key"),
            ):
                if cleaned.get(name) and name not in self.errors:
                    self.add_error(
                        name,
                        ValidationError(
                            f"{label} is only used with TLS: choose TLS, or clear this field.",
                            code="tls_only",
                        ),
                    )
            return cleaned
        if "client_cert" in self.errors or "client_key" in self.errors:
            return cleaned
        if cert and not key and not self.instance.has_secret:
            self.add_error(
                "client_key",
                ValidationError("A client certificate needs its key.", code="required"),
            )
        elif key and not cert:
            self.add_error(
                "client_cert",
                ValidationError("Enter the certificate that belongs to the key.", code="required"),
            )
        elif cert:
            self._check_pair(cert, key)
        return cleaned

    def _check_pair(self, cert_text: str, key_text: str) -> None:
        """The key must belong to the certificate (the first one of the chain)."""
        if not key_text:  # blank keeps the stored key: check that one
            try:
                key_text = self.instance.get_secret().reveal()
            except DecryptionError:
                return  # the page says so elsewhere; nothing to compare with
        try:
            key = serialization.load_pem_private_key(key_text.encode(), password=None)
        except Exception:  # a stored key that no longer parses: say it as for a new one
            self.add_error(
                "client_key",
                ValidationError("The stored client key could not be read; enter it again."),
            )
            return
        leaf = x509.load_pem_x509_certificates(cert_text.encode())[0]
        if _public_bytes(leaf.public_key()) != _public_bytes(key.public_key()):
            self.add_error(
                "client_key",
                ValidationError(
                    "This key does not belong to the client certificate.", code="mismatch"
                ),
            )

    def kind_config(self) -> dict:
        """The non-secret configuration stored in ``Destination.config`` (the API's keys)."""
        data = self.cleaned_data
        return {
            "host": data["host"],
            "port": data["port"],
            "protocol": data["protocol"],
            "framing": data["framing"],
            "format": data["syslog_format"],
            "payload": data["payload"],
            "caBundle": data.get("ca_bundle", ""),
            "clientCert": data.get("client_cert", ""),
        }
