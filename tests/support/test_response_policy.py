"""Authenticated answers are never stored by a cache; a refused request logs one line."""

import base64
import logging

import pytest

from collector.auth import create_access_key


def no_store(response) -> bool:
    directives = {part.strip() for part in response.get("Cache-Control", "").split(",")}
    return "no-store" in directives


@pytest.fixture
def api_auth(admin_user):
    row, key = create_access_key(user=admin_user)
    return "Basic " + base64.b64encode(f"{row.access_id}:{key}".encode()).decode()


def test_pages_of_a_logged_in_user_are_not_stored(admin_client, viewer_client):
    for path in ("/", "/fields/", "/health-events/", "/search/"):
        response = admin_client.get(path)
        assert response.status_code == 200, path
        assert no_store(response), (path, response.get("Cache-Control"))
    # Also a refusal: its page still shows who is logged in.
    refused = viewer_client.get("/collectors/add/")
    assert refused.status_code == 403 and no_store(refused)


def test_api_answers_are_not_stored_and_still_revalidate(client, api_auth, make_collector):
    collector = make_collector()
    listing = client.get("/api/v1/collectors", HTTP_AUTHORIZATION=api_auth)
    assert listing.status_code == 200 and no_store(listing)

    single = client.get(f"/api/v1/collectors/{collector.pk}", HTTP_AUTHORIZATION=api_auth)
    assert single.status_code == 200 and no_store(single) and single["ETag"]
    again = client.get(
        f"/api/v1/collectors/{collector.pk}",
        HTTP_AUTHORIZATION=api_auth,
        HTTP_IF_NONE_MATCH=single["ETag"],
    )
    assert again.status_code == 304 and again["ETag"] == single["ETag"]

    # Wrong credentials carry no data, but were credentials all the same: not stored either.
    wrong = client.get("/api/v1/collectors", HTTP_AUTHORIZATION="Basic c3U6bm9wZQ==")
    assert wrong.status_code == 401 and no_store(wrong)


def test_static_files_stay_cacheable(admin_client):
    response = admin_client.get("/static/collector/app.css")
    response.close()  # WhiteNoise streams the file
    assert response.status_code == 200
    assert "no-store" not in response.get("Cache-Control", "")


def test_a_refused_permission_logs_one_line_without_a_traceback(viewer_client, caplog):
    with caplog.at_level(logging.INFO, logger="django.request"):
        response = viewer_client.get("/collectors/add/")
    assert response.status_code == 403
    records = [r for r in caplog.records if r.name == "django.request"]
    assert [r.getMessage() for r in records] == ["Forbidden (Permission denied): /collectors/add/"]
    assert records[0].exc_info is None
    formatted = logging.Formatter("%(levelname)s %(name)s: %(message)s").format(records[0])
    assert formatted == "WARNING django.request: Forbidden (Permission denied): /collectors/add/"


def test_server_errors_keep_their_traceback():
    """The filter only shortens 4xx: a 500's traceback is what one needs to fix it."""
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    try:
        raise RuntimeError("boom")
    except RuntimeError as error:
        exc_info = (type(error), error, error.__traceback__)
    record = logging.LogRecord("django.request", logging.ERROR, __file__, 1, "x", (), exc_info)
    record.status_code = 500
    assert all(f.filter(record) for f in handler.filters)
    assert "Traceback" in handler.format(record)


def test_a_suspicious_request_logs_one_line_on_the_console(client, db, caplog):
    """django.security.* records come from child loggers: the console handler shortens them."""
    handler = next(h for h in logging.getLogger().handlers if h.filters)
    with caplog.at_level(logging.ERROR, logger="django.security"):
        response = client.get("/accounts/login/", HTTP_HOST="evil.example")
    assert response.status_code == 400
    record = next(r for r in caplog.records if r.name == "django.security.DisallowedHost")
    assert all(f.filter(record) for f in handler.filters)
    assert "\n" not in handler.format(record)
    assert "Invalid HTTP_HOST header: 'evil.example'" in handler.format(record)
