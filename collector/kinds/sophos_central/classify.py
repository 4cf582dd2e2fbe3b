"""Sophos Central failures, classified: every one becomes a :class:`CollectionError`.

One place decides the error type (ThirdPartyConfig: only an edit or restart helps;
ThirdPartyGeneric: retrying helps), picks the vendor's code and correlation id out of whichever
body shape the failing API uses, and writes the two sentences users read in tooltips: what went
wrong and what to do. No sentence ever contains a secret, a token or a raw exception dump:
every string the vendor supplies (codes, messages, request ids, tenant names) goes through
:func:`collector.redact.redact`, with the secrets the caller sent, before it is part of an error.
"""

from __future__ import annotations

import email.utils
import json
import time
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import requests

from collector.choices import ErrorType
from collector.errors import CollectionError
from collector.kinds.base import Notice, Tenant
from collector.kinds.sophos_central.mapping import iso_ms
from collector.redact import ID_LIMIT, MESSAGE_LIMIT, redact

if TYPE_CHECKING:
    import datetime as dt

    from collector.kinds.sophos_central.transport import HostRefused, Reply

CONFIG = ErrorType.THIRD_PARTY_CONFIG
GENERIC = ErrorType.THIRD_PARTY_GENERIC

RETRY_LATER = "Nothing to do: collection is retried automatically."
REPORT_IF_PERSISTS = (
    "Collection is retried automatically; if this persists, report it to the Sumo Sources "
    "maintainers with the correlation id."
)
# Our sentence around a vendor's message (at most MESSAGE_LIMIT) and a tenant name (ID_LIMIT).
SENTENCE_LIMIT = 1000
PLAIN_URL = "a plain https://host[:port] address"
CHECK_NETWORK = (
    "Check the network, proxy and firewall between this machine and Sophos Central; collection is "
    "retried automatically."
)

# The vendor's token error codes and what they mean for the user.
TOKEN_CODES = {
    "oauth.invalid_client_secret": (
        "Sophos Central rejected the client secret (oauth.invalid_client_secret).",
        "Edit the source and enter a new Client Secret.",
    ),
    "oauth.client_app_does_not_exist": (
        "Sophos Central does not know this client ID (oauth.client_app_does_not_exist).",
        "Edit the source and check the Client ID, or create a new API credential in Sophos "
        "Central and enter its ID and secret.",
    ),
    "customer.validation": (
        "Sophos Central rejected the token request as malformed (customer.validation).",
        "Edit the source and check that the Client ID and Client Secret were pasted whole, "
        "without extra characters.",
    ),
}


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (delta seconds or an HTTP date); None if absent/bad."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            seconds = email.utils.parsedate_to_datetime(value).timestamp() - time.time()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    if seconds != seconds:  # NaN
        return None
    return max(0.0, min(seconds, 86400.0))


def _vendor_fields(reply: Reply, secrets: tuple[str, ...] = ()) -> tuple[str, str, str]:
    """(code, message, correlation id) from either body shape, or from headers; '' if absent.

    Each is redacted (``secrets`` too) and capped: a vendor that echoes its input must not make us
    store what we sent it.
    """
    data: Any = reply.data
    if data is None and reply.body:
        try:
            data = json.loads(reply.body)
        except ValueError:
            data = None
    code = message = correlation = ""
    if isinstance(data, dict):
        code = redact(
            data.get("errorCode") or data.get("error") or "", secrets=secrets, limit=ID_LIMIT
        )
        message = redact(data.get("message") or "", secrets=secrets, limit=MESSAGE_LIMIT)
        correlation = redact(
            data.get("correlationId") or data.get("requestId") or data.get("trackingId") or "",
            secrets=secrets,
            limit=ID_LIMIT,
        )
    if not correlation:
        for header in ("X-Correlation-ID", "X-Request-ID", "X-Amzn-RequestId", "X-Amzn-Trace-Id"):
            if reply.headers.get(header):
                correlation = redact(reply.headers[header], secrets=secrets, limit=ID_LIMIT)
                break
    return code, message, correlation


