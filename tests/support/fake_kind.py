"""A scripted source kind for engine edge cases that the simulator cannot stage cheaply.

The main engine tests run against the real Sophos Central client and simulator; this one lets a
test say exactly which page or error comes next.
"""

import datetime as dt

from collector.errors import CollectionError
from collector.kinds.base import (
    ConnectionReport,
    Identity,
    ItemMeta,
    KindSession,
    Page,
    SourceKind,
    StreamSpec,
    Tenant,
)


def item(n: int, when: dt.datetime | None = None, group: str = "malware") -> dict:
    when = when or dt.datetime(2026, 11, 26, 8, 0, tzinfo=dt.UTC) + dt.timedelta(seconds=n)
    return {"id": f"item-{n}", "when": when.isoformat().replace("+00:00", "Z"), "group": group}


class FakeSession(KindSession):
    def __init__(self, kind):
        self.kind = kind

    def authenticate(self) -> Identity:
        self.kind.calls.append("authenticate")
        if self.kind.auth_error:
            raise self.kind.auth_error
        return self.kind.identity

    def pages(self, *, stream, tenant, checkpoint):
        self.kind.calls.append(("pages", stream, tenant.id, checkpoint))
        error = self.kind.errors.get((stream, tenant.id))
        if error is not None:
            raise error
        start = (checkpoint or {}).get("next", 0)
        script = self.kind.data.get((stream, tenant.id), [])
        for index in range(start, len(script)):
            hook = self.kind.before_page.get((stream, tenant.id, index))
            if hook:
                hook()
            yield Page(stream=stream, tenant=tenant, items=script[index], checkpoint={"next": index + 1},
                       bytes=100 * len(script[index]), gap=self.kind.gaps.get((stream, tenant.id, index)),
                       notices=list(self.kind.notices.get((stream, tenant.id, index), ())))  # fmt: skip

    def close(self):
        self.kind.calls.append("close")


class FakeKind(SourceKind):
    name = "Fake Kind"
    siem_vendor = "Sophos"
    siem_product = "Sophos Central"
    streams = (StreamSpec("Alerts", "#d63384"), StreamSpec("Events", "#0d6efd"))

    def __init__(self):
        self.identity = Identity(id="t1", id_type="tenant", region="eu01",
                                 tenants=(Tenant(id="t1", name="Tenant One", api_host="https://x"),))  # fmt: skip
        self.data: dict = {}
        self.errors: dict[tuple, CollectionError] = {}
        self.auth_error: CollectionError | None = None
        self.before_page: dict = {}
        self.gaps: dict = {}
        self.notices: dict = {}
        self.calls: list = []

    @property
    def form_class(self):
        raise NotImplementedError("the scripted kind is driven by tests, not forms")

    def source_streams(self, config):
        chosen = config.get("supported_apis") or self.stream_names
        return tuple(s for s in self.stream_names if s in chosen)

    def api_config(self, source):
        return dict(source.config)

    def open(self, *, config, secret):
        assert secret == "s3cret-value-XYZ"
        return FakeSession(self)

    def map_item(self, stream, raw):
        when = dt.datetime.fromisoformat(raw["when"])
        return ItemMeta(raw["id"], when, raw.get("group", "uncategorized"))

    def test_connection(self, *, config, secret, deadline=15.0):
        return ConnectionReport(ok=True, summary="fake")
