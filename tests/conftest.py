"""Shared fixtures: users of each kind, logged-in clients, small factories, a real cluster."""

import importlib.util
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth.models import Permission, User

from collector.models import Collector, Source

ROOT = Path(__file__).resolve().parent.parent

pytest_plugins = [
    name for name in ("tests.support.sim_fixtures",) if importlib.util.find_spec(name) is not None
]


def pytest_configure(config):
    """No persistent connections in tests: a live server's request threads would otherwise keep
    theirs open past the session, and PostgreSQL refuses to drop a test database in use."""
    settings.DATABASES["default"]["CONN_MAX_AGE"] = 0


# --- waiting without sleeping races -----------------------------------------------------------
def wait_for(
    condition, *, timeout: float = 30.0, interval: float = 0.1, message: str = "condition"
):
    """Poll ``condition`` until it returns a truthy value or ``timeout`` passes; return the value."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        time.sleep(interval)


# --- users ------------------------------------------------------------------------------------
@pytest.fixture
def admin_user(db):
    return User.objects.create_superuser("admin", "admin@example.com", "admin-pass-123")


@pytest.fixture
def viewer_user(db):
    """A view-only user: every view permission of the app, no add/change/delete."""
    user = User.objects.create_user("viewer", "viewer@example.com", "viewer-pass-123")
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label="collector", codename__startswith="view_")
    )
    return user


@pytest.fixture
def admin_client(client, admin_user):
    client.force_login(admin_user)
    return client


@pytest.fixture
def viewer_client(client, viewer_user):
    client.force_login(viewer_user)
    return client


# --- factories --------------------------------------------------------------------------------
@pytest.fixture
def make_collector(db):
    def make(name="Hosted EU", **kwargs):
        kwargs.setdefault("category", "sophos/eu")
        return Collector.objects.create(name=name, **kwargs)

    return make


@pytest.fixture
def make_source(db, make_collector):
    """A stored Sophos Central source (no task queued), secret encrypted like the real path."""

    def make(name="Sophos East", collector=None, secret="s3cret-value-XYZ", **kwargs):
        collector = collector or Collector.objects.first() or make_collector()
        config = kwargs.pop("config", None) or {
            "clientId": kwargs.pop("client_id", "client-123"),
            "supported_apis": kwargs.pop("supported_apis", ["Alerts", "Events"]),
        }
        kwargs.setdefault("kind", "Sophos Central")
        source = Source(collector=collector, name=name, config=config, **kwargs)
        source.set_secret(secret)
        source.save()
        return source

    return make


@pytest.fixture
def queued(monkeypatch):
    """Tasks the code asked for, as ``(function path, *args)``; nothing reaches a broker."""
    from collector.engine import lifecycle

    calls = []
    monkeypatch.setattr(lifecycle, "enqueue", lambda func, *args: calls.append((func, *args)))
    return calls


# --- a real django-q2 cluster -----------------------------------------------------------------
class Cluster:
    """A `manage.py qcluster` child process using the test database."""

    def __init__(self, env: dict):
        self.proc = subprocess.Popen(
            [sys.executable, str(ROOT / "manage.py"), "qcluster"],
            cwd=ROOT,
            env=env,
            start_new_session=True,  # its own process group, so kill() takes the workers too
        )

    def stop(self, timeout: float = 20.0) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.kill()

    def kill(self) -> None:
        """SIGKILL the whole cluster (sentinel and workers) at once, like a crash."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None


def cluster_env(extra: dict | None = None) -> dict:
    env = dict(os.environ)
    env.update(
        {
            "SUMOSOURCES_USE_TEST_DB": "1",
            "SUMOSOURCES_DATA_DIR": str(settings.DATA_DIR),
            "SUMOSOURCES_Q_NAME": settings.Q_CLUSTER["name"],
            "SUMOSOURCES_TASK_TIMEOUT": str(settings.TASK_TIMEOUT),
            "SUMOSOURCES_CLAIM_TTL": str(settings.CLAIM_TTL),
            "SUMOSOURCES_QUEUE_TTL": str(settings.QUEUE_TTL),
            "DJANGO_SETTINGS_MODULE": "sumosources.settings",
        }
    )
    env.update(extra or {})
    return env


def ping_cluster(timeout: float = 120.0) -> None:
    """Wait until a cluster has run a task end to end (a cluster starting on a loaded machine
    can take a minute to import, fork its workers and pick the task up)."""
    from django_q.models import Success
    from django_q.tasks import async_task

    task_id = async_task("collector.tasks.ping")
    wait_for(
        lambda: Success.objects.filter(id=task_id).exists(),
        timeout=timeout,
        message="a cluster to run ping",
    )


@pytest.fixture
def cluster_factory(transactional_db):
    """Start real clusters: ``start(extra_env=None, wait=True) -> Cluster``; all stopped at teardown."""
    started: list[Cluster] = []
    if settings.BROKER_URL:
        # Tasks an earlier test queued in Redis (the database is emptied between tests, the
        # broker is not) must not stand in front of this test's tasks.
        from django_q.brokers import get_broker

        get_broker().purge_queue()

    def start(extra_env: dict | None = None, wait: bool = True) -> Cluster:
        cluster = Cluster(cluster_env(extra_env))
        started.append(cluster)
        if wait:
            ping_cluster()
        return cluster

    yield start
    # Teardown kills rather than waits for a graceful stop: the next test starts from an empty
    # database anyway, and a graceful django-q2 shutdown takes about 20 seconds.
    for cluster in started:
        cluster.kill()


@pytest.fixture(scope="session", autouse=True)
def _release_the_test_database(django_db_setup, django_db_blocker):
    """PostgreSQL will not drop a test database that someone is still connected to: a cluster
    killed a moment ago, or a browser test's live server thread. End those sessions first."""
    yield
    from django.db import connection

    with django_db_blocker.unblock():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                    "WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """PBKDF2 is most of the time of a user fixture; tests need no slow hash."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(scope="session", autouse=True)
def _empty_redis_queue():
    """Tasks left in Redis by an aborted earlier run must not reach this run's clusters."""
    if settings.BROKER_URL:
        from django_q.brokers import get_broker

        get_broker().purge_queue()
    yield
