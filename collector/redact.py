"""Make text from outside safe to store and show: no secrets, no tokens, no control characters.

Whatever a remote service sends back (error messages, codes, request ids) may echo what it was
sent, the secret included. Everything such a service supplies goes through :func:`redact` before
it is stored in an error, a health event or a run; the framework applies it once more where those
are written, as a defence in depth that catches what a kind forgot.

What is removed, each occurrence replaced with ``[redacted]``:

* the given secret strings, also percent-encoded, form-encoded, base64-encoded and JSON-escaped,
  in any letter case;
* bearer and basic credentials (``Bearer <token>``, ``Basic <base64>``), keeping the word;
* JSON Web Tokens (``eyJ...`` header, dot, payload, optional dot and signature);
* long opaque tokens: a run of 32 or more base64 or hex characters with a digit or mixed letter
  case in it. Canonical UUIDs are kept: they are the request ids users quote to support.

Control and format characters (line breaks, NUL, bidirectional overrides) are removed or turned
into spaces, and the result is capped at ``limit`` characters.
"""

from __future__ import annotations

import base64
import json
import re
import unicodedata
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote, quote_plus

REDACTED = "[redacted]"
MESSAGE_LIMIT = 500  # a vendor's message
ID_LIMIT = 128  # a vendor's error code or request id
ELLIPSIS = "…"

_AUTH = re.compile(r"(?i)\b(bearer|basic)(?:\s+|%20|\+)([A-Za-z0-9\-._~+/%]+=*)")
_JWT = re.compile(r"\beyJ[A-Za-z0-9_-]{4,}(?:\.[A-Za-z0-9_-]*){1,2}")
# Runs of base64, base64url and hex characters; judged one by one in _opaque.
_RUN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{32,}={0,2}")
_UUID = re.compile(r"[0-9a-fA-F]{8}(?:-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}")
_SPACES = re.compile(r"\s+")


def _forms(secret: str) -> set[str]:
    """The secret as it may come back: verbatim and in the encodings that cost nothing to try."""
    raw = secret.encode("utf-8")
    forms = {
        secret,
        quote(secret, safe=""),
        quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
    }
    for encoded in (base64.b64encode(raw), base64.urlsafe_b64encode(raw)):
        text = encoded.decode("ascii")
        forms.update((text, text.rstrip("=")))
    return {form for form in forms if form}


def _clean(text: str) -> str:
    """Line breaks and tabs become spaces; other control and format characters go."""
    out = []
    for char in text:
        category = unicodedata.category(char)
        if char.isspace():
            out.append(" ")
        elif category in ("Cc", "Cf", "Cs", "Co", "Cn"):
            continue
        else:
            out.append(char)
    return _SPACES.sub(" ", "".join(out)).strip()


def _credential(match: re.Match) -> str:
    word, value = match.groups()
    # "Bearer token expired" names a token without showing one: only a value that looks made by a
    # machine (long, and not all lower-case letters) is taken for a credential.
    if len(value) >= 8 and not (value.isalpha() and value.islower()):
        return f"{word} {REDACTED}"
    return match.group(0)


def _opaque(match: re.Match) -> str:
    token = match.group(0)
    if _UUID.fullmatch(token):
        return token
    letters = [c for c in token if c.isalpha()]
    mixed_case = any(c.isupper() for c in letters) and any(c.islower() for c in letters)
    if any(c.isdigit() for c in token) or mixed_case:
        return REDACTED
    return token  # a long word-like run (lower-case-and-dashes code names) tells nothing secret


def redact(text: Any, *, secrets: Iterable[str] = (), limit: int = MESSAGE_LIMIT) -> str:
    """``text`` (made a string) without secrets, tokens or control characters, at most ``limit``
    characters long (the cut marked with an ellipsis). Empty secrets are ignored; never raises
    for any ``text``.
    """
    text = "" if text is None else str(text)
    text = _clean(text)
    forms = set()
    for secret in secrets:
        if isinstance(secret, str) and secret:
            forms |= _forms(secret)
            cleaned = _clean(secret)
            if cleaned:
                forms.add(cleaned)  # as it looks once its control characters are gone
    # Longest first: a secret's encoded form may contain a shorter form of it.
    for form in sorted(forms, key=len, reverse=True):
        text = re.sub(re.escape(form), REDACTED, text, flags=re.IGNORECASE)
    text = _AUTH.sub(_credential, text)
    text = _JWT.sub(REDACTED, text)
    text = _RUN.sub(_opaque, text)
    limit = max(1, int(limit))
    if len(text) > limit:
        text = text[: limit - 1] + ELLIPSIS
    return text


def redact_values(value: Any, *, secrets: Iterable[str] = (), limit: int = MESSAGE_LIMIT) -> Any:
    """``value`` with :func:`redact` applied to every string in it, in dicts and lists too.

    Keys are kept as they are (they are ours); other types pass through unchanged.
    """
    secrets = tuple(secrets)
    if isinstance(value, str):
        return redact(value, secrets=secrets, limit=limit)
    if isinstance(value, dict):
        return {k: redact_values(v, secrets=secrets, limit=limit) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_values(v, secrets=secrets, limit=limit) for v in value)
    return value