def _reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _tenant(tenant: Tenant) -> str:
    """How a sentence names a tenant: its vendor-given name (redacted, capped) or its id."""
    return redact(tenant.name or tenant.id, limit=ID_LIMIT)


def _who(tenant: Tenant | None) -> str:
    if tenant is None:
        return ""
    return f" for tenant {_tenant(tenant)}"


def _error(
    error_type, message, remedy, *, api, tenant=None, secrets=(), **kwargs
) -> CollectionError:
    # The sentence holds vendor text (a message, a tenant name): redact it whole once more.
    return CollectionError(
        error_type,
        redact(message, secrets=secrets, limit=SENTENCE_LIMIT),
        remedy=remedy,
        api=api,
        tenant_id=tenant.id if tenant else "",  # an identifier we key on, kept exact
        tenant_name=redact(tenant.name, secrets=secrets, limit=ID_LIMIT) if tenant else "",
        **kwargs,
    )


def token_error(reply: Reply, *, secrets: tuple[str, ...] = ()) -> CollectionError:
    """A non-2xx answer of the token endpoint that retrying does not cure."""
    code, _message, correlation = _vendor_fields(reply, secrets)
    if code in TOKEN_CODES:
        message, remedy = TOKEN_CODES[code]
    elif reply.status in (400, 401, 403):
        message = f"Sophos Central refused to issue a token ({_reason(reply.status)}{', ' + code if code else ''})."
        remedy = "Edit the source and check the Client ID and Client Secret of the API credential."
    else:
        return status_error(reply, api="Token", secrets=secrets)
    return _error(
        CONFIG,
        message,
        remedy,
        api="Token",
        secrets=secrets,
        status=reply.status,
        vendor_code=code,
        correlation_id=correlation,
    )


def status_error(
    reply: Reply,
    *,
    api: str,
    tenant: Tenant | None = None,
    tenant_scoped: bool = False,
    reauthenticated: bool = False,
    secrets: tuple[str, ...] = (),
) -> CollectionError:
    """Classify a non-2xx answer of any API by its status (token codes are in :func:`token_error`).

    ``secrets`` are what the request carried (client secret, token), redacted from the vendor's text.
    """
    status = reply.status
    code, vendor_message, correlation = _vendor_fields(reply, secrets)
    detail = f": {vendor_message}" if vendor_message and status == 400 else ""
    who = _who(tenant)
    retry_after = None
    if status == 400:
        error_type = CONFIG
        message = f"Sophos Central rejected the {api} request as invalid{who} ({_reason(status)}{detail})."
        remedy = (
            "Check the source's settings, such as excluded event types; if they look right, "
            "restart the source and report the correlation id if it happens again."
        )
    elif status == 401:
        error_type = CONFIG
        again = " even after signing in again" if reauthenticated else ""
        message = f"Sophos Central refused the access token for the {api} API{who}{again} ({_reason(status)})."
        remedy = (
            "Check in Sophos Central that the API credential still exists and has not expired, "
            "then edit or restart the source."
        )
    elif status == 403 and tenant_scoped:
        error_type = CONFIG
        message = f"Sophos Central denied access to tenant {_tenant(tenant)} on the {api} API ({_reason(status)})."
        remedy = (
            "Turn on partner assistance for this tenant or grant the credential access to it; the "
            "other tenants are still collected."
        )
    elif status == 403:
        error_type = CONFIG
        message = f"Sophos Central denied this credential access to the {api} API{who} ({_reason(status)})."
        remedy = (
            "Give the API credential a role that can read alerts and events (for example Service "
            "Principal Read-Only), then edit or restart the source."
        )
    elif status == 404:
        error_type = GENERIC
        message = f"Sophos Central answered {_reason(status)} on the {api} API{who}."
        remedy = (
            "Check that the tenant still exists in Sophos Central; collection is retried "
            "automatically."
        )
    elif status == 429:
        error_type = GENERIC
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
        message = f"Sophos Central is limiting the rate of requests to the {api} API{who} ({_reason(status)})."
        remedy = (
            "Nothing to do: collection resumes after a pause. A longer polling interval lowers "
            "the request rate."
        )
    elif status >= 500:
        error_type = GENERIC
        retry_after = parse_retry_after(reply.headers.get("Retry-After"))
        if status in (502, 503, 504):
            message = f"Sophos Central's {api} API is unavailable{who} ({_reason(status)})."
        else:
            message = (
                f"Sophos Central had an internal error on the {api} API{who} ({_reason(status)})."
            )
        remedy = RETRY_LATER
    elif 300 <= status < 400:
        error_type = GENERIC
        message = f"Sophos Central answered the {api} API with an unexpected redirect ({_reason(status)})."
        remedy = REPORT_IF_PERSISTS
    else:
        error_type = GENERIC
        message = (
            f"Sophos Central answered the {api} API{who} with an unexpected {_reason(status)}."
        )
        remedy = REPORT_IF_PERSISTS
    return _error(
        error_type,
        message,
        remedy,
        api=api,
        tenant=tenant,
        secrets=secrets,
        status=status,
        vendor_code=code,
        correlation_id=correlation,
        retry_after=retry_after,
        tenant_scoped=tenant_scoped,
    )


