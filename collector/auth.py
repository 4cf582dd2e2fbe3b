"""API access keys: HTTP Basic with an access id and key, like Sumo Logic.

Only a SHA-256 digest of each key is stored; keys are 32 random bytes, so the digest cannot be
reversed by guessing and checking it costs microseconds per request.
"""

import base64
import binascii
import hashlib
import hmac
import secrets

from django.utils import timezone

from collector.models import AccessKey


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
