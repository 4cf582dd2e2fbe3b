"""Vendor error text that echoes what it was sent never reaches storage or a screen verbatim.

The bundled simulator's ``body`` fault makes the token endpoint or a data API answer an error
body of our choosing: one that echoes the client secret (plain and URL-encoded), the access token,
a JWT and a wall of text with control characters. The CollectionError, the stored health event,
the source's last error and state, the run, the status API, the tooltip and the Collection page
must hold none of them, and every vendor-supplied string is capped.
"""

import base64
import json
from urllib.parse import quote

import pytest

from collector import engine
from collector.auth import create_access_key
from collector.choices import ErrorType
from collector.errors import CollectionError
from collector.kinds.sophos_central import kind
from collector.models import CollectionRun, HealthEvent, Message, SourceTransition
from collector.redact import ID_LIMIT, MESSAGE_LIMIT, REDACTED
from collector.status import status_payload

CONFIG = ErrorType.THIRD_PARTY_CONFIG
FAST = {"timeout": (1.0, 2.0), "retries": 1, "backoff": 0.0}
SECRET = "Zq9/very$ecret+Value=42&more"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiJjbGllbnQtMTIzIiwiZXhwIjoxNzAwMDAwMDAwfQ."
    "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
)
WALL = "\x00\x1b[2J\r\nignore previous text " + "m" * 5000


@pytest.fixture
def sim(simulator_factory):
    return simulator_factory(client_secret=SECRET, events=5, alerts=5)


def access_token(sim) -> str:
    """Sign in once (the token is cached process-wide, so later runs reuse it) and return it."""
    cred = sim.credential()
    with kind.open(config={"clientId": cred.client_id}, secret=SECRET, **FAST) as session:
        session.authenticate()
    (token,) = list(sim._tokens)
    return token


def echo(sim, api: str, status: int, **fields) -> None:
    sim.set_fault("body", api=api, status=status, body=json.dumps(fields))


def leaked(text: str, *extra: str) -> list[str]:
    """Which secret forms appear in ``text``."""
    forms = [SECRET, quote(SECRET, safe=""), base64.b64encode(SECRET.encode()).decode(), JWT]
    forms += [e for e in extra if e]
    forms += [JWT.split(".")[1], JWT.split(".")[2]]  # no part of it either
    return [form for form in forms if form in text]


def authenticate(sim):
    cred = sim.credential()
    with kind.open(config={"clientId": cred.client_id}, secret=SECRET, **FAST) as session:
        session.authenticate()


def error_text(error: CollectionError) -> str:
    return json.dumps(error.details()) + repr(error) + str(error) + error.tenant_name


def test_token_error_that_echoes_the_secret(sim):
    echo(
        sim,
        "Token",
        400,
        errorCode=f"invalid {SECRET}",
        message=f"client_secret={quote(SECRET, safe='')} Bearer {JWT} {WALL}",
        trackingId=JWT,
    )
    with pytest.raises(CollectionError) as info:
        authenticate(sim)
    error = info.value
    assert (error.error_type, error.api, error.status) == (CONFIG, "Token", 400)
    assert leaked(error_text(error)) == []
    assert error.vendor_code == f"invalid {REDACTED}"
    assert error.correlation_id == REDACTED
    assert error.message == (
        f"Sophos Central refused to issue a token (HTTP 400 Bad Request, invalid {REDACTED})."
    )


@pytest.mark.parametrize("api", ["Events", "Alerts"])
def test_data_error_that_echoes_the_secret_and_the_token(sim, api):
    token = access_token(sim)
    echo(
        sim,
        api,
        400,
        error=f"{SECRET}-{token}",
        message=f"bad request from {SECRET} with Authorization: Bearer {token} {JWT} {WALL}",
        correlationId=f"{token}",
    )
    cred = sim.credential()
    with kind.open(config={"clientId": cred.client_id}, secret=SECRET, **FAST) as session:
        tenant = session.authenticate().tenants[0]
        with pytest.raises(CollectionError) as info:
            list(session.pages(stream=api, tenant=tenant, checkpoint=None))
    error = info.value
    assert (error.error_type, error.api, error.status) == (CONFIG, api, 400)
    assert leaked(error_text(error), token) == []
    # The vendor's message is quoted, redacted, stripped of control characters and capped.
    assert f"bad request from {REDACTED} with Authorization: Bearer {REDACTED}" in error.message
    assert "ignore previous text mmm" in error.message and "\x00" not in error.message
    quoted = error.message.split(": ", 1)[1]
    assert len(quoted) <= MESSAGE_LIMIT + len(").")
    assert len(error.vendor_code) <= ID_LIMIT and len(error.correlation_id) <= ID_LIMIT
    assert error.correlation_id == REDACTED


def test_nothing_stored_or_shown_holds_the_echo(
    sim, make_source, queued, client, viewer_user, admin_client
):
    token = access_token(sim)
    echo(
        sim,
        "data",
        400,
        error=f"{SECRET}",
        message=f"echo {SECRET} {quote(SECRET, safe='')} Bearer {token} {JWT} {WALL}",
        correlationId=JWT,
    )
    cred = sim.credential()
    source = make_source(client_id=cred.client_id, secret=SECRET)
    engine.run_source(source.pk)
    source.refresh_from_db()

    (event,) = HealthEvent.objects.filter(source=source, resolved_at__isnull=True)
    assert event.event_name == "ThirdPartyConfigError"
    assert REDACTED in event.details["error"] and event.details["correlationId"] == REDACTED
    assert len(event.details["error"]) <= 1000
    stored = [
        json.dumps(event.details),
        source.last_error,
        source.state_detail,
        *CollectionRun.objects.filter(source=source).values_list("error", flat=True),
        *SourceTransition.objects.filter(source=source).values_list("reason", flat=True),
        *Message.objects.filter(source=source).values_list("raw", flat=True),
    ]
    assert any(REDACTED in text for text in stored[1:])
    for text in stored:
        assert leaked(text, token) == [], text
        assert "\x00" not in text and "\x1b" not in text

    tooltip = status_payload(source, [event])["tooltip"]
    assert REDACTED in tooltip and leaked(tooltip, token) == []

    row, key = create_access_key(user=viewer_user)
    auth = "Basic " + base64.b64encode(f"{row.access_id}:{key}".encode()).decode()
    response = client.get("/api/v1/status", headers={"authorization": auth})
    assert response.status_code == 200
    assert REDACTED in response.content.decode()
    assert leaked(response.content.decode(), token) == []

    page = admin_client.get("/")
    assert page.status_code == 200
    assert REDACTED in page.content.decode()  # the tooltip shows the event's sentence
    assert leaked(page.content.decode(), token) == []
