"""Validation rules shared by models, forms and the API (design section 7)."""

import math
import re
import zoneinfo
from functools import lru_cache

from django.core.exceptions import ValidationError

# Matched whole (fullmatch): with match(), "$" also matches before a trailing newline.
FIELD_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")
MAX_CUSTOM_FIELDS = 200
MAX_FIELDS_PER_RESOURCE = 10
MAX_FIELD_VALUE_LENGTH = 200
# Built-in names a user may set on a collector or source; every other name starting with "_" is
# reserved for metadata we compute.
SETTABLE_BUILTIN_FIELDS = {"_siemForward", "_budget"}
BUILTIN_FIELDS = (
    "_source",
    "_sourceCategory",
    "_collector",
    "_sourceName",
    "_messageTime",
    "_receiptTime",
    "_siemForward",
    "_siemVendor",
    "_siemProduct",
    "_siemFormat",
    "_siemEventID",
    "_budget",
    "_index",
)


def validate_field_name(name: str) -> None:
    """A custom field name: letters, digits, underscores; not starting with a digit or ``_``."""
    if not isinstance(name, str) or not name:
        raise ValidationError("A field name is required.", code="required")
    if len(name) > 255:
        raise ValidationError("A field name can have at most 255 characters.", code="max_length")
    if name.startswith("_"):
        raise ValidationError(
            "Field names starting with '_' are reserved for built-in metadata.", code="reserved"
        )
    if not FIELD_NAME_RE.fullmatch(name):
        raise ValidationError(
            "A field name may contain only letters, digits and underscores, and must not start "
            "with a digit.",
            code="invalid",
        )


def _storable(text: str) -> bool:
    if "\x00" in text:
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def validate_fields_map(fields) -> None:
    """The ``fields`` of a collector or source: at most 10 names, values up to 200 characters."""
    if fields in (None, ""):
        return
    if not isinstance(fields, dict):
        raise ValidationError("Fields must be a map of names to values.", code="invalid")
    if len(fields) > MAX_FIELDS_PER_RESOURCE:
        raise ValidationError(
            f"At most {MAX_FIELDS_PER_RESOURCE} fields are allowed; {len(fields)} were given.",
            code="too_many",
        )
    seen: set[str] = set()
    for name, value in fields.items():
        if name in SETTABLE_BUILTIN_FIELDS:
            pass
        else:
            try:
                validate_field_name(name)
            except ValidationError as exc:
                raise ValidationError(f"Field {name!r}: {exc.messages[0]}", code=exc.code)
        if name.lower() in seen:
            raise ValidationError(f"Field {name!r} is given twice.", code="duplicate")
        seen.add(name.lower())
        if name == "_siemForward":
            if not isinstance(value, bool) and str(value).lower() not in ("true", "false"):
                raise ValidationError("_siemForward must be true or false.", code="invalid")
            continue
        # NaN and infinity are numbers no JSON column stores; NUL and lone surrogates are text
        # neither database stores (PostgreSQL refuses NUL, UTF-8 has no surrogates).
        if (
            not isinstance(value, str | int | float)
            or isinstance(value, bool)
            or (isinstance(value, float) and not math.isfinite(value))
        ):
            raise ValidationError(f"The value of field {name!r} must be text.", code="invalid")
        if isinstance(value, str) and not _storable(value):
            raise ValidationError(
                f"The value of field {name!r} contains a character that cannot be stored.",
                code="invalid",
            )
        # A huge int is measured without str(), which refuses ints past Python's digit limit.
        if isinstance(value, int) and abs(value) >= 10**MAX_FIELD_VALUE_LENGTH:
            too_long = True
        else:
            too_long = len(str(value)) > MAX_FIELD_VALUE_LENGTH
        if too_long:
            raise ValidationError(
                f"The value of field {name!r} can have at most {MAX_FIELD_VALUE_LENGTH} characters.",
                code="max_length",
            )


@lru_cache(maxsize=1)
def time_zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones()) | {"UTC"}


def validate_time_zone(value: str) -> None:
    if value not in time_zones():
        raise ValidationError(f"{value!r} is not a known time zone (e.g. UTC, Europe/Berlin).")
