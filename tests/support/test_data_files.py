"""The data folder and the database files are owner-only; a wider mode is tightened and reported."""

import json
import logging
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from sumosources import datafiles

ROOT = Path(__file__).resolve().parent.parent.parent

# Migrates a fresh database, then lists every file's mode while a connection is still open: the
# -wal and -shm files exist only as long as one is.
MIGRATE_AND_LIST = """
import json, os, stat, django
django.setup()
from django.conf import settings
from django.core.management import call_command
from django.db import connection
call_command("migrate", verbosity=0)
with connection.cursor() as cursor:
    cursor.execute("SELECT count(*) FROM django_session")
    paths = [settings.DATA_DIR] + sorted(p for p in settings.DATA_DIR.iterdir() if p.is_file())
    print(json.dumps({str(p): stat.S_IMODE(os.stat(p).st_mode) for p in paths}))
"""


def _env(data_dir: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUMOSOURCES_")}
    env.pop("DATABASE_URL", None)
    env.update(SUMOSOURCES_DATA_DIR=str(data_dir), DJANGO_SETTINGS_MODULE="sumosources.settings")
    return env


def _run(args, data_dir):
    # umask 022 is the usual default, under which SQLite alone would create 0644 files.
    return subprocess.run(
        args, cwd=ROOT, env=_env(data_dir), capture_output=True, text=True, timeout=120,
        umask=0o022,
    )  # fmt: skip


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.slow
def test_a_fresh_database_is_owner_only(tmp_path):
    data_dir = tmp_path / "data"
    result = _run([sys.executable, "-c", MIGRATE_AND_LIST], data_dir)
    assert result.returncode == 0, result.stderr
    modes = json.loads(result.stdout.strip().splitlines()[-1])
    database = data_dir / "sumosources.sqlite3"
    assert modes.pop(str(data_dir)) == 0o700
    # The WAL files must have been there to be checked, not merely absent.
    assert {str(database), f"{database}-wal", f"{database}-shm"} <= modes.keys()
    assert {path: oct(mode) for path, mode in modes.items()} == {path: "0o600" for path in modes}
    # A fresh folder has nothing to complain about.
    assert "sumosources.W001" not in result.stderr


@pytest.mark.slow
def test_the_check_reports_and_tightens_wider_modes(tmp_path):
    data_dir = tmp_path / "data"
    assert (
        _run([sys.executable, "manage.py", "migrate", "--verbosity", "0"], data_dir).returncode == 0
    )
    database = data_dir / "sumosources.sqlite3"
    os.chmod(data_dir, 0o755)
    os.chmod(database, 0o644)
    os.chmod(data_dir / "secret_key", 0o640)

    result = _run([sys.executable, "manage.py", "check"], data_dir)

    assert result.returncode == 0, result.stderr
    out = result.stdout + result.stderr
    assert (
        f"{data_dir}: (sumosources.W001) mode 0755 opens it to other local users; changed to 0700"
        in out
    )
    assert (
        f"{database}: (sumosources.W001) mode 0644 opens it to other local users; changed to 0600"
        in out
    )
    assert f"{data_dir / 'secret_key'}: (sumosources.W001) mode 0640" in out
    assert (_mode(data_dir), _mode(database), _mode(data_dir / "secret_key")) == (
        0o700,
        0o600,
        0o600,
    )
    # Once fixed, the next start has nothing to say.
    again = _run([sys.executable, "manage.py", "check"], data_dir)
    assert "sumosources.W001" not in again.stdout + again.stderr


def test_connecting_tightens_an_existing_database_and_says_so(tmp_path, caplog):
    database = tmp_path / "old.sqlite3"
    connection = sqlite3.connect(database)
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("CREATE TABLE t (x)")
    connection.commit()
    for suffix in ("", "-wal", "-shm"):
        os.chmod(f"{database}{suffix}", 0o644)

    with caplog.at_level(logging.WARNING, logger="sumosources.datafiles"):
        datafiles.secure_sqlite_database(str(database))
    # Read while the first connection still holds the WAL open (closing it removes the files).
    modes = (_mode(database), _mode(f"{database}-wal"), _mode(f"{database}-shm"))
    connection.close()

    assert modes == (0o600, 0o600, 0o600)
    lines = [r.getMessage() for r in caplog.records if r.name == "sumosources.datafiles"]
    assert f"{database}: mode 0644 opens it to other local users; changed to 0600." in lines
    assert f"{database}-wal: mode 0644 opens it to other local users; changed to 0600." in lines


def test_a_new_database_file_is_created_owner_only_and_its_wal_follows(tmp_path):
    database = tmp_path / "new.sqlite3"
    previous = os.umask(0o022)
    try:
        datafiles.secure_sqlite_database(str(database))
        connection = sqlite3.connect(database)
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("CREATE TABLE t (x)")
        connection.commit()
        modes = {suffix: _mode(f"{database}{suffix}") for suffix in ("", "-wal", "-shm")}
        connection.close()
    finally:
        os.umask(previous)
    assert modes == {"": 0o600, "-wal": 0o600, "-shm": 0o600}


def test_memory_databases_are_left_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in (":memory:", "file:memorydb_default?mode=memory&cache=shared", ""):
        datafiles.secure_sqlite_database(name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() != 0, reason="handing a file to another user needs root")
def test_a_file_of_another_user_is_reported_not_changed(tmp_path):
    path = tmp_path / "theirs.sqlite3"
    path.write_text("")
    os.chmod(path, 0o644)
    os.chown(path, 4242, -1)

    exposure = datafiles.restrict(path, datafiles.OWNER_ONLY_FILE)

    assert exposure is not None and not exposure.fixed
    assert _mode(path) == 0o644
    assert exposure.sentence() == (
        f"{path}: mode 0644 opens it to other local users, and this user cannot change it: "
        f"run chmod 600 {path}"
    )


def test_the_check_names_what_it_found(tmp_path, settings):
    settings.DATA_DIR = tmp_path
    settings.ENCRYPTION_KEY_FILE = tmp_path / "encryption.keys"
    (tmp_path / "encryption.keys").write_text("k")
    os.chmod(tmp_path / "encryption.keys", 0o664)

    warnings = datafiles.check_data_files()

    ours = [w for w in warnings if w.obj == str(tmp_path / "encryption.keys")]
    assert [(w.id, w.msg) for w in ours] == [
        ("sumosources.W001", "mode 0664 opens it to other local users; changed to 0600.")
    ]
    assert _mode(tmp_path / "encryption.keys") == 0o600
