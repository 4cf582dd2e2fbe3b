"""The ``ElasticBulk`` destination kind: Elasticsearch or OpenSearch, through the ``_bulk`` API.

A batch is one ``POST {url}/_bulk`` of NDJSON (``application/x-ndjson``, gzipped, with the
trailing newline ``_bulk`` insists on): for each message an action line and the document,

    {"create": {"_index": "<index>", "_id": "ss-<message id>-<digest>"}}
    {<the raw JSON object's keys>, "@timestamp": "<message time, ISO 8601>", "sumo": {<metadata>}}

``@timestamp`` (which data streams require) and ``sumo`` are added to the vendor's object (they
replace keys of the same name); a raw value that is not a JSON object is kept as
``{"message": <value>}``.

**Exactly once.** ``create`` with a stable ``_id`` makes the receiver idempotent: a re-sent batch
(a crash, a timeout after the receiver stored it) finds its documents already there and answers
409 for each, which counts as delivered (``SendResult.duplicates``). The id is derived from the
message alone: its commit-ordered id and a 64-bit BLAKE2b digest of its raw text. So it is the same
on every retry, from any worker, after any restart; and two installations (or a restored backup
that reuses ids for other messages) writing to one index cannot make a different message look like
a duplicate, since the digest differs. The test message (id 0) gets a new id each time.

**Per-item answers.** With ``errors: true`` each item is read: 2xx stored, 409 already there;
401/403/404 (no permission, no such index with auto-creation off) are the destination's
configuration and raise ThirdPartyConfig; 429, 5xx and anything else raise ThirdPartyGeneric, so
the whole batch is sent again (harmless: what was stored comes back 409). **400** (a mapping or
parsing error: this document will never be accepted as it is) is *delivered and reported*: it is
counted in ``SendResult.rejected`` and named in the summary, and the stream goes on. Raising would
block every later message behind one document nobody can change (the stored message still
exists in Log Search); a configuration-wide problem shows as 401/403/404, which does stop.

Authentication: ``ApiKey <key>`` (the encoded key as Kibana shows it; ``id:key`` is encoded
here), or basic with ``username`` and the password. The one stored secret holds whichever is in
use; ``auth`` in the config says which.
"""

from __future__ import annotations

import base64
import hashlib
import logging
from collections.abc import Sequence
from typing import Any

import orjson

from collector.destinations.base import (
    ConfigKey,
    DeliverySession,
    DestinationKind,
    Outgoing,
    SendResult,
)
from collector.destinations.http import (
    CONFIG,
    GENERIC,
    RETRY_LATER,
    HTTPDeliverySession,
    compress,
    describe_url,
    host_of,
    ndjson,
    status_error,
    unexpected_answer,
)
from collector.errors import CollectionError
from collector.kinds.base import TEXT
from collector.redact import redact

log = logging.getLogger(__name__)

LABEL = "Elasticsearch"
ID_PREFIX = "ss"
BULK_BYTES = 5_000_000  # within every cluster's http.max_content_length (AWS's smallest: 10 MB)


def document_id(message: Outgoing) -> str:
    """The stable ``_id`` of a message (see the module docstring)."""
    digest = hashlib.blake2b(message.raw.encode("utf-8"), digest_size=8).hexdigest()
    return f"{ID_PREFIX}-{message.id}-{digest}"


def _was(count: int) -> str:
    return "was" if count == 1 else "were"


def _iso(moment) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def api_key_header(key: str) -> str:
    """``ApiKey <encoded>``; an ``id:key`` pair (as the create-key API answers it) is encoded."""
    key = key.strip()
    if ":" in key:
        key = base64.b64encode(key.encode("utf-8")).decode("ascii")
    return f"ApiKey {key}"


def basic_header(username: str, password: str) -> str:
    pair = f"{username}:{password}".encode()
    return f"Basic {base64.b64encode(pair).decode('ascii')}"


