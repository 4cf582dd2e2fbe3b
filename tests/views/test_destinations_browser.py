"""Adding a destination in a real browser: the tile picker, the form, Send test message answering
in plain words before anything is saved, then Submit and the destination's page. No inline script
and no CSP violation on the way (``page.problems``)."""

import pytest

from collector.models import Destination
from tests.support.file_destination import PATH, delivered
from tests.views.test_browser_screens import browser_page, login  # noqa: F401 - a fixture

pytestmark = pytest.mark.browser


@pytest.fixture(autouse=True)
def file_kind_only(settings, queued):
    """The live server runs in this process: it sees the file kind and queues no real task."""
    settings.DESTINATION_KINDS = [PATH]
    return queued


def test_add_a_file_destination_and_send_a_test_message(
    live_server,
    browser_page,  # noqa: F811 - the fixture imported above
    admin_user,
    tmp_path,
):
    from playwright.sync_api import expect

    out = tmp_path / "soc.ndjson"
    page = browser_page
    base = live_server.url
    login(page, base, "admin", "admin-pass-123")

    page.get_by_role("link", name="Destinations").first.click()
    expect(page.locator("h1")).to_have_text("Destinations")
    page.get_by_role("link", name="Add Destination").first.click()
    page.locator(".kind-tile", has_text="Test file").click()
    expect(page.locator("h1")).to_have_text("Test file")

    page.fill("#id_name", "SOC file")
    page.fill("#id_route", "_sourceCategory=sophos/*")
    page.fill("#id_path", str(out))
    page.fill("#id_token", "browser-token-123")
    page.get_by_role("button", name="Send test message").click()
    result = page.locator("[data-test-result]")
    expect(result).to_contain_text(
        "Sent a test message by admin. The receiver answered: 1 lines written.", timeout=20_000
    )
    expect(result.locator("[data-test-outcome]")).to_have_attribute("data-test-outcome", "ok")
    assert not Destination.objects.exists()
    assert [line["test"] for line in delivered(out)] == [True]

    # A failing receiver: the answer says what it said, in words.
    out.with_suffix(".fail").write_text("503")
    page.get_by_role("button", name="Send test message").click()
    expect(result).to_contain_text("The receiver answered 503. It retries by itself.")
    expect(result.locator("[data-test-outcome]")).to_have_attribute("data-test-outcome", "failed")
    out.with_suffix(".fail").unlink()

    page.get_by_role("button", name="Submit").click()
    expect(page.locator(".alert-success")).to_contain_text("Destination SOC file saved")
    destination = Destination.objects.get()
    assert page.url.endswith(f"/destinations/{destination.pk}/")
    assert destination.get_secret().reveal() == "browser-token-123"
    assert "browser-token-123" not in page.content()
    assert page.problems == []
