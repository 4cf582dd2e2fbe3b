"""A strict CEF parser for tests: it refuses anything the specification does not allow, so a line
our writer produced and this parser accepted is well-formed CEF.

Strict means: the line starts with ``CEF:``; it holds no raw CR or LF; the header has exactly seven
fields, in which only ``\\\\`` and ``\\|`` are escapes; the severity is 0-10 or a word of the
specification; in the extension every unescaped ``=`` ends a key, keys are alphanumeric, unique
and separated from the previous value by one space, and values use only the escapes ``\\\\``,
``\\=``, ``\\r``, ``\\n`` (any other backslash sequence is an error).
"""

from __future__ import annotations

from dataclasses import dataclass

SEVERITY_WORDS = {"Unknown", "Low", "Medium", "High", "Very-High"}
_EXT_ESCAPES = {"\\": "\\", "=": "=", "r": "\r", "n": "\n"}


class CefSyntaxError(ValueError):
    pass


@dataclass
class Parsed:
    version: str
    device_vendor: str
    device_product: str
    device_version: str
    signature_id: str
    name: str
    severity: str
    extensions: dict[str, str]


def parse_cef(line: str) -> Parsed:
    if not line.startswith("CEF:"):
        raise CefSyntaxError("does not start with CEF:")
    if "\r" in line or "\n" in line:
        raise CefSyntaxError("holds a raw line break")
    fields: list[str] = []
    current: list[str] = []
    i = 4
    while len(fields) < 7:
        if i >= len(line):
            raise CefSyntaxError(f"only {len(fields)} header fields")
        c = line[i]
        if c == "\\":
            if i + 1 >= len(line) or line[i + 1] not in "\\|":
                raise CefSyntaxError(f"bad header escape at {i}")
            current.append(line[i + 1])
            i += 2
            continue
        if c == "|":
            fields.append("".join(current))
            current = []
        else:
            current.append(c)
        i += 1
    version, vendor, product, dversion, signature, name, severity = fields
    if version != "0":
        raise CefSyntaxError(f"version {version!r}")
    if not (severity in SEVERITY_WORDS or (severity.isdigit() and 0 <= int(severity) <= 10)):
        raise CefSyntaxError(f"severity {severity!r}")
    return Parsed(
        version, vendor, product, dversion, signature, name, severity, _extension(line[i:])
    )


def _extension(text: str) -> dict[str, str]:
    if text == "":
        return {}
    # The unescaped "=" signs: each one ends a key.
    equals = []
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            if i + 1 >= len(text):
                raise CefSyntaxError("extension ends in a lone backslash")
            i += 2
            continue
        if c == "=":
            equals.append(i)
        i += 1
    if not equals:
        raise CefSyntaxError("extension without key=value")
    result: dict[str, str] = {}
    key_starts = []
    for n, eq in enumerate(equals):
        lower = equals[n - 1] + 1 if n else 0
        space = text.rfind(" ", lower, eq)
        start = 0 if n == 0 else space + 1
        if n == 0 and space != -1:
            raise CefSyntaxError("the first key holds a space")
        if n > 0 and space == -1:
            raise CefSyntaxError(f"no space before the key ending at {eq}")
        key = text[start:eq]
        if not key or not key.isascii() or not key.isalnum():
            raise CefSyntaxError(f"bad key {key!r}")
        if key in result:
            raise CefSyntaxError(f"key {key!r} twice")
        result[key] = ""
        key_starts.append(start)
    keys = list(result)
    for n, eq in enumerate(equals):
        end = key_starts[n + 1] - 1 if n + 1 < len(equals) else len(text)
        result[keys[n]] = _unescape(text[eq + 1 : end])
    return result


def _unescape(value: str) -> str:
    out = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\":
            nxt = value[i + 1] if i + 1 < len(value) else ""
            if nxt not in _EXT_ESCAPES:
                raise CefSyntaxError(f"bad extension escape \\{nxt}")
            out.append(_EXT_ESCAPES[nxt])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)