class BulkSession(HTTPDeliverySession):
    label = LABEL

    def __init__(
        self,
        *,
        config: dict[str, Any],
        secret: str,
        timeout: tuple[float, float] | None = None,
    ):
        super().__init__(ca_bundle=config.get("caBundle") or "", timeout=timeout)
        base = str(config.get("url") or "").rstrip("/")
        self.url = f"{base}/_bulk"
        self.host = host_of(base)
        self.index = str(config.get("index") or "")
        self.index_json = orjson.dumps(self.index)
        username = str(config.get("username") or "")
        if username:
            authorization = basic_header(username, secret)
            self.credential = "user name and password"
        else:
            authorization = api_key_header(secret)
            self.credential = "API key"
        self.secrets = (secret, authorization.split(" ", 1)[1])
        self.headers = {
            "Authorization": authorization,
            "Content-Type": "application/x-ndjson",
            "Content-Encoding": "gzip",
            "Accept": "application/json",
        }

    def encode(self, message: Outgoing) -> tuple[bytes, bytes]:
        action = b'{"create":{"_index":%s,"_id":"%s"}}' % (
            self.index_json,
            document_id(message).encode("ascii"),
        )
        # Parsed (not spliced) because keys are added to the vendor's object and Elasticsearch
        # refuses duplicate keys.
        document = orjson.loads(message.raw)
        if not isinstance(document, dict):
            document = {"message": document}
        document["@timestamp"] = _iso(message.message_time)
        document["sumo"] = message.metadata
        return action, orjson.dumps(document)

    def send(self, batch: Sequence[Outgoing]) -> SendResult:
        if not batch:
            return SendResult(summary="Nothing to send.")
        lines: list[bytes] = []
        for message in batch:
            lines.extend(self.encode(message))
        response = self.http.post(self.url, compress(ndjson(lines)), self.headers)
        if not 200 <= response.status_code < 300:
            raise status_error(
                response, label=LABEL, credential=self.credential, secrets=self.secrets
            )
        try:
            answer = orjson.loads(response.content)
            items = answer["items"]
            results = [next(iter(item.values())) for item in items]
            statuses = [int(result["status"]) for result in results]
        except (
            orjson.JSONDecodeError,
            KeyError,
            TypeError,
            ValueError,
            StopIteration,
            AttributeError,
        ):
            raise unexpected_answer(response, label=LABEL, what="its answer had no item results")
        if len(statuses) != len(batch):
            raise unexpected_answer(
                response,
                label=LABEL,
                what=f"with {len(statuses)} item results for {len(batch)} documents",
            )
        return self._judge(results, statuses, len(batch))

    def _reason(self, result: dict) -> tuple[str, str]:
        error = result.get("error")
        if not isinstance(error, dict):
            return "", redact(str(error or ""), secrets=self.secrets, limit=200)
        return (
            redact(str(error.get("type") or ""), secrets=self.secrets, limit=64),
            redact(str(error.get("reason") or ""), secrets=self.secrets, limit=200),
        )

    def _judge(self, results: list[dict], statuses: list[int], total: int) -> SendResult:
        stored = sum(1 for s in statuses if 200 <= s < 300)
        duplicates = statuses.count(409)
        rejected = [i for i, s in enumerate(statuses) if s == 400]
        config = [i for i, s in enumerate(statuses) if s in (401, 403, 404)]
        retry = [
            i
            for i, s in enumerate(statuses)
            if not (200 <= s < 300 or s in (400, 401, 403, 404, 409))
        ]
        if config or retry:
            first = (config or retry)[0]
            kind, reason = self._reason(results[first])
            said = f"{kind}: {reason}" if kind and reason else kind or reason
            count = len(config or retry)
            status = statuses[first]
            text = (
                f"{LABEL} at {self.host} refused {count} of {total} documents "
                f"(HTTP {status}{f', {said}' if said else ''})."
            )
            if config:
                raise CollectionError(
                    CONFIG,
                    text,
                    remedy=f"Check that index {self.index} exists (or may be created) and that "
                    f"the {self.credential} may write to it, then edit the destination.",
                    status=status,
                    vendor_code=kind,
                    api=LABEL,
                )
            raise CollectionError(
                GENERIC,
                text,
                remedy=RETRY_LATER + " Documents already stored are not stored twice.",
                status=status,
                vendor_code=kind,
                api=LABEL,
            )
        parts = [f"{LABEL} stored {stored} document{'' if stored == 1 else 's'}"]
        if duplicates:
            parts.append(f"{duplicates} {_was(duplicates)} already there")
        if rejected:
            kind, reason = self._reason(results[rejected[0]])
            said = f"{kind}: {reason}" if kind and reason else kind or reason
            parts.append(
                f"{len(rejected)} {_was(len(rejected))} refused for good and not retried "
                f"(first: {said or 'HTTP 400'})"
            )
            log.warning(
                "%s at %s refused %d of %d documents for good (first: %s)",
                LABEL, self.host, len(rejected), total, said,
            )  # fmt: skip
        return SendResult(
            summary="; ".join(parts) + ".", duplicates=duplicates, rejected=len(rejected)
        )


class ElasticBulkKind(DestinationKind):
    name = "ElasticBulk"
    label = "Elasticsearch / OpenSearch (_bulk)"
    description = "Documents to an Elasticsearch or OpenSearch index or data stream, exactly once."
    config_keys = {
        "url": ConfigKey("url", TEXT),
        "index": ConfigKey("index", TEXT),
        "apiKey": ConfigKey("api_key", TEXT),
        "username": ConfigKey("username", TEXT),
        "password": ConfigKey("password", TEXT),
        "caBundle": ConfigKey("ca_bundle", TEXT),
    }
    # The API's two secret spellings share one encrypted slot (see the form); ``apiKey`` is the
    # kind's declared secret key, ``password`` the other spelling of it.
    secret_key = "apiKey"
    max_batch_messages = 2000
    max_batch_bytes = BULK_BYTES

    @property
    def form_class(self):
        from collector.destinations.http_forms import ElasticBulkForm

        return ElasticBulkForm

    def api_config(self, destination) -> dict[str, Any]:
        from collector.crypto import MASK

        config = destination.config or {}
        basic = config.get("auth") == "basic"
        return {
            "url": config.get("url", ""),
            "index": config.get("index", ""),
            "apiKey": "" if basic else MASK,
            "username": config.get("username", "") if basic else "",
            "password": MASK if basic else "",
            "caBundle": config.get("caBundle", ""),
        }

    def open(self, *, config: dict[str, Any], secret: str, **options: Any) -> DeliverySession:
        """``options``: ``timeout`` (connect, read) for tests."""
        return BulkSession(config=config, secret=secret or "", **options)

    def encoded_size(self, message: Outgoing) -> int:
        return (
            len(message.raw)
            + sum(len(k) + len(str(v)) + 6 for k, v in message.metadata.items())
            + 140
        )

    def describe(self, destination) -> str:
        config = destination.config or {}
        return f"{LABEL} {describe_url(config.get('url', ''))} · index {config.get('index', '')}"
