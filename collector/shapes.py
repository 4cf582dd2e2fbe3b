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


# --- destinations -----------------------------------------------------------------------------
def destination_config(destination) -> dict:
    """The ``config`` object of a destination: its kind's keys, the secret as ``********``."""
    from collector.destinations import get_destination_kind

    try:
        return get_destination_kind(destination.kind).api_config(destination)
    except LookupError:
        # A destination of a kind no longer installed still shows its stored (non-secret) config.
        return dict(destination.config or {})


def delivery_json(figures) -> dict:
    """A destination's delivery figures (collector.status.DeliveryFigures) as the API shows them;
    ``backlog`` is counted up to collector.status.BACKLOG_CAP."""
    return {
        "backlog": figures.backlog.count,
        "oldestUndelivered": iso(figures.backlog.oldest),
        "deliveredLastHour": figures.delivered_last_hour,
        "deliveredTotal": figures.delivered_total,
        "lastSuccess": iso(figures.last_success),
    }


def destination_json(destination, figures=None) -> dict:
    """A destination as ``/api/v1/destinations`` answers it (sumo-api.md), with its delivery
    figures when given; the secret never appears."""
    body = {
        "id": destination.pk,
        "name": destination.name,
        "description": destination.description,
        "destinationType": destination.kind,
        "siem": destination.siem,
        "route": destination.route,
        "config": destination_config(destination),
        "state": {"state": destination.state},
    }
    if figures is not None:
        body["delivery"] = delivery_json(figures)
    return body
