"""Encryption of stored secrets (Fernet, with MultiFernet so keys rotate).

Keys come from ``SUMOSOURCES_ENCRYPTION_KEYS`` (comma-separated, newest first) or, for the embedded
default, from a key file in the data folder that is created on first use with owner-only
permissions. Plain secrets travel inside :class:`Secret`, whose repr and str never show the value,
so a secret cannot leak through a log line, an exception or a debugger's locals by accident.
"""

import os
import threading
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

MASK = "********"


class DecryptionError(Exception):
    """A stored secret cannot be decrypted with any configured key (a lost or rotated-out key)."""

    def __init__(self, message="The stored secret cannot be decrypted with the configured keys."):
        super().__init__(message)


class Secret:
    """A plain secret that refuses to show itself; call :meth:`reveal` where it is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({MASK})"

    __str__ = __repr__

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self):
        # Secrets must never be pickled into task payloads.
        raise TypeError("Secret values cannot be pickled")


_lock = threading.Lock()
_cache: tuple[tuple[str, ...], MultiFernet] | None = None


def key_file() -> Path:
    return Path(settings.ENCRYPTION_KEY_FILE)


def _read_key_file(path: Path) -> list[str]:
    return [line.strip() for line in path.read_text().splitlines() if line.strip()]


def write_key_file(path: Path, keys: list[str]) -> None:
    """Write keys (newest first) atomically with owner-only permissions."""
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write("\n".join(keys) + "\n")
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)


def configured_keys() -> list[str]:
    """The keys in force, newest first; creates the key file on first use when none are set."""
    if settings.ENCRYPTION_KEYS:
        return list(settings.ENCRYPTION_KEYS)
    path = key_file()
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first; read theirs
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(Fernet.generate_key().decode() + "\n")
    keys = _read_key_file(path)
    if not keys:
        raise ImproperlyConfigured(f"The encryption key file {path} is empty.")
    return keys


def _fernet() -> MultiFernet:
    global _cache
    keys = tuple(configured_keys())
    with _lock:
        if _cache is None or _cache[0] != keys:
            try:
                _cache = (keys, MultiFernet([Fernet(key.encode()) for key in keys]))
            except (ValueError, TypeError):
                raise ImproperlyConfigured(
                    "An encryption key is not a valid Fernet key (32 url-safe base64 bytes)."
                ) from None
        return _cache[1]


def encrypt(plain: str) -> str:
    if isinstance(plain, Secret):
        plain = plain.reveal()
    return _fernet().encrypt(plain.encode()).decode()


def decrypt(token: str) -> str:
    if not token:
        raise DecryptionError("No secret is stored.")
    try:
        return _fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError):
        raise DecryptionError() from None


def rotate_token(token: str, keys: list[str]) -> str:
    """Re-encrypt ``token`` under the first of ``keys`` (all of them may decrypt it)."""
    fernet = MultiFernet([Fernet(key.encode()) for key in keys])
    try:
        return fernet.rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError() from None


def generate_key() -> str:
    return Fernet.generate_key().decode()
