"""The newcomer's path in a real browser, against a live server, a real django-q2 cluster and the
bundled Sophos Central simulator: create a collector, walk the Add Source form, watch the source
reach Collecting without reloading the page, then break its credentials and read the error.
"""

import os
import re
from pathlib import Path

import pytest

from collector.models import Collector, Field, Source
from tests.views.test_browser_screens import browser_page, login  # noqa: F401 - a fixture

pytestmark = [pytest.mark.browser, pytest.mark.cluster]

WAIT_MS = 60_000  # a cluster start-up plus a full collection run, with room on a busy machine


def snap(page, name: str, **options) -> None:
    """A screenshot for the docs, only when ``$SUMOSOURCES_SCREENSHOTS`` names a folder."""
    folder = os.environ.get("SUMOSOURCES_SCREENSHOTS")
    if folder:
        page.screenshot(path=str(Path(folder) / f"{name}.png"), **options)


def tooltip_of(locator) -> str:
    """The status icon's tooltip text, before or after Bootstrap took over its title."""
    return locator.get_attribute("data-bs-original-title") or locator.get_attribute("title") or ""


def test_newcomer_creates_a_source_watches_it_collect_and_sees_a_broken_secret(
    live_server,
    browser_page,  # noqa: F811 - the fixture imported above
    admin_user,
    simulator_factory,
    cluster_factory,  # noqa: F811
):
    from playwright.sync_api import expect

    # Latency makes the start-up walk take a few seconds, so the page sees it happen.
    sim = simulator_factory(latency=0.5, events=300, alerts=30)
    credential = sim.credential()
    cluster_factory(extra_env=sim.env())
    Field.objects.create(name="team")
    page = browser_page
    base = live_server.url
    login(page, base, "admin", "admin-pass-123")

    # 1. A hosted collector.
    page.get_by_role("link", name="Add Collector").first.click()
    page.fill("#id_name", "Hosted EU")
    page.fill("#id_category", "sophos/eu")
    page.get_by_role("button", name="Save collector").click()
    expect(page.locator(".alert-success")).to_contain_text("Collector Hosted EU created")
    collector = Collector.objects.get(name="Hosted EU")

    # 2. Add Source: the tile picker, then the form in the seed's order.
    page.locator(f"#collector-{collector.pk} .collector-row").get_by_role(
        "link", name="Add Source"
    ).click()
    page.locator(".kind-tile", has_text="Sophos Central").click()
    expect(page.locator("h1")).to_have_text("Sophos Central")
    page.fill("#id_name", "Sophos East")
    page.fill("#id_category", "sophos/eu/east")
    keys = page.locator("[data-field-key]")
    marks = page.locator("[data-field-status]")
    auto_add = page.locator("[data-auto-add]")
    page.get_by_role("button", name="+ Add").click()
    keys.nth(0).fill("team")
    page.locator("input[name=fields-value]").nth(0).fill("blue")
    expect(marks.nth(0)).to_have_attribute("data-status", "enabled")
    expect(marks.nth(0)).to_have_class(re.compile("text-success"))
    expect(auto_add).to_be_hidden()
    page.get_by_role("button", name="+ Add").click()
    keys.nth(1).fill("owne")
    keys.nth(1).press_sequentially("r")  # typed live: the icon follows every keystroke
    page.locator("input[name=fields-value]").nth(1).fill("soc")
    expect(marks.nth(1)).to_have_attribute("data-status", "missing")
    expect(marks.nth(1)).to_have_class(re.compile("text-orange"))
    expect(marks.nth(1).locator("use")).to_have_attribute("href", "#icon-exclamation-triangle")
    expect(auto_add).to_be_visible()
    expect(page.locator("#id_auto_add_fields")).to_be_checked()

    # A validation error from the form the API uses too; the rows and their checks survive.
    page.fill("#id_client_id", credential.client_id)
    page.fill("#id_client_secret", credential.client_secret)
    page.fill("#id_polling_interval", "5")
    page.get_by_role("button", name="Submit").click()
    expect(page.locator("#id_polling_interval")).to_have_class(re.compile("is-invalid"))
    expect(page.get_by_text("greater than or equal to 60")).to_be_visible()
    expect(marks.nth(0)).to_have_attribute("data-status", "enabled")
    expect(marks.nth(1)).to_have_attribute("data-status", "missing")
    assert not Source.objects.exists()

    # Test connection answers in plain words before anything is saved.
    page.fill("#id_polling_interval", "300")
    page.fill("#id_client_secret", credential.client_secret)  # never rendered back
    page.get_by_role("button", name="Test connection").click()
    result = page.locator("[data-test-result]")
    expect(result).to_contain_text("Authenticated as a tenant credential", timeout=20_000)
    expect(result.locator("[data-test-outcome]")).to_have_attribute("data-test-outcome", "ok")
    assert not Source.objects.exists()
    snap(page, "add-source-filled", full_page=True)

    page.get_by_role("button", name="Submit").click()
    page.wait_for_url(re.compile(r"/sources/\d+/$"))
    source = Source.objects.get(name="Sophos East")
    assert Field.objects.filter(name="owner", enabled=True).exists()

    # 3. On the Collection page the icon and its tooltip change by themselves (no reload).
    page.goto(base + "/")
    loads = []
    page.on("load", lambda _page: loads.append(1))
    icon = page.locator(f'[data-status-for="{source.pk}"]')
    first = icon.get_attribute("data-health")
    expect(icon).to_have_attribute("data-health", "Healthy", timeout=WAIT_MS)
    expect(icon.locator("use")).to_have_attribute("href", "#icon-check-circle")
    expect(icon).to_have_class(re.compile("text-success"))
    assert first == "InProgress", "the page was loaded during the start-up walk"
    assert tooltip_of(icon).startswith("Collecting:")
    expect(page.locator(f'[data-state-label-for="{source.pk}"]')).to_have_text("Collecting")
    assert loads == []

    # The source page shows the walk through the states.
    page.goto(base + f"/sources/{source.pk}/")
    timeline = page.locator("[data-timeline]")
    for state in ("Pending", "Started", "Initialized", "Authenticated", "Collecting"):
        expect(timeline).to_contain_text(state)
        expect(page.locator(f'[data-step="{state}"]')).to_have_class(re.compile("done"))
    snap(page, "source-collecting", full_page=True)

    # 4. A wrong secret: the icon turns into a red octagon whose tooltip says what to do.
    page.goto(base + f"/sources/{source.pk}/edit/")
    expect(page.locator("#id_client_secret")).to_have_value("")
    assert credential.client_secret not in page.content()
    page.fill("#id_client_secret", "not-the-right-secret")
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(rf"/sources/{source.pk}/$"))
    page.goto(base + "/")
    expect(icon).to_have_attribute("data-health", "Error", timeout=WAIT_MS)
    expect(icon.locator("use")).to_have_attribute("href", "#icon-x-octagon")
    icon.hover()
    bubble = page.locator(".tooltip.show .tooltip-inner")
    expect(bubble).to_contain_text("client secret")
    expect(bubble).to_contain_text("Error")
    expect(page.locator(".tooltip")).to_have_css("opacity", "0.9")
    snap(page, "error-tooltip")
    assert page.problems == []
