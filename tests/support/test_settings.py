"""Settings read from the environment: production refuses development keys; URLs switch backends."""

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from sumosources.env import database_from_url, env_bool, env_int

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _start(tmp_path, **env):
    base = {k: v for k, v in os.environ.items() if not k.startswith("SUMOSOURCES_")}
    base.pop("DATABASE_URL", None)
    base.update(
        {"SUMOSOURCES_DATA_DIR": str(tmp_path), "DJANGO_SETTINGS_MODULE": "sumosources.settings"}
    )
    base.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup(); print('started')"],
        cwd=ROOT, env=base, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


@pytest.mark.parametrize(
    "key, rule",
    [
        ("django-insecure-" + "k3Y9" * 15, "'django-insecure', the mark of a development key"),
        ("change-me", "'change-me', the mark of a development key"),
        ("short", "it has 5 characters; at least 50 are needed"),
        ("Vq3-Zp8_Lr2xWm5TaN7cYk0bHs4Je6GdUf1", "it has 35 characters; at least 50 are needed"),
        ("x" * 64, "it is made of 1 different character; at least 5 are needed"),
        ("abab" * 16, "it is made of 2 different characters; at least 5 are needed"),
    ],
)
def test_production_mode_refuses_a_weak_secret_key_naming_the_rule(tmp_path, key, rule):
    result = _start(tmp_path, SUMOSOURCES_SECRET_KEY=key, SUMOSOURCES_DEBUG="0")
    assert result.returncode != 0
    assert "SUMOSOURCES_SECRET_KEY is refused in production mode" in result.stderr
    assert rule in result.stderr


def test_production_mode_accepts_a_long_random_key(tmp_path):
    import secrets

    result = _start(tmp_path, SUMOSOURCES_SECRET_KEY=secrets.token_urlsafe(50))
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_debug_mode_accepts_a_development_key(tmp_path):
    result = _start(
        tmp_path, SUMOSOURCES_SECRET_KEY="django-insecure-abc123", SUMOSOURCES_DEBUG="1"
    )
    assert result.returncode == 0, result.stderr
    assert "started" in result.stdout


def test_embedded_default_generates_a_secret_key_file(tmp_path):
    result = _start(tmp_path)
    assert result.returncode == 0, result.stderr
    key_file = tmp_path / "secret_key"
    assert len(key_file.read_text().strip()) >= 50
    assert oct(key_file.stat().st_mode & 0o777) == "0o600"


def test_bad_values_fail_loudly(tmp_path):
    result = _start(tmp_path, SUMOSOURCES_WORKERS="many")
    assert result.returncode != 0 and "SUMOSOURCES_WORKERS" in result.stderr
    result = _start(tmp_path, SUMOSOURCES_BROKER_URL="amqp://x")
    assert result.returncode != 0 and "SUMOSOURCES_BROKER_URL" in result.stderr


def test_env_helpers(monkeypatch):
    monkeypatch.setenv("X_BOOL", "yes")
    assert env_bool("X_BOOL") is True
    monkeypatch.setenv("X_BOOL", "maybe")
    with pytest.raises(ImproperlyConfigured, match="X_BOOL"):
        env_bool("X_BOOL")
    monkeypatch.setenv("X_INT", "5")
    with pytest.raises(ImproperlyConfigured, match="at least 10"):
        env_int("X_INT", 1, minimum=10)


def test_database_url_parsing():
    db = database_from_url("postgres://user:p%40ss@db.example:5433/sumo?sslmode=require")
    assert db["ENGINE"] == "django.db.backends.postgresql"
    assert (db["USER"], db["PASSWORD"], db["HOST"], db["PORT"], db["NAME"]) == (
        "user", "p@ss", "db.example", "5433", "sumo",
    )  # fmt: skip
    assert db["OPTIONS"] == {"sslmode": "require"}
    with pytest.raises(ImproperlyConfigured):
        database_from_url("mysql://x/y")


def test_the_database_is_the_one_the_environment_names(db):
    from django.db import connection

    if os.environ.get("DATABASE_URL"):
        assert connection.vendor == "postgresql"
        assert connection.settings_dict["NAME"].startswith("test_")
        return
    assert connection.vendor == "sqlite"
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        assert cursor.fetchone()[0].lower() == "wal"
        cursor.execute("PRAGMA busy_timeout")
        assert cursor.fetchone()[0] >= 20000


def test_security_headers_on_every_page(client, db):
    response = client.get("/accounts/login/")
    assert "default-src 'self'" in response["Content-Security-Policy"]
    assert response["X-Frame-Options"] == "DENY"
    assert response["X-Content-Type-Options"] == "nosniff"


def test_login_required_everywhere(client, db):
    for path in ("/", "/admin/"):
        response = client.get(path)
        assert response.status_code == 302 and "login" in response["Location"]
