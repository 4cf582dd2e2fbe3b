"""A person adds a syslog destination in Chromium, sends the test message to a real rsyslog, sees
it Delivering, and sees the delivery row on the source page. The README's destination pictures
are taken here (``SUMOSOURCES_SCREENSHOTS=docs/screenshots``)."""

import os
from pathlib import Path

import pytest

from collector.delivery import runs
from collector.models import Destination
from tests.support.messages import make_messages
from tests.support.rsyslog import Rsyslog
from tests.views.test_browser_screens import browser_page, login  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser


@pytest.fixture
def rsyslog(tmp_path):
    server = Rsyslog(tmp_path, protocol="tcp").start()
    yield server
    server.stop()


def test_add_a_syslog_destination_send_a_test_and_see_it_deliver(
    live_server,
    browser_page,  # noqa: F811 - the fixture imported above
    admin_user,
    make_source,
    rsyslog,
    queued,
    tmp_path,
):
    from playwright.sync_api import expect

    shots = Path(os.environ.get("SUMOSOURCES_SCREENSHOTS") or tmp_path)
    source = make_source("Sophos East", category="sophos/east")
    make_messages(40, source=source, source_name=source.name, source_category="sophos/east",
                  collector_name=source.collector.name)  # fmt: skip
    page = browser_page
    base = live_server.url
    login(page, base, "admin", "admin-pass-123")

    page.get_by_role("link", name="Destinations").first.click()
    page.get_by_role("link", name="Add Destination").first.click()
    page.screenshot(path=str(shots / "destination-kinds.png"))
    page.locator(".kind-tile", has_text="Syslog").click()
    page.fill("#id_name", "SOC syslog")
    page.fill("#id_route", "_sourceCategory=sophos/*")
    page.select_option("#id_start_from", "all")
    page.fill("#id_host", "127.0.0.1")
    page.fill("#id_port", str(rsyslog.port))
    page.select_option("#id_protocol", "tcp")
    page.select_option("#id_framing", "octet-counting")
    page.select_option("#id_syslog_format", "rfc5424")
    page.select_option("#id_payload", "json")
    page.get_by_role("button", name="Send test message").click()
    result = page.locator("[data-test-result]")
    expect(result).to_contain_text("Sent a test message by admin", timeout=20_000)
    expect(result.locator("[data-test-outcome]")).to_have_attribute("data-test-outcome", "ok")
    page.screenshot(path=str(shots / "destination-add.png"), full_page=True)
    (test,) = rsyslog.wait_records(1)
    assert (
        '"_test":true' in test["msg"].replace(" ", "")
        and "Sumo Sources test message" in test["msg"]
    )
    assert not Destination.objects.exists()  # a test saves nothing

    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".alert-success")).to_contain_text("SOC syslog")
    destination = Destination.objects.get()
    assert runs.deliver(destination.pk) == "ok: 40 messages"  # what the worker does
    assert len(rsyslog.wait_records(41)) == 41  # the test message and every stored message

    page.get_by_role("link", name="Destinations").first.click()
    row = page.locator("tr", has_text="SOC syslog")
    expect(row).to_contain_text("Delivering")
    expect(row).to_contain_text("tcp://127.0.0.1")
    page.screenshot(path=str(shots / "destinations.png"), full_page=True)

    page.goto(f"{base}/sources/{source.pk}/")
    card = page.locator(".card", has_text="Delivery")
    expect(card).to_contain_text("SOC syslog")
    card.scroll_into_view_if_needed()
    card.screenshot(path=str(shots / "source-delivery.png"))
    assert page.problems == []
