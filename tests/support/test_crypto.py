"""Encrypted credentials: round trip, rotation, typed failure, no leaks through repr or pickle."""

import pickle
import stat

import pytest
from django.core.management import call_command

from collector import crypto
from collector.models import Source

SECRET = "very-secret-client-secret-42"


def test_round_trip_and_ciphertext_hides_the_secret(make_source):
    source = make_source(secret=SECRET)
    source.refresh_from_db()
    assert SECRET not in source.secret_encrypted
    assert source.get_secret().reveal() == SECRET


def test_key_file_is_created_owner_only(settings, tmp_path):
    settings.ENCRYPTION_KEYS = []
    settings.ENCRYPTION_KEY_FILE = tmp_path / "keys"
    token = crypto.encrypt("x")
    mode = stat.S_IMODE((tmp_path / "keys").stat().st_mode)
    assert mode == 0o600
    assert crypto.decrypt(token) == "x"


def test_undecryptable_value_raises_a_typed_error(settings, tmp_path):
    settings.ENCRYPTION_KEYS = []
    settings.ENCRYPTION_KEY_FILE = tmp_path / "keys"
    token = crypto.encrypt("x")
    settings.ENCRYPTION_KEYS = [crypto.generate_key()]  # the old key is gone
    with pytest.raises(crypto.DecryptionError) as info:
        crypto.decrypt(token)
    assert "x" not in str(info.value)
    with pytest.raises(crypto.DecryptionError):
        crypto.decrypt("not-a-token")


def test_secret_never_shows_in_repr_str_or_pickle(make_source):
    source = make_source(secret=SECRET)
    secret = source.get_secret()
    assert SECRET not in repr(secret) and SECRET not in str(secret) and SECRET not in f"{secret}"
    assert SECRET not in repr(source)
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_rotation_with_key_file_reencrypts_and_keeps_old_keys(settings, tmp_path, make_source):
    settings.ENCRYPTION_KEYS = []
    settings.ENCRYPTION_KEY_FILE = tmp_path / "keys"
    source = make_source(secret=SECRET)
    old_token = source.secret_encrypted
    old_keys = crypto.configured_keys()
    call_command("rotate_encryption_key")
    new_keys = crypto.configured_keys()
    assert len(new_keys) == len(old_keys) + 1 and new_keys[1:] == old_keys
    source.refresh_from_db()
    assert source.secret_encrypted != old_token
    # Only the new key is needed now.
    settings.ENCRYPTION_KEYS = [new_keys[0]]
    assert Source.objects.get(pk=source.pk).get_secret().reveal() == SECRET


def test_rotation_drop_old_leaves_one_key(settings, tmp_path, make_source):
    settings.ENCRYPTION_KEYS = []
    settings.ENCRYPTION_KEY_FILE = tmp_path / "keys"
    source = make_source(secret=SECRET)
    call_command("rotate_encryption_key", "--drop-old")
    assert len(crypto.configured_keys()) == 1
    assert Source.objects.get(pk=source.pk).get_secret().reveal() == SECRET


def test_rotation_with_environment_keys_uses_the_first_key(settings, make_source):
    old = crypto.generate_key()
    settings.ENCRYPTION_KEYS = [old]
    source = make_source(secret=SECRET)
    new = crypto.generate_key()
    settings.ENCRYPTION_KEYS = [new, old]
    call_command("rotate_encryption_key")
    settings.ENCRYPTION_KEYS = [new]
    assert Source.objects.get(pk=source.pk).get_secret().reveal() == SECRET
