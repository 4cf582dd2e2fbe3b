"""A second source kind, genuinely unlike Sophos Central, that proves the kind contract is closed.

"JSON Feed" reads records from one HTTP endpoint with a bearer token: its own form and config
keys (``feedUrl``, ``accessToken``, ``batchSize``), a single stream named ``Records``, no tenants
and no choice of APIs. Nothing in the framework knows it; it is registered by dotted path
(``tests.support.feed_kind.FeedKind``) like any kind, also in a real cluster's environment.

:class:`FeedServer` is the vendor: a real HTTP server on 127.0.0.1 serving
``GET /records?after=<n>&limit=<k>`` -> ``{"records": [...], "next": <n>}`` and refusing a wrong
token with 401.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import requests
from django import forms

from collector.errors import CollectionError
from collector.forms import SourceForm
from collector.kinds.base import (
    INTEGER,
    TEXT,
    ConfigKey,
    ConnectionReport,
    Fieldset,
    Identity,
    ItemLine,
    ItemMeta,
    KindSession,
    Page,
    SourceKind,
    StreamSpec,
)

KIND_NAME = "JSON Feed"
STREAM = "Records"
PATH = "tests.support.feed_kind.FeedKind"


class FeedSourceForm(SourceForm):
    feed_url = forms.URLField(label="Feed URL", max_length=300, assume_scheme="https")
    access_token = forms.CharField(
        label="Access token",
        required=False,
        widget=forms.PasswordInput(render_value=False),
    )
    batch_size = forms.IntegerField(label="Records per request", min_value=1, max_value=500,
                                    initial=50)  # fmt: skip

    kind_name = KIND_NAME
    secret_field = "access_token"
    fieldsets = (
        Fieldset("Feed", ("feed_url", "access_token"), test_connection=True),
        Fieldset("Reading", ("batch_size", "polling_interval")),
    )

    class Meta(SourceForm.Meta):
        pass

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["feed_url"].initial = self.instance.config.get("feedUrl")
            self.fields["batch_size"].initial = self.instance.config.get("batchSize")

    def kind_config(self) -> dict:
        return {
            "feedUrl": self.cleaned_data["feed_url"],
            "batchSize": self.cleaned_data["batch_size"],
        }


def _error(message: str, status: int | None = None, *, retry: bool) -> CollectionError:
    from collector.choices import ErrorType

    return CollectionError(
        ErrorType.THIRD_PARTY_GENERIC if retry else ErrorType.THIRD_PARTY_CONFIG,
        message,
        remedy="Check the feed." if retry else "Edit the source and fix the feed settings.",
        status=status,
        api=STREAM,
    )


class FeedSession(KindSession):
    def __init__(self, config: dict, token: str):
        self.url = str(config.get("feedUrl", "")).rstrip("/")
        self.batch = int(config.get("batchSize") or 50)
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {token}"

    def _get(self, after: int) -> dict:
        try:
            answer = self.http.get(f"{self.url}/records", params={"after": after, "limit": self.batch},
                                   timeout=5)  # fmt: skip
        except requests.RequestException as exc:
            raise _error(f"The feed could not be reached ({type(exc).__name__}).", retry=True)
        if answer.status_code == 401:
            raise _error("The feed refused the access token.", 401, retry=False)
        if answer.status_code != 200:
            raise _error(
                f"The feed answered HTTP {answer.status_code}.", answer.status_code, retry=True
            )
        return answer.json()

    def authenticate(self) -> Identity:
        self._get(0)
        return Identity(id=self.url, id_type="feed")  # no tenants: the source is the unit

    def pages(self, *, stream, tenant, checkpoint):
        after = int((checkpoint or {}).get("after", 0))
        while True:
            body = self._get(after)
            records = body["records"]
            if not records:
                return
            after = int(body["next"])
            yield Page(stream=stream, tenant=tenant, items=records, checkpoint={"after": after},
                       bytes=len(json.dumps(records)))  # fmt: skip

    def close(self):
        self.http.close()


class FeedKind(SourceKind):
    name = KIND_NAME
    description = "Records from a JSON feed, read with a bearer token."
    streams = (StreamSpec(STREAM, "#2b8a3e"),)
    config_keys = {
        "feedUrl": ConfigKey("feed_url", TEXT),
        "accessToken": ConfigKey("access_token", TEXT),
        "batchSize": ConfigKey("batch_size", INTEGER),
        "pollingInterval": ConfigKey("polling_interval", INTEGER),
    }
    secret_key = "accessToken"
    siem_vendor = "Example"
    siem_product = "JSON Feed"
    siem_event_id_source = "the record's kind"

    @property
    def form_class(self):
        return FeedSourceForm

    def api_config(self, source) -> dict[str, Any]:
        return {
            "feedUrl": source.config.get("feedUrl", ""),
            "accessToken": "********",
            "batchSize": source.config.get("batchSize"),
            "pollingInterval": source.polling_interval,
        }

    def open(self, *, config, secret):
        return FeedSession(config, secret)

    def map_item(self, stream, item):
        when = dt.datetime.fromisoformat(item["at"])
        return ItemMeta(str(item["seq"]), when, str(item.get("kind", "record")))

    def describe_item(self, item):
        return ItemLine(
            time=item.get("at", ""), type=item.get("kind", ""), text=item.get("text", "")
        )

    def test_connection(self, *, config, secret, deadline=15.0):
        try:
            with self.open(config=config, secret=secret) as session:
                body = session._get(0)
        except CollectionError as exc:
            return ConnectionReport(False, exc.message, error=exc)
        return ConnectionReport(True, f"The feed answered with {len(body['records'])} records.",
                                samples=body["records"][:5])  # fmt: skip


class FeedServer:
    """The feed's vendor on a real socket: ``records`` numbered 1..n, a fixed bearer token."""

    def __init__(self, records: int, token: str = "feed-token-0042"):
        self.token = token
        start = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=30)
        self.records = [
            {"seq": n, "at": (start + dt.timedelta(seconds=n)).isoformat(), "kind": "login",
             "text": f"user {n} logged in"}
            for n in range(1, records + 1)
        ]  # fmt: skip
        self.requests = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                server.requests += 1
                if self.headers.get("Authorization") != f"Bearer {server.token}":
                    return self._send(401, {"error": "bad token"})
                parts = urlsplit(self.path)
                query = parse_qs(parts.query)
                after = int(query.get("after", ["0"])[0])
                limit = int(query.get("limit", ["50"])[0])
                chunk = [r for r in server.records if r["seq"] > after][:limit]
                self._send(200, {"records": chunk, "next": chunk[-1]["seq"] if chunk else after})

            def _send(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
