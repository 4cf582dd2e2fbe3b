"""The Sophos Central session: token, whoami, tenants, and pages of events, alerts and endpoints.

Checkpoint formats (JSON, stored by the engine with the page they follow, handed back next run):

* Events: ``{"cursor": "<next_cursor>", "position": "2024-05-01T10:00:00.000Z"}``. ``cursor`` is
  the vendor's opaque ``next_cursor``; ``position`` is how far the stream is known to be read (the
  last item's ``created_at`` while more is pending, else the server time of the answer). The
  position is what the 24-hour window is judged by: older than the window, the run starts at the
  oldest point the API serves and the first page carries a :class:`DataGap` naming the lost period.
  A poll that finds nothing new yields nothing, except once an hour (a page without items) so an
  idle stream's position stays fresh. Every events checkpoint carries a ``position``: it is the
  time floor a refused cursor falls back to (below).
* Alerts: ``{"raisedAt": "2024-05-01T10:00:00.000Z", "seen": {"<alert id>": <raisedAt epoch ms>}}``.
  The next run asks from ``raisedAt`` minus ``alerts_overlap`` seconds (alerts can become visible a
  little after they were raised) and drops the ids in ``seen``, which holds every alert yielded in
  that overlap, so each alert is yielded once. Page keys (``pageFromKey``) live within a run only.
  When endpoint details are collected the checkpoint also carries ``"endpoints"``: {endpoint id:
  newest raisedAt epoch ms of an endpoint alert naming it}, see :mod:`.endpoints`.
* Endpoints: ``{"pending": [<endpoint id>, ...], "seen": {<endpoint id>: [digest, stored at,
  checked at]}}``; the flow, the refresh rule and the vendor ids are in :mod:`.endpoints`.

A position the API refuses with 400 (a garbled ``next_cursor`` or ``nextKey``) would fail every
later run if kept. Instead the session asks again from the time floor (events: ``position``, or
the oldest point served for a checkpoint without one; alerts: the newest ``raisedAt`` reached,
less the overlap), and the first page after that carries a ``CheckpointResetWarning``
:class:`Notice` saying from when collection resumed; items read twice are dropped by the store's
unique key. This happens at most once a run: a refused fallback raises the classified error.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from typing import Any

from collector.kinds.base import DataGap, Identity, KindSession, Notice, Page, Tenant
from collector.kinds.sophos_central import classify
from collector.kinds.sophos_central import endpoints as ep
from collector.kinds.sophos_central.mapping import UTC, iso_ms, parse_time
from collector.kinds.sophos_central.transport import (
    ALERTS_MAX_SIZE,
    HostRefused,
    Reply,
    Transport,
    cached_token,
    check_url,
    credential_key,
    drop_token,
    known_id_type,
    origin,
    region_of,
    remember_id_type,
    server_now,
    store_token,
)
from collector.redact import ID_LIMIT, redact

log = logging.getLogger("collector.kinds.sophos_central")

WINDOW = 24 * 3600.0  # how far back the SIEM API serves
WINDOW_MARGIN = 120.0  # clamp this far inside the window, so transit time cannot push us out of it
TOKEN_URL_SETTING = "SUMOSOURCES_SOPHOS_TOKEN_URL"
API_URL_SETTING = "SUMOSOURCES_SOPHOS_API_URL"
POSITION_REFRESH = 3600.0  # re-store an idle stream's position this often (no false gaps later)
EVENTS_LIMIT = 1000
EVENTS_LIMIT_MIN = 200  # the SIEM API's documented minimum
ALERTS_PAGE_SIZE = 1000
ALERTS_FIRST_PAGE_SIZE = 100  # the safe size until a host's pages.maxSize is known
ALERTS_LOOKBACK = 24 * 3600.0  # the first run reads alerts raised this far back
ALERTS_OVERLAP = 300.0
SEEN_LIMIT = 5000  # most alert ids an alerts checkpoint keeps
TENANTS_PAGE_SIZE = 100
TENANTS_MAX_PAGES = 1000


def _to_time(seconds: float) -> dt.datetime:
    return dt.datetime.fromtimestamp(seconds, UTC)


def _iso_seconds(seconds: float) -> str:
    return iso_ms(_to_time(seconds))


class SophosSession(KindSession):
    """One source run against Sophos Central; see the module docstring for checkpoints.

    Transport options (``timeout=(connect, read)``, ``retries``, ``backoff``, ``retry_after_cap``,
    ``deadline``, ``sleep``) go to :class:`Transport`. The secret lives only in this object and in
    the token request body: never in a log line, an error or a cache key (what the vendor answers
    is redacted of it, and of the token, before it becomes an error).

    Every URL (the configured token and API URLs, the data hosts the vendor names) goes through
    :func:`~collector.kinds.sophos_central.transport.check_url` against ``extra_hosts``; the
    transport checks each request's URL once more before sending it.
    """

    def __init__(
        self,
        *,
        client_id: str,
        secret: str,
        token_url: str,
        api_url: str,
        extra_hosts: tuple[str, ...] = (),
        verify: bool | str = True,
        supported_apis: tuple[str, ...] = ("Alerts", "Events"),
        exclude_types: tuple[str, ...] = (),
        events_limit: int = EVENTS_LIMIT,
        alerts_page_size: int = ALERTS_PAGE_SIZE,
        alerts_overlap: float = ALERTS_OVERLAP,
        endpoint_refresh: float = ep.REFRESH,
        **transport_options: Any,
    ):
        self.client_id = client_id
        self._secret = secret
        self.token_url = token_url
        self.api_url = api_url.rstrip("/")
        self.extra_hosts = tuple(extra_hosts)
        self.supported_apis = tuple(supported_apis)
        self.exclude_types = tuple(exclude_types)
        self.events_limit = max(EVENTS_LIMIT_MIN, min(EVENTS_LIMIT, int(events_limit)))
        self.alerts_page_size = max(1, int(alerts_page_size))
        self.alerts_overlap = float(alerts_overlap)
        # Endpoint details come with alerts (the kind adds the stream whenever Alerts is chosen).
        self.endpoint_details = ep.STREAM in self.supported_apis
        self.endpoint_refresh = float(endpoint_refresh)
        # Per tenant id: {endpoint id: newest raisedAt ms} of the endpoint alerts paged in this
        # session (and carried in from the Alerts checkpoint), for the Endpoints stream after it.
        self._mentions: dict[str, dict[str, int]] = {}
        self.http = Transport(extra_hosts=self.extra_hosts, verify=verify, **transport_options)
        self.identity: Identity | None = None
        self.tokens_fetched = 0
        self._key = credential_key(token_url, client_id, secret)

    def __repr__(self) -> str:
        return f"<SophosSession client_id={self.client_id!r} api={self.api_url!r}>"

    def close(self) -> None:
        self.http.close()

    # --- token and authorised calls ---------------------------------------------------------

    def _token(self) -> str:
        token = cached_token(self._key)
        if token:
            return token
        secrets = (self._secret,)
        reply = self.http.request(
            "POST",
            self._configured(self.token_url, TOKEN_URL_SETTING, api="Token"),
            api="Token",
            data={
                "grant_type": "client_credentials",
                "client_id": self.client_id,
                "client_secret": self._secret,
                "scope": "token",
            },
            secrets=secrets,
        )
        if reply.status != 200:
            raise classify.token_error(reply, secrets=secrets)
        data = reply.data
        token = data.get("access_token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            raise classify.wrong_shape(reply, "no access_token", api="Token", secrets=secrets)
        expires_in = data.get("expires_in")
        if not isinstance(expires_in, int | float) or isinstance(expires_in, bool):
            expires_in = 3600
        store_token(self._key, token, max(10.0, min(float(expires_in), 86400.0)))
        self.tokens_fetched += 1
        return token

    def _call(
        self,
        api: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
        tenant: Tenant | None = None,
        allow: tuple[int, ...] = (),
    ) -> Reply:
        """GET with the bearer token, signing in again once on a 401.

        Returns a 2xx answer whose body is a JSON object, or an answer whose status is in
        ``allow``; raises :class:`CollectionError` for anything else.
        """
        reauthenticated = False
        while True:
            token = self._token()
            secrets = (self._secret, token)
            reply = self.http.request(
                "GET",
                url,
                api=api,
                tenant=tenant,
                params=params,
                headers={"Authorization": f"Bearer {token}", **(headers or {})},
                secrets=secrets,
            )
            if reply.status == 401 and not reauthenticated:
                # An expired or revoked token: fetch a new one once; a second 401 is not a token
                # problem any more but the credential's.
                drop_token(self._key, token)
                reauthenticated = True
                continue
            break
        if 200 <= reply.status < 300:
            if not isinstance(reply.data, dict):
                raise classify.wrong_shape(
                    reply, "not a JSON object", api=api, tenant=tenant, secrets=secrets
                )
            return reply
        if reply.status in allow:
            return reply
        scoped = False
        if tenant is not None and reply.status in (403, 404):
            scoped = self._multi_tenant()
        raise classify.status_error(
            reply,
            api=api,
            tenant=tenant,
            tenant_scoped=scoped,
            reauthenticated=reauthenticated,
            secrets=secrets,
        )

    def _multi_tenant(self) -> bool:
        """Whether the credential manages several tenants (a 403 then concerns one tenant only)."""
        id_type = known_id_type(self._key) or (self.identity.id_type if self.identity else None)
        if id_type is None:
            id_type = self.whoami()["idType"]
        return id_type in ("partner", "organization")

    def _secrets(self) -> tuple[str, ...]:
        """What this session sends that must never come back in an error: the secret and token."""
        token = cached_token(self._key)
        return (self._secret, token) if token else (self._secret,)

    def _checked_host(self, url: Any, *, api: str, tenant: Tenant | None = None) -> str:
        """A data host the vendor named, checked, in its one normal form (else ThirdPartyConfig)."""
        try:
            return check_url(url, self.extra_hosts).url
        except HostRefused as refused:
            raise classify.host_refused(refused, api=api, tenant=tenant)

    def _configured(self, url: str, setting: str, *, api: str) -> str:
        """A configured URL (``setting`` names its variable), checked like the vendor's hosts."""
        try:
            return check_url(url, self.extra_hosts).url
        except HostRefused as refused:
            raise classify.host_refused(refused, api=api, setting=setting)

    # --- identity ---------------------------------------------------------------------------

    def whoami(self) -> dict[str, Any]:
        """The whoami answer, checked: ``id``, ``idType`` and ``apiHosts`` are present."""
        base = self._configured(self.api_url, API_URL_SETTING, api="Whoami")
        reply = self._call("Whoami", f"{base}/whoami/v1")
        data = reply.data
        if not isinstance(data.get("id"), str) or not data["id"]:
            raise classify.wrong_shape(reply, "no id", api="Whoami", secrets=self._secrets())
        if not isinstance(data.get("idType"), str):
            raise classify.wrong_shape(reply, "no idType", api="Whoami", secrets=self._secrets())
        if not isinstance(data.get("apiHosts"), dict):
            data["apiHosts"] = {}
        remember_id_type(self._key, data["idType"])
        return data

    def authenticate(self) -> Identity:
        data = self.whoami()
        id_type = data["idType"]
        if id_type == "tenant":
            host = data["apiHosts"].get("dataRegion")
            if host is None:
                raise classify.unusable_credential("tenant without a data region")
            api_host = self._checked_host(host, api="Whoami")
            region = region_of(api_host)
            tenant = Tenant(id=data["id"], name="", api_host=api_host, region=region)
            self.identity = Identity(data["id"], id_type, region, (tenant,))
        elif id_type in ("partner", "organization"):
            tenants = tuple(self._list_tenants(id_type, data["id"]))
            self.identity = Identity(data["id"], id_type, "", tenants, fans_out=True)
        else:
            raise classify.unusable_credential(id_type)
        return self.identity

    def _list_tenants(self, id_type: str, owner_id: str) -> list[Tenant]:
        base = self._configured(self.api_url, API_URL_SETTING, api="Tenants")
        url = f"{base}/{id_type}/v1/tenants"
        header = {"X-Partner-ID" if id_type == "partner" else "X-Organization-ID": owner_id}
        tenants: list[Tenant] = []
        seen: set[str] = set()
        for page in range(1, TENANTS_MAX_PAGES + 1):
            reply = self._call(
                "Tenants",
                url,
                params={"page": page, "pageSize": TENANTS_PAGE_SIZE, "pageTotal": "true"},
                headers=header,
            )
            items = reply.data.get("items")
            if not isinstance(items, list):
                raise classify.wrong_shape(
                    reply, "no items list", api="Tenants", secrets=self._secrets()
                )
            for item in items:
                if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                    raise classify.wrong_shape(
                        reply, "a tenant without an id", api="Tenants", secrets=self._secrets()
                    )
                if item["id"] in seen:
                    continue
                if not item.get("apiHost"):
                    # Tenants still being set up have no data host yet; there is nothing to read.
                    log.warning(
                        "Sophos tenant %s has no apiHost; skipped",
                        redact(item["id"], limit=ID_LIMIT),
                    )
                    continue
                api_host = self._checked_host(item["apiHost"], api="Tenants")
                name = item.get("name") or item.get("showAs") or ""
                region = item.get("dataRegion") or region_of(api_host)
                seen.add(item["id"])
                tenants.append(Tenant(item["id"], str(name), api_host, str(region)))
            total = (reply.data.get("pages") or {}).get("total")
            if not items or (isinstance(total, int) and page >= total):
                break
        return tenants

    # --- data -------------------------------------------------------------------------------

    def pages(
        self, *, stream: str, tenant: Tenant, checkpoint: dict[str, Any] | None
    ) -> Iterator[Page]:
        if stream == "Events":
            return self._event_pages(tenant, checkpoint if isinstance(checkpoint, dict) else {})
        if stream == "Alerts":
            return self._alert_pages(tenant, checkpoint if isinstance(checkpoint, dict) else {})
        if stream == ep.STREAM:
            return self._endpoint_pages(tenant, checkpoint if isinstance(checkpoint, dict) else {})
        raise ValueError(f"Sophos Central has no stream {stream!r}")

    def _event_pages(self, tenant: Tenant, checkpoint: dict[str, Any]) -> Iterator[Page]:
        url = self._checked_host(tenant.api_host, api="Events", tenant=tenant) + "/siem/v1/events"
        cursor = checkpoint.get("cursor") if isinstance(checkpoint.get("cursor"), str) else None
        parsed = parse_time(checkpoint.get("position"))
        position = parsed.timestamp() if parsed else None
        base: dict[str, Any] = {"limit": self.events_limit}
        if self.exclude_types:
            base["exclude_types"] = ",".join(self.exclude_types)
        headers = {"X-Tenant-ID": tenant.id}

        gap: DataGap | None = None
        notice: Notice | None = None
        from_date: int | None = None
        now = server_now(url)
        if cursor and position is not None and position < now - WINDOW:
            cursor = None  # expired: the API would fall back anyway; clamp ourselves, and say so
        if not cursor:
            oldest = now - WINDOW + WINDOW_MARGIN
            if position is not None and position < oldest:
                gap = self._gap("Events", tenant, position, oldest)
            from_date = int(max(oldest, position or 0.0))
        first = True
        # At most one fallback a run: if the from_date query is refused as well, that is an error
        # to report (and retry next run), not a reason to try again.
        fell_back = False
        while True:
            params = dict(base, cursor=cursor) if cursor else dict(base, from_date=from_date)
            if cursor:
                allow: tuple[int, ...] = () if fell_back else (400,)
            else:
                allow = (400,) if first else ()
            reply = self._call(
                "Events", url, params=params, headers=headers, tenant=tenant, allow=allow
            )
            if reply.status == 400 and cursor:
                # The API refused the cursor (one it handed out garbled, or one it no longer
                # takes). Kept, it would fail every run; resume from the time floor instead, and
                # let the unique key drop what is read a second time.
                fell_back, first = True, False
                oldest = server_now(url) - WINDOW + WINDOW_MARGIN
                if position is not None and position < oldest:
                    gap = self._gap("Events", tenant, position, oldest)
                from_date = int(max(oldest, position if position is not None else oldest))
                notice = self._position_rejected(reply, "Events", tenant, from_date, position)
                cursor = None
                continue
            if reply.status == 400:
                # Our estimate of the server clock was stale (the clock moved with no answer since),
                # so from_date fell out of the window: judge again by this answer's Date, once.
                first = False
                oldest = server_now(url) - WINDOW + WINDOW_MARGIN
                if from_date < oldest - WINDOW_MARGIN:
                    if position is not None and position < oldest:
                        gap = self._gap("Events", tenant, position, oldest)
                    from_date = int(oldest)
                    continue
                raise classify.status_error(
                    reply, api="Events", tenant=tenant, secrets=self._secrets()
                )
            data = reply.data
            items = data.get("items")
            if not isinstance(items, list):
                raise classify.wrong_shape(
                    reply, "no items list", api="Events", tenant=tenant, secrets=self._secrets()
                )
            answered = reply.server_time or server_now(url)
            stale = position is not None and position < answered - WINDOW
            if first and cursor and gap is None and stale:
                # The cursor looked fresh by our clock but the server's says otherwise: the API has
                # fallen back to its window, so the time before it is lost.
                gap = self._gap("Events", tenant, position, answered - WINDOW)
            first = False
            has_more = data.get("has_more") is True
            next_cursor = data.get("next_cursor")
            if not isinstance(next_cursor, str) or not next_cursor:
                next_cursor = cursor
            reached = answered
            if has_more and items:
                last = items[-1] if isinstance(items[-1], dict) else {}
                moment = parse_time(last.get("created_at")) or parse_time(last.get("when"))
                reached = moment.timestamp() if moment else (position or answered)
            new_position = max(position or reached, reached)
            # An empty answer leaves the stream where it was, so its (ever-changing) cursor need
            # not be stored: the one we hold resumes at the same place. A first cursor, a gap or
            # an idle hour is stored, so the position never looks older than it is.
            if (
                items
                or gap
                or notice
                or position is None
                or (not cursor and next_cursor)
                or new_position - position >= POSITION_REFRESH
            ):
                yield Page(
                    stream="Events",
                    tenant=tenant,
                    items=items,
                    checkpoint={"cursor": next_cursor, "position": _iso_seconds(new_position)},
                    bytes=len(reply.body),
                    gap=gap,
                    notices=[notice] if notice else [],
                )
                gap = notice = None
                position = new_position
            if not has_more or (not items and next_cursor == cursor):
                return
            cursor = next_cursor

    def _alert_pages(self, tenant: Tenant, checkpoint: dict[str, Any]) -> Iterator[Page]:
        url = self._checked_host(tenant.api_host, api="Alerts", tenant=tenant)
        url += "/common/v1/alerts"
        host = origin(url)
        last = parse_time(checkpoint.get("raisedAt"))
        last_ms = int(last.timestamp() * 1000) if last else None
        raw_seen = checkpoint.get("seen")
        seen: dict[str, int] = {}
        if isinstance(raw_seen, dict):
            seen = {k: v for k, v in raw_seen.items() if isinstance(k, str) and type(v) is int}
        overlap_ms = int(self.alerts_overlap * 1000)
        start = (
            last.timestamp() - self.alerts_overlap if last else server_now(url) - ALERTS_LOOKBACK
        )
        size = min(self.alerts_page_size, ALERTS_MAX_SIZE.get(host, ALERTS_FIRST_PAGE_SIZE))
        params: dict[str, Any] = {
            "from": _iso_seconds(start),
            "sort": "raisedAt:asc",
            "pageSize": size,
        }
        headers = {"X-Tenant-ID": tenant.id}
        previous: dict[str, Any] = {"raisedAt": iso_ms(last) if last else None, "seen": dict(seen)}
        track = self.endpoint_details
        if track:
            mentions = self._mentions.setdefault(tenant.id, {})
            for endpoint_id, mention_ms in ep.load_mentions(checkpoint.get("endpoints")).items():
                mentions[endpoint_id] = max(mention_ms, mentions.get(endpoint_id, 0))
            previous["endpoints"] = dict(mentions)
        notice: Notice | None = None
        fell_back = False  # at most once a run, as for events
        while True:
            keyed = "pageFromKey" in params
            reply = self._call(
                "Alerts",
                url,
                params=params,
                headers=headers,
                tenant=tenant,
                allow=(400,) if keyed and not fell_back else (),
            )
            if reply.status == 400:
                # The API refused the page key it handed out: ask again from the newest alert
                # reached, less the overlap; ``seen`` drops the alerts already yielded.
                fell_back = True
                resume = last_ms / 1000 - self.alerts_overlap if last_ms is not None else start
                params = {key: params[key] for key in ("sort", "pageSize")}
                params["from"] = _iso_seconds(resume)
                notice = self._position_rejected(reply, "Alerts", tenant, resume, resume)
                continue
            items = reply.data.get("items")
            if not isinstance(items, list):
                raise classify.wrong_shape(
                    reply, "no items list", api="Alerts", tenant=tenant, secrets=self._secrets()
                )
            pages = reply.data.get("pages")
            pages = pages if isinstance(pages, dict) else {}
            max_size = pages.get("maxSize")
            if type(max_size) is int and max_size > 0:
                ALERTS_MAX_SIZE[host] = max_size
                params["pageSize"] = min(self.alerts_page_size, max_size)
            fresh = []
            for item in items:
                if isinstance(item, dict):
                    alert_id = item.get("id")
                    moment = parse_time(item.get("raisedAt"))
                    raised_ms = int(moment.timestamp() * 1000) if moment else (last_ms or 0)
                    if isinstance(alert_id, str):
                        if alert_id in seen:
                            continue
                        seen[alert_id] = raised_ms
                    if moment and (last_ms is None or raised_ms > last_ms):
                        last_ms = raised_ms
                    if track and (endpoint_id := ep.mentioned(item)):
                        # An alert without a readable raisedAt counts as raised now.
                        when = raised_ms if moment else int(server_now(url) * 1000)
                        mentions[endpoint_id] = max(when, mentions.get(endpoint_id, 0))
                fresh.append(item)
            if last_ms is not None:
                floor = last_ms - overlap_ms
                seen = {k: v for k, v in seen.items() if v >= floor}
                if len(seen) > SEEN_LIMIT:
                    newest = sorted(seen.items(), key=lambda kv: kv[1])[-SEEN_LIMIT:]
                    seen = dict(newest)
            current: dict[str, Any] = {
                "raisedAt": iso_ms(_to_time(last_ms / 1000)) if last_ms is not None else None,
                "seen": dict(seen),
            }
            if track:
                if last_ms is not None:
                    mentions = ep.prune_mentions(mentions, last_ms, self.endpoint_refresh)
                    self._mentions[tenant.id] = mentions
                current["endpoints"] = dict(mentions)
            if fresh or current != previous or notice:
                yield Page(
                    stream="Alerts",
                    tenant=tenant,
                    items=fresh,
                    checkpoint=current,
                    bytes=len(reply.body),
                    notices=[notice] if notice else [],
                )
                previous, notice = current, None
            next_key = pages.get("nextKey")
            if not next_key or not items or next_key == params.get("pageFromKey"):
                return
            params["pageFromKey"] = next_key

    def _endpoint_pages(self, tenant: Tenant, checkpoint: dict[str, Any]) -> Iterator[Page]:
        """The Endpoints stream (:mod:`.endpoints`): queue the endpoints this session's alerts
        named, commit that, then look them up a batch at a time.

        A 403 (the credential lacks the Endpoint role) ends the stream with a warning and the
        ids kept pending, without an error: alerts and events go on. A 400 for a batch halves it,
        and an endpoint refused alone is given up with a warning, so one id the API will not
        take cannot block the rest. Anything else raises the classified error like every API.
        """
        url = self._checked_host(tenant.api_host, api=ep.STREAM, tenant=tenant) + ep.PATH
        headers = {"X-Tenant-ID": tenant.id}
        state = ep.EndpointState.load(
            checkpoint, now=server_now(url), refresh=self.endpoint_refresh
        )
        added, dropped = state.queue(self._mentions.get(tenant.id, {}))
        notices: list[Notice] = []
        if dropped:
            log.warning(
                "Sophos endpoints of tenant %s: %d waiting lookups dropped", tenant.id, dropped
            )
            notices.append(
                classify.endpoints_dropped(tenant=tenant, dropped=dropped, limit=ep.PENDING_LIMIT)
            )
        if added or notices or not checkpoint:
            # Committed before any lookup: whatever fails next, the queue is kept.
            yield Page(ep.STREAM, tenant, [], state.checkpoint(), notices=notices)
            notices = []
        limit = ep.IDS_LIMIT
        restored = False
        # Lookups since the last page: a page per PAGE_IDS ids keeps the checkpoint (which holds
        # every endpoint seen) from being rewritten after each request of a large queue.
        found: list[dict[str, Any]] = []
        looked = size = 0
        while state.pending:
            batch = state.pending[:limit]
            reply, items, answer_size = self._lookup(url, headers, tenant, batch)
            size += answer_size
            if reply.status == 403:
                log.warning(
                    "Sophos endpoints of tenant %s: the Endpoint API is denied (HTTP 403)",
                    tenant.id,
                )
                notices.append(
                    classify.endpoints_denied(
                        reply, tenant=tenant, pending=len(state.pending), secrets=self._secrets()
                    )
                )
                yield Page(
                    ep.STREAM, tenant, found, state.checkpoint(), bytes=size, notices=notices
                )
                return
            if reply.status == 400:
                if len(batch) > 1:
                    limit = max(1, len(batch) // 2)
                    continue
                state.checked(batch[0], self._answered(reply, url))
                notices.append(
                    classify.endpoint_refused(
                        reply, tenant=tenant, endpoint_id=batch[0], secrets=self._secrets()
                    )
                )
                continue
            found.extend(state.absorb(batch, items, self._answered(reply, url)))
            looked += len(batch)
            if not restored:
                restored = True
                notices.append(classify.endpoint_access_restored(tenant))
            if looked >= ep.PAGE_IDS or not state.pending:
                yield Page(
                    ep.STREAM, tenant, found, state.checkpoint(), bytes=size, notices=notices
                )
                found, looked, size, notices = [], 0, 0, []
        if notices or found:
            yield Page(ep.STREAM, tenant, found, state.checkpoint(), bytes=size, notices=notices)

    @staticmethod
    def _answered(reply: Reply, url: str) -> int:
        """When a lookup was answered, rounded up to the next second of the server's clock.

        The ``Date`` header truncates to whole seconds; rounding up makes every alert raised
        before the lookup count as covered by it, so its endpoint is not queued again.
        """
        moment = reply.server_time if reply.server_time is not None else server_now(url)
        return int(moment) + 1

    def _lookup(
        self, url: str, headers: dict[str, str], tenant: Tenant, batch: list[str]
    ) -> tuple[Reply, list[Any], int]:
        """Look ``batch`` up with the ids filter, every page of it: (last reply, items, bytes).

        A 400 or 403 is returned as the reply, with no items, for the caller to decide.
        """
        params: dict[str, Any] = {
            "ids": list(batch),
            "pageSize": min(ep.PAGE_SIZE_LIMIT, len(batch)),
            "view": "full",
        }
        items: list[Any] = []
        size = 0
        # The filter names len(batch) endpoints: more pages than that means a key that loops.
        for _ in range(len(batch) + 1):
            reply = self._call(
                ep.STREAM, url, params=params, headers=headers, tenant=tenant, allow=(400, 403)
            )
            size += len(reply.body)
            if reply.status in (400, 403):
                return reply, [], size
            page = reply.data.get("items")
            if not isinstance(page, list):
                raise classify.wrong_shape(
                    reply, "no items list", api=ep.STREAM, tenant=tenant, secrets=self._secrets()
                )
            items.extend(page)
            pages = reply.data.get("pages")
            next_key = pages.get("nextKey") if isinstance(pages, dict) else None
            if not next_key or not page or next_key == params.get("pageFromKey"):
                break
            params = {**params, "pageFromKey": next_key}
        return reply, items, size

    def _position_rejected(
        self, reply: Reply, stream: str, tenant: Tenant, resumed: float, floor: float | None
    ) -> Notice:
        log.warning(
            "Sophos %s of tenant %s: the stored position was rejected (HTTP %s); resumed from %s",
            stream,
            tenant.id,
            reply.status,
            _iso_seconds(resumed),
        )
        return classify.position_rejected(
            reply,
            api=stream,
            tenant=tenant,
            resumed_from=_to_time(resumed),
            floor_known=floor is not None,
            secrets=self._secrets(),
        )

    def _gap(self, stream: str, tenant: Tenant, lost_from: float, lost_until: float) -> DataGap:
        log.warning(
            "Sophos %s of tenant %s: checkpoint older than the API's window, %s to %s lost",
            stream,
            tenant.id,
            _iso_seconds(lost_from),
            _iso_seconds(lost_until),
        )
        return DataGap(stream, tenant.id, _to_time(lost_from), _to_time(lost_until))

    # --- connection test --------------------------------------------------------------------

    def endpoint_readable(self, tenant: Tenant, endpoint_id: str) -> bool:
        """Whether the credential may read endpoint details: one ``/endpoints/{id}`` call (404,
        an endpoint since deleted, still says yes). Raises CollectionError for other failures."""
        if not ep.is_endpoint_id(endpoint_id):
            raise ValueError("not an endpoint id")
        url = self._checked_host(tenant.api_host, api=ep.STREAM, tenant=tenant)
        url += f"{ep.PATH}/{endpoint_id}"
        reply = self._call(
            ep.STREAM, url, headers={"X-Tenant-ID": tenant.id}, tenant=tenant, allow=(403, 404)
        )
        return reply.status != 403

    def recent(self, stream: str, tenant: Tenant, count: int = 5) -> list[dict[str, Any]]:
        """A few recent items of one stream, for the connection test; stores nothing."""
        headers = {"X-Tenant-ID": tenant.id}
        if stream == "Events":
            url = self._checked_host(tenant.api_host, api="Events", tenant=tenant)
            url += "/siem/v1/events"
            params = {"limit": EVENTS_LIMIT_MIN, "from_date": int(server_now(url) - 3600)}
        else:
            url = self._checked_host(tenant.api_host, api="Alerts", tenant=tenant)
            url += "/common/v1/alerts"
            params = {
                "from": _iso_seconds(server_now(url) - ALERTS_LOOKBACK),
                "sort": "raisedAt:desc",
                "pageSize": count,
            }
        reply = self._call(stream, url, params=params, headers=headers, tenant=tenant)
        items = reply.data.get("items")
        if not isinstance(items, list):
            raise classify.wrong_shape(
                reply, "no items list", api=stream, tenant=tenant, secrets=self._secrets()
            )
        return items[-count:] if stream == "Events" else items[:count]