POSITION_REJECTED = "CheckpointResetWarning"


def position_rejected(
    reply: Reply,
    *,
    api: str,
    tenant: Tenant,
    resumed_from: dt.datetime,
    floor_known: bool,
    secrets: tuple[str, ...] = (),
) -> Notice:
    """The warning for a stored position (cursor, page key) the vendor refused with ``reply``.

    Collection went on from ``resumed_from``: the checkpoint's time floor, or, when the checkpoint
    carried none (``floor_known`` False), the oldest point the API serves. A one-off fact, so it
    expires; its scope is the stream of one tenant.
    """
    code, vendor_message, correlation = _vendor_fields(reply, secrets)
    detail = f": {vendor_message}" if vendor_message else ""
    when = f"{resumed_from:%Y-%m-%d %H:%M:%S} UTC"
    message = (
        f"Sophos Central rejected the stored {api} position{_who(tenant)} "
        f"({_reason(reply.status)}{detail}), so collection resumed from {when}"
    )
    if floor_known:
        message += ", the time the stored position had reached."
        remedy = (
            "Nothing to do: items read a second time are stored once. If this keeps happening, "
            "report it to the Sumo Sources maintainers with the correlation id."
        )
    else:
        message += ", the oldest point the API serves: the stored position carried no time."
        remedy = (
            "Items older than that which were not yet collected are no longer served. If this "
            "keeps happening, report it to the Sumo Sources maintainers with the correlation id."
        )
    return Notice(
        name=POSITION_REJECTED,
        scope=f"{api}:{tenant.id}",
        message=redact(message, secrets=secrets, limit=SENTENCE_LIMIT),
        remedy=remedy,
        details={
            "api": api,
            "tenantId": tenant.id,
            "resumedFrom": iso_ms(resumed_from),
            "status": reply.status,
            "vendorCode": code,
            "correlationId": correlation,
        },
        expires=True,
    )


def transport_error(
    exc: requests.exceptions.RequestException,
    *,
    api: str,
    tenant: Tenant | None,
    url: str,
    timeout: tuple[float, float],
) -> CollectionError:
    """A failure below HTTP: timeout, refused or dropped connection, TLS, a body cut short."""
    host = urlsplit(url).netloc
    who = _who(tenant)
    if isinstance(exc, requests.exceptions.ConnectTimeout):
        message = f"Could not connect to Sophos Central ({host}) within {timeout[0]:g} seconds."
    elif isinstance(exc, requests.exceptions.Timeout):
        message = (
            f"The {api} API of Sophos Central did not answer{who} within {timeout[1]:g} seconds."
        )
    elif isinstance(exc, requests.exceptions.SSLError):
        message = f"The secure connection to Sophos Central ({host}) failed: the TLS handshake or certificate check did not pass."
    elif isinstance(
        exc, requests.exceptions.ChunkedEncodingError | requests.exceptions.ContentDecodingError
    ):
        message = (
            f"The connection to Sophos Central dropped while the {api} answer{who} was being read."
        )
    elif isinstance(exc, requests.exceptions.ConnectionError):
        text = str(exc).lower()
        if "refused" in text:
            message = f"Could not connect to Sophos Central ({host}): the connection was refused."
        elif "name or service" in text or "resolve" in text or "nodename" in text:
            message = f"Could not connect to Sophos Central: the host name {host} did not resolve."
        elif (
            "reset" in text or "aborted" in text or "remotedisconnected" in text or "closed" in text
        ):
            message = f"The connection to Sophos Central ({host}) was closed or reset during the {api} call{who}."
        else:
            message = f"Could not connect to Sophos Central ({host}) for the {api} call{who}."
    else:
        message = f"The {api} call to Sophos Central failed{who} ({type(exc).__name__})."
    return _error(GENERIC, message, CHECK_NETWORK, api=api, tenant=tenant)


