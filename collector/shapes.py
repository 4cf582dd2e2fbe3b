"""The Sumo Logic JSON shapes that the pages and the API both show (contract: sumo-api.md).

A source's JSON page and the Collector Management API answer the same document, so it is built
here once; collector.api adds routing, validation and ETags around it. ``HealthEvent.as_sumo``
(collector.models) is the one shape that still lives elsewhere.
"""

import datetime as dt

from collector.kinds import get_kind
from collector.models import Source

SOURCE_TYPE = "Universal"


def iso(moment: dt.datetime | None) -> str | None:
    """A time as UTC ``2026-01-20T16:10:27.085Z`` (milliseconds, ``Z``), or None for None.

    ``moment`` must be timezone-aware (every stored time is); a naive one would be taken as the
    server's local time.
    """
    if moment is None:
        return None
    utc = moment.astimezone(dt.UTC)
    return utc.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def source_config(source: Source) -> dict:
    """The ``config`` object of a source, secret masked, ``_siemForward`` back among the fields."""
    config = {
        "name": source.name,
        "description": source.description,
        "category": source.category,
        "fields": {**(source.fields or {}), "_siemForward": source.forward_to_siem},
    }
    try:
        config.update(get_kind(source.kind).api_config(source))
    except LookupError:
        # A source of a kind no longer installed still shows its stored (non-secret) config.
        config.update(source.config or {}, pollingInterval=source.polling_interval)
    return config


def source_json(source: Source, *, export: bool = False) -> dict:
    """A source as the API answers it; ``export`` leaves out id and state (a download)."""
    body = {} if export else {"id": source.pk}
    body["schemaRef"] = {"type": source.kind}
    if not export:
        body["state"] = {"state": source.state}
    body["sourceType"] = SOURCE_TYPE
    body["config"] = source_config(source)
    return body
