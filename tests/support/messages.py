"""Stored messages for tests: one at a time, or many at once with ``bulk_create``."""

import datetime as dt
import json

from django.utils import timezone

from collector.models import Message


def message_fields(n, source=None, minutes_ago=1, **kw) -> dict:
    """The columns of message ``n`` (vendor id ``v-<n>``); keyword arguments override them."""
    moment = timezone.now() - dt.timedelta(minutes=minutes_ago)
    fields = {
        "source": source,
        "stream": "Alerts",
        "tenant_id": "tenant-1",
        "tenant_name": "Acme",
        "vendor_id": f"v-{n}",
        "source_name": "Sophos East",
        "source_category": "sophos/east",
        "collector_name": "Hosted EU",
        "siem_event_id": "malware",
        "raw": json.dumps({"id": f"v-{n}", "description": f"item number {n}"}),
        "message_time": moment,
        "receipt_time": moment,
    }
    fields.update(kw)
    return fields


def make_message(n, source=None, minutes_ago=1, **kw) -> Message:
    return Message.objects.create(**message_fields(n, source, minutes_ago, **kw))


def make_messages(count, start=0, **kw) -> None:
    """``count`` messages ``v-<start>``... in one go, for tests that need volume."""
    Message.objects.bulk_create(
        (Message(**message_fields(n, **kw)) for n in range(start, start + count)), batch_size=2000
    )
