"""Failed logins are throttled per user name and per client address (django-axes, database cache)."""

import base64
import logging
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import RequestFactory

from collector.auth import create_access_key, login_client_ip
from tests.conftest import wait_for

LOGIN = "/accounts/login/"
PASSWORD = "admin-pass-123"
WRONG = "not-the-Password-42"


@pytest.fixture(autouse=True)
def fast_hashes(settings):
    """Each wrong password would cost a full PBKDF2 run; throttling does not depend on the hasher."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.AXES_FAILURE_LIMIT = 5


def post_login(client, username, password, ip):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def logged_in(client) -> bool:
    return "_auth_user_id" in client.session


def assert_locked_page(response):
    assert response.status_code == 429
    assert response["Retry-After"] == str(15 * 60)
    assert "no-store" in response["Cache-Control"]
    assert response.templates[0].name == "registration/login.html"
    text = response.content.decode()
    assert "Too many failed logins." in text
    assert "refused for 15 minutes" in text
    assert 'name="password"' in text  # the login page itself, not a bare text


def test_wrong_passwords_for_one_user_name_lock_it_from_every_address(client, admin_user, caplog):
    for n in range(4):
        response = post_login(client, "admin", WRONG, f"198.51.100.{n + 1}")
        assert response.status_code == 200 and not logged_in(client)
    # The fifth failure locks the name, from a fifth address.
    assert_locked_page(post_login(client, "admin", WRONG, "198.51.100.5"))

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="collector.auth"):
        # The right password, from an address never seen before: still refused while locked.
        response = post_login(client, "admin", PASSWORD, "203.0.113.77")
    assert_locked_page(response)
    assert not logged_in(client)
    lines = [r.getMessage() for r in caplog.records if r.name == "collector.auth"]
    assert lines == [
        "Login refused for user name 'admin' from 203.0.113.77: too many failed logins, "
        "locked for 15 minutes"
    ]
    assert not any(PASSWORD in r.getMessage() or WRONG in r.getMessage() for r in caplog.records)

    # Another user is not affected from another address.
    User.objects.create_user("viewer2", password="viewer-pass-123")
    post_login(client, "viewer2", "viewer-pass-123", "203.0.113.78")
    assert logged_in(client)


def test_wrong_passwords_from_one_address_lock_it_for_every_user_name(client, admin_user, caplog):
    for n in range(5):
        response = post_login(client, f"guess{n}", WRONG, "192.0.2.9")
    assert_locked_page(response)

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="collector.auth"):
        assert_locked_page(post_login(client, "admin", PASSWORD, "192.0.2.9"))
    assert not logged_in(client)
    assert [r.getMessage() for r in caplog.records if r.name == "collector.auth"] == [
        "Login refused for user name 'admin' from 192.0.2.9: too many failed logins, "
        "locked for 15 minutes"
    ]

    # The same account from another address logs in.
    response = post_login(client, "admin", PASSWORD, "192.0.2.10")
    assert response.status_code == 302 and logged_in(client)


def test_an_unknown_user_name_is_not_logged(client, db, caplog):
    """A "user name" nobody has may be a password typed in the wrong field: never logged."""
    typed = "Tr0ub4dor&3-in-the-wrong-field"
    with caplog.at_level(logging.WARNING):
        for _ in range(6):
            response = post_login(client, typed, WRONG, "192.0.2.50")
    assert_locked_page(response)
    refused = [r.getMessage() for r in caplog.records if r.name == "collector.auth"]
    assert refused and all("an unknown user name from 192.0.2.50" in line for line in refused)
    assert not any(typed in r.getMessage() or WRONG in r.getMessage() for r in caplog.records)


def test_a_success_before_the_limit_clears_the_count(client, admin_user):
    for _ in range(4):
        post_login(client, "admin", WRONG, "192.0.2.20")
    assert post_login(client, "admin", PASSWORD, "192.0.2.20").status_code == 302
    client.logout()
    for _ in range(4):
        assert post_login(client, "admin", WRONG, "192.0.2.20").status_code == 200
    assert post_login(client, "admin", PASSWORD, "192.0.2.20").status_code == 302


def test_the_lock_ends_after_the_cool_off(client, admin_user, settings):
    # Whole seconds: the database cache stores expiry times without their fraction, so a shorter
    # cool-off could expire between two of the failures below.
    settings.AXES_COOLOFF_TIME = timedelta(seconds=3)
    for _ in range(5):
        response = post_login(client, "admin", WRONG, "192.0.2.30")
    assert response.status_code == 429
    # Attempts while locked do not extend the lock: polling with the right password gets in.
    wait_for(
        lambda: post_login(client, "admin", PASSWORD, "192.0.2.30").status_code == 302,
        timeout=10,
        interval=0.2,
        message="the lockout to end",
    )
    assert logged_in(client)


def test_test_client_logins_still_work(client, admin_user):
    assert client.login(username="admin", password=PASSWORD)
    assert client.get("/").status_code == 200
    client.logout()
    client.force_login(admin_user)
    assert client.get("/").status_code == 200


def test_api_access_keys_are_not_throttled_by_a_locked_address(client, admin_user):
    for n in range(5):
        post_login(client, f"guess{n}", WRONG, "127.0.0.1")
    assert_locked_page(post_login(client, "admin", PASSWORD, "127.0.0.1"))
    row, key = create_access_key(user=admin_user)
    auth = "Basic " + base64.b64encode(f"{row.access_id}:{key}".encode()).decode()

    response = client.get("/api/v1/collectors", HTTP_AUTHORIZATION=auth, REMOTE_ADDR="127.0.0.1")

    assert response.status_code == 200
    assert response.json()["collectors"] == []


def test_behind_a_proxy_the_address_is_the_one_the_proxy_appended():
    request = RequestFactory().get(
        "/", HTTP_X_FORWARDED_FOR="10.9.9.9, 203.0.113.4", REMOTE_ADDR="172.16.0.2"
    )
    assert login_client_ip(request) == "203.0.113.4"
    assert login_client_ip(RequestFactory().get("/", REMOTE_ADDR="172.16.0.2")) == "172.16.0.2"
