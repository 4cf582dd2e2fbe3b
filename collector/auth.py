"""API access keys (HTTP Basic with an access id and key, like Sumo Logic) and login throttling.

Only a SHA-256 digest of each key is stored; keys are 32 random bytes, so the digest cannot be
reversed by guessing and checking it costs microseconds per request. That is also why failed key
attempts are not throttled: 256 random bits cannot be guessed online at any rate. Passwords can be,
and each guess costs a password hash, so failed logins are throttled by django-axes (settings:
``AXES_*``); the pieces of it that are ours are below.
"""

import base64
import binascii
import hashlib
import hmac
import logging
import math
import secrets

from axes.backends import AxesStandaloneBackend
from axes.helpers import get_client_ip_address, get_client_username, get_cool_off
from django.contrib.auth import get_user_model
from django.contrib.auth.forms import AuthenticationForm
from django.shortcuts import render
from django.utils import timezone
from django.utils.cache import add_never_cache_headers

from collector.models import AccessKey

logger = logging.getLogger(__name__)


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def create_access_key(*, user, label: str = "") -> tuple[AccessKey, str]:
    """A new key for ``user``; returns the row and the plain key (shown once, never stored)."""
    access_id = "su" + secrets.token_hex(7)
    key = secrets.token_urlsafe(32)
    row = AccessKey.objects.create(
        user=user, label=label, access_id=access_id, key_digest=_digest(key)
    )
    return row, key


def revoke_access_key(*, access_key: AccessKey) -> None:
    access_key.revoked_at = timezone.now()
    access_key.save(update_fields=["revoked_at"])


def parse_basic(header: str) -> tuple[str, str] | None:
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    access_id, sep, key = decoded.partition(":")
    # PostgreSQL refuses NUL in text; such an id can match nothing anyway.
    if not sep or "\x00" in decoded:
        return None
    return access_id, key


def authenticate_key(access_id: str, key: str):
    """The active user of a valid access id and key, else None (constant-time comparison)."""
    row = (
        AccessKey.objects.select_related("user")
        .filter(access_id=access_id, revoked_at__isnull=True)
        .first()
    )
    expected = row.key_digest if row else _digest(secrets.token_hex(16))
    if not hmac.compare_digest(expected, _digest(key)) or row is None:
        return None
    if not row.user.is_active:
        return None
    # Writing on every request would serialise API calls on SQLite; once a minute is plenty.
    now = timezone.now()
    if row.last_used_at is None or (now - row.last_used_at).total_seconds() > 60:
        AccessKey.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.user


def user_from_request(request):
    """The user of an API request: a Basic access key, else the session's user, else None."""
    header = request.META.get("HTTP_AUTHORIZATION", "")
    if header:
        credentials = parse_basic(header)
        if credentials is None:
            return None
        return authenticate_key(*credentials)
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user
    return None


# --- login throttling -------------------------------------------------------------------------
class LoginThrottleBackend(AxesStandaloneBackend):
    """Axes' lockout check for logins made over HTTP; authenticates no one itself.

    A call without a request (a management command, the test client's ``login()``) is not a guess
    from the network and has no address to count, so it passes to the next backend unthrottled;
    every login form of the product (the login page, the admin's) passes its request.
    """

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def login_client_ip(request) -> str | None:
    """The client address behind a TLS proxy: the last ``X-Forwarded-For`` entry, which the proxy
    appended (the earlier ones are whatever the client sent); else the peer address."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "").rsplit(",", 1)[-1].strip()
    return forwarded or request.META.get("REMOTE_ADDR")


def login_locked_out(request, original_response=None, credentials=None):
    """Axes' answer to a throttled login: the login page saying so (429, ``Retry-After``), and
    one log line naming the user name (only if it is a real one: an unknown name may be a
    password typed in the wrong field) and the address. Never the password."""
    seconds = int(get_cool_off(request).total_seconds())
    minutes = math.ceil(seconds / 60)
    username = get_client_username(request, credentials) or ""
    User = get_user_model()
    known = (
        bool(username) and User._default_manager.filter(**{User.USERNAME_FIELD: username}).exists()
    )
    logger.warning(
        "Login refused for %s from %s: too many failed logins, locked for %d minutes",
        f"user name {username!r}" if known else "an unknown user name",
        getattr(request, "axes_ip_address", None) or get_client_ip_address(request),
        minutes,
    )
    response = render(
        request,
        "registration/login.html",
        {
            "form": AuthenticationForm(request),
            "next": request.POST.get("next", ""),
            "locked_out": True,
            "cool_off_minutes": minutes,
        },
        status=429,
    )
    response["Retry-After"] = str(seconds)
    # Like the login page it stands for (LoginView is never_cache): it carries a CSRF token.
    add_never_cache_headers(response)
    return response
