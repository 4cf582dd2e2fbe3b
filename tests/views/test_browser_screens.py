"""Screenshots of the main pages in Debian's chromium, with a realistic demo dataset.

Each page is loaded in a real browser and must render without a JavaScript error or a
Content-Security-Policy violation. The PNGs go to ``$SUMOSOURCES_SCREENSHOTS`` when set (the
README's pictures are made with ``SUMOSOURCES_SCREENSHOTS=docs/screenshots``), else to a temporary
folder.
"""

import datetime as dt
import json
import os
import random
from pathlib import Path

import pytest
from django.utils import timezone

from collector.choices import SYSTEM_EVENTS_INDEX, Severity, SourceState
from collector.models import (
    Checkpoint,
    CollectionRun,
    Collector,
    DroppedField,
    Field,
    HealthEvent,
    IngestBucket,
    Message,
    Source,
    SourceTransition,
    Tenant,
)

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]

ALERT_CATEGORIES = ["malware", "runtimeDetections", "policy", "pua", "connectivity", "updating"]
EVENT_TYPES = [
    ("Event::Endpoint::Threat::Detected", "Malware detected: 'EICAR-AV-Test' at C:\\Users\\ana\\eicar.com"),
    ("Event::Endpoint::UpdateSuccess", "Update succeeded on WS-0142"),
    ("Event::Endpoint::WebControlViolation", "Website blocked: gambling category"),
    ("Event::Endpoint::Isolation::Enabled", "Device isolated: LAPTOP-7Q2"),
]  # fmt: skip


def _source(collector, name, state, category="", **kwargs):
    source = Source(
        collector=collector,
        kind="Sophos Central",
        name=name,
        category=category,
        state=state,
        config={"clientId": f"{name.lower().replace(' ', '-')}-client", "supported_apis": ["Alerts", "Events"]},
        **kwargs,
    )  # fmt: skip
    source.set_secret("demo-secret-never-shown")
    source.save()
    return source


def _event(source, name, severity, error, description, minutes_ago=30, count=1, **extra):
    now = timezone.now()
    details = {"trackerId": name.removesuffix("Error"), "error": error, "description": description}
    details.update(extra)
    return HealthEvent.objects.create(
        event_name=name,
        error_type=name.removesuffix("Error"),
        severity=severity,
        source=source,
        resource_id=str(source.pk),
        resource_name=source.name,
        collector_id=str(source.collector_id),
        collector_name=source.collector.name,
        details=details,
        first_seen=now - dt.timedelta(minutes=minutes_ago),
        last_seen=now - dt.timedelta(minutes=1),
        count=count,
    )


def _walk(source, states, start):
    previous = ""
    for i, (state, reason) in enumerate(states):
        SourceTransition.objects.create(
            source=source,
            from_state=previous,
            to_state=state,
            reason=reason,
            at=start + dt.timedelta(seconds=2 * i),
        )
        previous = state


STARTUP = [
    ("Pending", "Source submitted and validated."),
    ("Started", "A collection task was created."),
    ("Initialized", "A worker loaded the configuration."),
    ("Authenticated", "Authenticated as a tenant credential (eu01)."),
    ("Collecting", "Collection succeeded."),
]