def deadline_passed(*, api: str, tenant: Tenant | None) -> CollectionError:
    return _error(
        GENERIC,
        f"The {api} call to Sophos Central{_who(tenant)} did not finish within the time allowed.",
        CHECK_NETWORK,
        api=api,
        tenant=tenant,
    )


def malformed(
    reply: Reply, *, api: str, tenant: Tenant | None, secrets: tuple[str, ...] = ()
) -> CollectionError:
    _code, _message, correlation = _vendor_fields(reply, secrets)
    return _error(
        GENERIC,
        f"Sophos Central sent a malformed or truncated JSON answer on the {api} API{_who(tenant)}.",
        REPORT_IF_PERSISTS,
        api=api,
        tenant=tenant,
        status=reply.status,
        correlation_id=correlation,
    )


def wrong_shape(
    reply: Reply,
    what: str,
    *,
    api: str,
    tenant: Tenant | None = None,
    secrets: tuple[str, ...] = (),
) -> CollectionError:
    """A 2xx JSON answer that lacks what the contract promises (``what`` names the missing part)."""
    _code, _message, correlation = _vendor_fields(reply, secrets)
    return _error(
        GENERIC,
        f"Sophos Central sent a {api} answer of an unexpected shape{_who(tenant)} ({what}).",
        REPORT_IF_PERSISTS,
        api=api,
        tenant=tenant,
        status=reply.status,
        correlation_id=correlation,
    )


def host_refused(
    refused: HostRefused, *, api: str, tenant: Tenant | None = None, setting: str = ""
) -> CollectionError:
    """A URL the allow-list refused, named as the client would have connected to it.

    ``setting`` names the configuration variable the URL came from; without it the URL came from
    the vendor (a data region, a tenant's apiHost).
    """
    where = refused.shown
    outside = refused.reason == "outside"
    if setting:
        if outside:
            message = f"{setting} points outside the allowed Sophos domains ({where}), so nothing was sent to it."
        else:
            message = f"{setting} is not {PLAIN_URL} ({where}), so nothing was sent to it."
        remedy = (
            f"Correct {setting}; if a simulator or proxy stands in for Sophos Central, add its "
            "host to SUMOSOURCES_SOPHOS_EXTRA_HOSTS. Then restart the source."
        )
    elif outside:
        message = f"Sophos Central named a data host outside the allowed Sophos domains ({where}), so no token was sent to it."
        remedy = (
            "If a simulator or proxy stands in for Sophos Central, add its host to "
            "SUMOSOURCES_SOPHOS_EXTRA_HOSTS and restart the source."
        )
    else:
        message = f"Sophos Central named a data host that is not {PLAIN_URL} ({where}), so no token was sent to it."
        remedy = (
            "Restart the source to ask again; if it happens again, report it to the Sumo Sources "
            "maintainers."
        )
    return _error(CONFIG, message, remedy, api=api, tenant=tenant)


def unusable_credential(id_type: str) -> CollectionError:
    return _error(
        CONFIG,
        f"The API credential is of type {id_type or 'unknown'}, which Sumo Sources cannot collect with.",
        "Create a tenant, partner or organization API credential in Sophos Central and edit the source.",
        api="Whoami",
    )


