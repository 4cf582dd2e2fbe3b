"""`bootstrap` refuses a weak SUMOSOURCES_ADMIN_PASSWORD, naming the rule it breaks."""

import io
import re

import pytest
from django.contrib.auth.models import User
from django.contrib.auth.password_validation import validate_password
from django.core.management import call_command
from django.core.management.base import CommandError


@pytest.mark.parametrize(
    "password, rules",
    [
        ("1", ["This password is too short. It must contain at least 12 characters."]),
        ("1", ["This password is entirely numeric."]),
        ("password1234", ["This password is too common."]),
        ("admin", ["The password is too similar to the username."]),
    ],
)
def test_a_weak_admin_password_is_refused(db, monkeypatch, password, rules):
    monkeypatch.setenv("SUMOSOURCES_ADMIN_PASSWORD", password)
    with pytest.raises(CommandError) as refused:
        call_command("bootstrap", stdout=io.StringIO())
    message = str(refused.value)
    assert message.startswith("SUMOSOURCES_ADMIN_PASSWORD is refused: ")
    for rule in rules:
        assert rule in message
    assert f" {password} " not in f" {message} "
    assert not User.objects.filter(username="admin").exists()


def test_a_strong_admin_password_is_used(db, monkeypatch):
    monkeypatch.setenv("SUMOSOURCES_ADMIN_PASSWORD", "correct-Horse-battery-9")
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    assert "with the password from SUMOSOURCES_ADMIN_PASSWORD" in out.getvalue()
    assert User.objects.get(username="admin").check_password("correct-Horse-battery-9")


def test_a_generated_admin_password_passes_the_same_rules(db, monkeypatch):
    monkeypatch.delenv("SUMOSOURCES_ADMIN_PASSWORD", raising=False)
    out = io.StringIO()
    call_command("bootstrap", stdout=out)
    password = re.search(r"with password: (\S+)", out.getvalue()).group(1)
    admin = User.objects.get(username="admin")
    assert admin.check_password(password)
    validate_password(password, user=admin)