def seed_demo() -> dict:
    """Collectors, sources in every state, events, messages, buckets, checkpoints and runs."""
    rng = random.Random(7)
    now = timezone.now()
    eu = Collector.objects.create(
        name="Hosted EU",
        description="Frankfurt SOC",
        category="sophos/eu",
        fields={"team": "soc-eu"},
    )
    us = Collector.objects.create(name="Hosted US", description="Ohio SOC", category="sophos/us")
    Collector.objects.create(name="Staging", description="Trials and tests", category="staging")
    for name in ("team", "site", "customer"):
        Field.objects.create(name=name)
    Field.objects.create(name="legacy_owner", enabled=False)
    DroppedField.objects.create(name="cost_center", count=1284, last_resource="Sophos MSP")
    DroppedField.objects.create(name="legacy_owner", count=77, last_resource="Sophos East")

    east = _source(eu, "Sophos East", SourceState.COLLECTING, "sophos/eu/east",
                   description="Tenant credential", forward_to_siem=True, fields={"site": "fra1"},
                   identity_type="tenant", region="eu01", last_success_at=now - dt.timedelta(minutes=2))  # fmt: skip
    msp = _source(eu, "Sophos MSP", SourceState.COLLECTING, "sophos/eu/msp",
                  description="Partner credential, 4 tenants", identity_type="partner",
                  last_success_at=now - dt.timedelta(minutes=4))  # fmt: skip
    broken = _source(us, "Sophos West", SourceState.ERROR, "sophos/us/west",
                     description="Rotated secret", halted_at=now - dt.timedelta(minutes=20),
                     state_detail="Sophos Central rejected the client secret. Edit the source and enter a new secret.",
                     last_success_at=now - dt.timedelta(hours=5))  # fmt: skip
    flaky = _source(us, "Sophos Central US", SourceState.ERROR, "sophos/us/central",
                    state_detail="Sophos Central did not answer in time. Retrying (attempt 3); next attempt at "
                    f"{(now + dt.timedelta(minutes=4)):%H:%M:%S} UTC.",
                    last_success_at=now - dt.timedelta(minutes=40))  # fmt: skip
    starting = _source(us, "Sophos Lab", SourceState.AUTHENTICATED, "sophos/us/lab",
                       state_detail="Authenticated as a tenant credential (us03).")  # fmt: skip
    _source(us, "Sophos Archive", SourceState.PAUSED, "sophos/us/archive", paused=True,
            state_detail="Paused by a user; checkpoints are kept.")  # fmt: skip

    _walk(east, STARTUP, now - dt.timedelta(hours=26))
    _walk(msp, STARTUP, now - dt.timedelta(hours=20))
    _walk(broken, STARTUP + [("Error", "Sophos Central rejected the client secret. Edit the source and enter a new secret.")],
          now - dt.timedelta(hours=9))  # fmt: skip
    _walk(flaky, STARTUP + [("Error", "Sophos Central did not answer in time. Retrying (attempt 3).")],
          now - dt.timedelta(hours=3))  # fmt: skip
    _walk(starting, STARTUP[:4], now - dt.timedelta(seconds=30))

    _event(broken, "ThirdPartyConfigError", Severity.ERROR,
           "Sophos Central rejected the client secret (oauth.invalid_client_secret).",
           "Edit the source and enter a new secret.", minutes_ago=20, count=1, status=401)  # fmt: skip
    _event(flaky, "ThirdPartyGenericError", Severity.WARNING,
           "Sophos Central did not answer within 30 seconds (SIEM events API, tenant Acme Corp).",
           "The source retries with backoff for up to 90 minutes.", minutes_ago=14, count=3,
           retrying=True, attempts=3, nextAttemptAt=(now + dt.timedelta(minutes=4)).isoformat(timespec="seconds"))  # fmt: skip
    _event(msp, "TenantAccessWarning", Severity.WARNING,
           "Tenant Globex (3 of 4) refused access: 403 partner assistance is off.",
           "Ask the customer to turn on partner assistance in Sophos Central.", minutes_ago=95, count=8)  # fmt: skip
    resolved = _event(east, "ThirdPartyGenericError", Severity.WARNING,
                      "Sophos Central answered 503 Service Unavailable.", "Retried automatically.",
                      minutes_ago=300)  # fmt: skip
    resolved.resolved_at = now - dt.timedelta(hours=4)
    resolved.save()

    tenants = {
        east: [("7c1d-acme", "Acme Corp", "eu01")],
        msp: [("a1-acme", "Acme Corp", "eu01"), ("b2-initech", "Initech", "eu01"),
              ("c3-globex", "Globex", "us03"), ("d4-umbrella", "Umbrella", "eu02")],
    }  # fmt: skip
    for source, rows in tenants.items():
        for tenant_id, name, region in rows:
            Tenant.objects.create(source=source, tenant_id=tenant_id, name=name, region=region,
                                  api_host=f"https://api-{region}.central.sophos.com",
                                  last_success_at=now - dt.timedelta(minutes=3),
                                  last_error="403 partner assistance is off" if name == "Globex" else "")  # fmt: skip
            for stream, lag in (("Alerts", 4), ("Events", 2)):
                if name == "Globex":
                    lag = 95
                Checkpoint.objects.create(source=source, stream=stream, tenant_id=tenant_id,
                                          data_until=now - dt.timedelta(minutes=lag),
                                          items_total=rng.randint(2_000, 90_000),
                                          updated_at=now - dt.timedelta(minutes=min(lag, 5)))  # fmt: skip

    start = now.replace(minute=now.minute - now.minute % 5, second=0, microsecond=0)
    for source, scale in ((east, 1.0), (msp, 2.4), (flaky, 0.6), (broken, 0.3)):
        for step in range(24 * 12):
            moment = start - dt.timedelta(minutes=5 * step)
            if source is broken and step < 60:
                continue
            if source is flaky and step < 3:
                continue
            wave = 1 + 0.6 * __import__("math").sin(step / 20)
            IngestBucket.objects.create(source=source, stream="Events", start=moment,
                                        items=int(rng.randint(20, 60) * scale * wave))  # fmt: skip
            IngestBucket.objects.create(source=source, stream="Alerts", start=moment,
                                        items=int(rng.randint(0, 6) * scale))  # fmt: skip

    for i in range(12):
        started = now - dt.timedelta(minutes=5 * i + 1)
        CollectionRun.objects.create(source=east, source_name=east.name, stream=("Events", "Alerts")[i % 2],
                                     tenant_id="7c1d-acme", started_at=started,
                                     ended_at=started + dt.timedelta(seconds=rng.randint(1, 9)),
                                     pages=rng.randint(1, 4), items=rng.randint(20, 900),
                                     bytes=rng.randint(40_000, 900_000), outcome="success")  # fmt: skip

    for i in range(80):
        moment = now - dt.timedelta(minutes=3 * i + 1)
        if i % 3 == 0:
            category = rng.choice(ALERT_CATEGORIES)
            raw = {"id": f"alert-{i:04d}", "category": category, "severity": rng.choice(["high", "medium", "low"]),
                   "description": f"{category} alert on WS-{rng.randint(100, 999)}", "raisedAt": moment.isoformat(),
                   "tenant": {"id": "7c1d-acme", "name": "Acme Corp"}}  # fmt: skip
            stream, siem = "Alerts", category
        else:
            kind, text = rng.choice(EVENT_TYPES)
            raw = {"id": f"evt-{i:04d}", "type": kind, "name": text, "severity": "medium",
                   "group": "RUNTIME_DETECTIONS" if "Threat" in kind else "UPDATING", "when": moment.isoformat(),
                   "endpoint_type": "computer", "location": f"WS-{rng.randint(100, 999)}"}  # fmt: skip
            stream, siem = "Events", "runtimeDetections" if "Threat" in kind else "updating"
        Message.objects.create(source=east, stream=stream, tenant_id="7c1d-acme", tenant_name="Acme Corp",
                               vendor_id=raw["id"], source_name=east.name, source_category=east.category,
                               collector_name=eu.name, siem_event_id=siem,
                               fields={"team": "soc-eu", "site": "fra1", "_siemForward": "true", "_siemVendor": "Sophos"},
                               raw=json.dumps(raw), message_time=moment, receipt_time=moment + dt.timedelta(seconds=40))  # fmt: skip
    Message.objects.create(index=SYSTEM_EVENTS_INDEX, source=broken, vendor_id="he-1", source_name=broken.name,
                           collector_name=us.name, raw=json.dumps({"eventName": "ThirdPartyConfigError", "status": "Unhealthy",
                           "severityLevel": "Error", "details": {"error": "Sophos Central rejected the client secret."}}),
                           message_time=now - dt.timedelta(minutes=20), receipt_time=now - dt.timedelta(minutes=20))  # fmt: skip
    return {"east": east, "broken": broken, "eu": eu}


