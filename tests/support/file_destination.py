"""A destination kind for engine tests: it appends each delivered message to a file.

A file works across processes, so a real cluster's worker delivers into it and the test reads
what arrived (and how often). Registered by dotted path (``tests.support.file_destination.FileKind``)
in ``SUMOSOURCES_DESTINATION_KINDS`` for a cluster, or with ``collector.destinations.register``
in-process. ``fail_with`` in the config (or a ``<path>.fail`` file holding an HTTP-like status)
makes ``send`` raise the classified error a receiver answering that status would cause, and a
``<path>.slow`` file holding seconds makes each batch take that long (a slow receiver, so that a
test can kill a worker in the middle of a delivery).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from django import forms

from collector.choices import ErrorType
from collector.destinations.base import DeliverySession, DestinationKind, SendResult
from collector.errors import CollectionError
from collector.forms import DestinationForm
from collector.kinds.base import TEXT, ConfigKey, Fieldset

PATH = "tests.support.file_destination.FileKind"
NAME = "TestFile"


class FileDestinationForm(DestinationForm):
    path = forms.CharField(label="File")
    token = forms.CharField(label="Token", required=False, widget=forms.PasswordInput)

    kind_name = NAME
    secret_field = "token"
    secret_required = False
    fieldsets = (Fieldset("Receiver", ("path", "token"), test_connection=True),)

    class Meta(DestinationForm.Meta):
        pass

    def kind_config(self):
        return {"path": self.cleaned_data["path"]}


def _failure(status: int) -> CollectionError:
    if status in (401, 403):
        return CollectionError(ErrorType.THIRD_PARTY_CONFIG, f"The receiver answered {status}.",
                               remedy="Edit the destination's token.", status=status)  # fmt: skip
    return CollectionError(ErrorType.THIRD_PARTY_GENERIC, f"The receiver answered {status}.",
                           remedy="It retries by itself.", status=status)  # fmt: skip


class FileSession(DeliverySession):
    def __init__(self, path: str, token: str):
        self.path = Path(path)
        self.token = token

    def send(self, batch):
        fail = self.path.with_suffix(".fail")
        if fail.exists():
            raise _failure(int(fail.read_text().strip() or "503"))
        if self.token == "wrong":
            raise _failure(401)
        slow = self.path.with_suffix(".slow")
        if slow.exists():
            time.sleep(float(slow.read_text().strip() or "0.1"))
        lines = "".join(
            json.dumps({"id": m.id, "raw": m.raw, "meta": m.metadata, "test": m.test}) + "\n"
            for m in batch
        )
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(lines)
            handle.flush()
            os.fsync(handle.fileno())  # acknowledged means on disk, as a receiver's ack would
        return SendResult(f"{len(batch)} lines written.")


class FileKind(DestinationKind):
    name = NAME
    label = "Test file"
    config_keys = {"path": ConfigKey("path", TEXT), "token": ConfigKey("token", TEXT)}
    secret_key = "token"
    max_batch_messages = 50

    @property
    def form_class(self):
        return FileDestinationForm

    def api_config(self, destination):
        return {"path": destination.config.get("path", ""), "token": "********"}

    def open(self, *, config, secret):
        return FileSession(config["path"], secret)


def delivered(path) -> list[dict]:
    """Every line the destination wrote, in order."""
    file = Path(path)
    if not file.exists():
        return []
    return [json.loads(line) for line in file.read_text(encoding="utf-8").splitlines() if line]