def bad_config(message: str, remedy: str) -> CollectionError:
    return CollectionError(CONFIG, message, remedy=remedy)


ENDPOINT_ACCESS = "EndpointAccessWarning"
ENDPOINT_BACKLOG = "EndpointBacklogWarning"
ENDPOINT_REFUSED = "EndpointLookupWarning"


def endpoint_scope(tenant: Tenant) -> str:
    return f"Endpoints:{tenant.id}"


def endpoints_denied(
    reply: Reply, *, tenant: Tenant, pending: int, secrets: tuple[str, ...] = ()
) -> Notice:
    """The warning for a 403 of the Endpoint API alone: the credential reads alerts but lacks
    the Endpoint role. Collection goes on; the endpoints wait in the checkpoint. It lasts until a
    lookup succeeds (which resolves it), so it does not expire."""
    code, _message, correlation = _vendor_fields(reply, secrets)
    plural = "" if pending == 1 else "s"
    message = (
        f"Sophos Central denied the Endpoint API{_who(tenant)} ({_reason(reply.status)}): the API "
        "credential lacks the Endpoint API permission, so the endpoint details of endpoint alerts "
        f"are not collected. Alerts and events still are; {pending} endpoint{plural} wait to be "
        "looked up."
    )
    return Notice(
        name=ENDPOINT_ACCESS,
        scope=endpoint_scope(tenant),
        message=redact(message, secrets=secrets, limit=SENTENCE_LIMIT),
        remedy=(
            "Give the API credential a role that can read endpoints (e.g. Service Principal "
            "Read-Only) in Sophos Central; the waiting endpoints are looked up at the next poll."
        ),
        details={
            "api": "Endpoints",
            "tenantId": tenant.id,
            "status": reply.status,
            "pending": pending,
            "vendorCode": code,
            "correlationId": correlation,
        },
    )


def endpoint_access_restored(tenant: Tenant) -> Notice:
    return Notice(name=ENDPOINT_ACCESS, scope=endpoint_scope(tenant), resolve=True)


def endpoints_dropped(*, tenant: Tenant, dropped: int, limit: int) -> Notice:
    """More endpoints waited for a lookup than a checkpoint keeps: the oldest were dropped."""
    return Notice(
        name=ENDPOINT_BACKLOG,
        scope=endpoint_scope(tenant),
        message=(
            f"More than {limit} endpoints of tenant {_tenant(tenant)} waited to be looked up, so "
            f"the {dropped} waiting longest were dropped: their details are not collected until "
            "a new alert names them."
        ),
        remedy=(
            "Nothing to do if the Endpoint API answers again; if it keeps refusing, give the API "
            "credential a role that can read endpoints."
        ),
        details={"api": "Endpoints", "tenantId": tenant.id, "dropped": dropped, "limit": limit},
        expires=True,
    )


def endpoint_refused(
    reply: Reply, *, tenant: Tenant, endpoint_id: str, secrets: tuple[str, ...] = ()
) -> Notice:
    """The Endpoint API refused (400) the lookup of one endpoint on its own: it is given up."""
    code, vendor_message, correlation = _vendor_fields(reply, secrets)
    detail = f": {vendor_message}" if vendor_message else ""
    return Notice(
        name=ENDPOINT_REFUSED,
        scope=endpoint_scope(tenant),
        message=redact(
            f"Sophos Central refused the lookup of endpoint {endpoint_id}{_who(tenant)} "
            f"({_reason(reply.status)}{detail}), so its details are not collected.",
            secrets=secrets,
            limit=SENTENCE_LIMIT,
        ),
        remedy=(
            "Nothing to do: the other endpoints are looked up as usual. If this keeps happening, "
            "report it to the Sumo Sources maintainers with the correlation id."
        ),
        details={
            "api": "Endpoints",
            "tenantId": tenant.id,
            "endpointId": endpoint_id,
            "status": reply.status,
            "vendorCode": code,
            "correlationId": correlation,
        },
        expires=True,
    )