@pytest.fixture
def browser_page(live_server, monkeypatch):
    """A chromium page (1440x900) that records console errors and uncaught exceptions in
    ``page.problems``; CSP violations are console errors, so they land there too."""
    from playwright.sync_api import sync_playwright

    # Playwright's sync API keeps an event loop in this thread; the ORM calls the test makes
    # alongside it are still plain synchronous calls.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path="/usr/bin/chromium", headless=True, args=CHROMIUM_ARGS
        )
        context = browser.new_context(
            viewport={"width": 1440, "height": 900}, device_scale_factor=1
        )
        page = context.new_page()
        page.problems = []
        page.on("console", lambda m: m.type == "error" and page.problems.append(m.text))
        page.on("pageerror", lambda e: page.problems.append(str(e)))
        yield page
        context.close()
        browser.close()


def login(page, base, username, password):
    page.goto(f"{base}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def test_main_pages_render_cleanly_and_are_captured(
    live_server, browser_page, admin_user, tmp_path
):
    from playwright.sync_api import expect

    out = Path(os.environ.get("SUMOSOURCES_SCREENSHOTS") or tmp_path)
    out.mkdir(parents=True, exist_ok=True)
    demo = seed_demo()
    page = browser_page
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.screenshot(path=str(out / "login.png"))
    login(page, base, "admin", "admin-pass-123")
    east, broken, eu = demo["east"], demo["broken"], demo["eu"]
    shots = [
        ("collection", "/"),
        ("source-kinds", f"/collectors/{eu.pk}/sources/add/"),
        ("add-source", f"/collectors/{eu.pk}/sources/add/sophos-central/"),
        ("source-page", f"/sources/{east.pk}/"),
        ("source-error", f"/sources/{broken.pk}/"),
        ("health-events", "/health-events/"),
        ("health-status", "/health/"),
        ("fields", "/fields/"),
        ("dropped-fields", "/fields/dropped/"),
        ("log-search", "/search/?q=_sourceCategory%3Dsophos/eu/*+malware&range=24h"),
        ("access-keys", "/access-keys/"),
        ("edit-source", f"/sources/{east.pk}/edit/"),
    ]
    for name, path in shots:
        page.goto(base + path)
        page.wait_for_load_state("networkidle")
        assert page.locator("h1").count() >= 1, name
        page.screenshot(
            path=str(out / f"{name}.png"), full_page=name not in ("collection", "log-search")
        )
        assert page.problems == [], f"{name}: {page.problems}"
    # the error tooltip, as the seed shows it
    page.goto(base + "/")
    icon = page.locator(f'[data-status-for="{broken.pk}"]')
    icon.hover()
    tooltip = page.locator(".tooltip.show .tooltip-inner")
    tooltip.wait_for()
    # wait for the fade-in to finish (expect() polls without eval, which the CSP forbids)
    expect(page.locator(".tooltip")).to_have_css("opacity", "0.9")
    assert "rejected the client secret" in tooltip.inner_text()
    page.screenshot(path=str(out / "collection-tooltip.png"))
    assert "demo-secret-never-shown" not in page.content()

    # Collapse and expand a collector's sources.
    rows = page.locator(f"#collector-{eu.pk} .source-row")
    page.locator(f'[data-toggle-sources="{eu.pk}"]').click()
    expect(rows.first).to_be_hidden()
    page.get_by_role("button", name="Expand all").click()
    expect(rows.first).to_be_visible()

    # A row action posts the page's one action form to its own URL, then comes back here.
    row = page.locator(f'[data-source-row="{east.pk}"]')
    row.get_by_role("button", name="More actions for Sophos East").click()
    row.get_by_role("button", name="Pause").click()
    expect(page.locator(".alert-success")).to_contain_text("Sophos East is paused")
    expect(page.locator(f'[data-status-for="{east.pk}"] use')).to_have_attribute(
        "href", "#icon-pause-circle"
    )
    assert page.url == base + "/"
    assert page.problems == []
