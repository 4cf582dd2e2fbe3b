"""``collector.redact``: what a remote service says is made safe to store and show."""

import base64
import json
import string
from urllib.parse import quote, quote_plus

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.redact import ID_LIMIT, MESSAGE_LIMIT, REDACTED, redact, redact_values

SECRET = "Zq9/very$ecret+Value=42&more"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJjbGllbnQtMTIzIiwiZXhwIjoxNzAwMDAwMDAwfQ."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)


@pytest.mark.parametrize(
    "form",
    [
        SECRET,
        SECRET.upper(),
        quote(SECRET, safe=""),
        quote_plus(SECRET),
        base64.b64encode(SECRET.encode()).decode(),
        base64.urlsafe_b64encode(SECRET.encode()).decode().rstrip("="),
        json.dumps(SECRET)[1:-1],
    ],
    ids=["verbatim", "upper", "quoted", "form", "base64", "base64url", "json"],
)
def test_a_given_secret_goes_in_every_cheap_form(form):
    text = redact(f"invalid client_secret {form} for client x", secrets=[SECRET])
    assert text == f"invalid client_secret {REDACTED} for client x"


def test_a_secret_broken_by_control_characters_still_goes():
    assert redact("echo: ab\x00cd\x01efgh!", secrets=["abcdefgh!"]) == f"echo: {REDACTED}"


def test_empty_secrets_are_ignored():
    assert redact("nothing to hide", secrets=["", None]) == "nothing to hide"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Authorization: Bearer abc.DEF-123_xyz~", f"Authorization: Bearer {REDACTED}"),
        ("header was bearer%20q1w2e3r4t5y6", f"header was bearer {REDACTED}"),
        ("Basic dXNlcjpwYXNzd29yZA== refused", f"Basic {REDACTED} refused"),
        # Naming a token is not showing one.
        ("Invalid Bearer token for Basic authentication", None),
    ],
)
def test_bearer_and_basic_credentials(text, expected):
    assert redact(text) == (expected or text)


@pytest.mark.parametrize(
    "token",
    [
        JWT,
        JWT.rsplit(".", 1)[0] + ".",  # unsigned
        "eyJhbGciOiJub25lIn0.eyJhIjoxfQ",  # short, two parts
    ],
)
def test_json_web_tokens(token):
    assert redact(f"token {token} expired") == f"token {REDACTED} expired"


@pytest.mark.parametrize(
    "token",
    [
        "0123456789abcdef0123456789abcdef",  # 32 hex
        "3f2a" * 16,  # 64 hex
        "q8Zk3VbXh2Lr9TnWcYp4MdFs7GjEa1Uo5iKy",  # base64-ish
        "AbCdEfGhIjKlMnOpQrStUvWxYzAbCdEfGh",  # mixed case, no digit
        "a+b/1" * 8 + "==",  # padded base64
    ],
)
def test_long_opaque_tokens(token):
    assert redact(f"[{token}]") == f"[{REDACTED}]"


@pytest.mark.parametrize(
    "text",
    [
        "correlation 123e4567-e89b-12d3-a456-426614174000",  # request ids users quote
        "0123456789abcdef0123456789abcde",  # 31 characters: below the threshold
        "error customer-validation-failed-for-this-request",  # a long code name
    ],
)
def test_what_is_kept(text):
    assert redact(text) == text


def test_control_and_format_characters():
    text = "line one\r\nline\ttwo\x00\x1b[31m red \u202eevil\u200b end  "
    assert redact(text) == "line one line two[31m red evil end"


def test_the_cap_comes_after_redaction():
    text = "x" * (MESSAGE_LIMIT - 3) + SECRET
    out = redact(text, secrets=[SECRET])
    assert len(out) == MESSAGE_LIMIT and out.endswith("…")
    assert SECRET[:4] not in out
    assert len(redact("y" * 1000, limit=ID_LIMIT)) == ID_LIMIT
    assert redact("short", limit=ID_LIMIT) == "short"


@pytest.mark.parametrize("value, expected", [(None, ""), (404, "404"), ({"a": 1}, "{'a': 1}")])
def test_anything_becomes_a_string(value, expected):
    assert redact(value) == expected


def test_redact_values_walks_dicts_and_lists():
    details = {
        "error": f"echo {SECRET}",
        "nested": {"ids": [JWT, "ok"], "count": 3},
        "retrying": True,
        "retryAfter": 1.5,
    }
    out = redact_values(details, secrets=[SECRET], limit=50)
    assert out == {
        "error": f"echo {REDACTED}",
        "nested": {"ids": [REDACTED, "ok"], "count": 3},
        "retrying": True,
        "retryAfter": 1.5,
    }
    assert details["error"] == f"echo {SECRET}"  # the input is left alone


SECRET_CHARS = string.ascii_letters + string.digits + "/+=-_.~!$&*%"


@settings(max_examples=300, derandomize=True, database=None, deadline=None)
@given(
    before=st.text(max_size=300),
    secret=st.text(alphabet=SECRET_CHARS, min_size=8, max_size=40).filter(
        lambda s: s.lower() not in REDACTED
    ),
    after=st.text(max_size=300),
    limit=st.integers(min_value=1, max_value=700),
)
def test_no_secret_survives_and_the_cap_holds(before, secret, after, limit):
    for form in (secret, quote(secret, safe=""), base64.b64encode(secret.encode()).decode()):
        out = redact(before + form + after, secrets=[secret], limit=limit)
        assert secret.lower() not in out.lower()
        assert len(out) <= limit
        assert not any(ord(c) < 0x20 for c in out)
