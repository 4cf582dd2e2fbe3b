"""`make run` on a fresh data folder: the login page answers and a django-q2 cluster is alive."""

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
import requests

from tests.conftest import wait_for

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cluster_count(env) -> int:
    code = "from django_q.status import Stat; print('CLUSTERS', len(Stat.get_all()))"
    out = subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", code],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    match = re.search(r"CLUSTERS (\d+)", out.stdout)
    return int(match.group(1)) if match else 0


@pytest.fixture
def fresh_database_url():
    """On PostgreSQL, a database of the test's own (a fresh machine has an empty one); on SQLite
    the fresh data folder already holds a fresh database."""
    url = os.environ.get("DATABASE_URL")
    if not url:
        yield None
        return
    import psycopg

    name = f"sumo_smoke_{os.getpid()}"
    parts = urlsplit(url)
    admin_url = urlunsplit(parts._replace(path="/postgres", scheme="postgresql"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        conn.execute(f'CREATE DATABASE "{name}"')
    yield urlunsplit(parts._replace(path=f"/{name}"))
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.mark.slow
def test_make_run_serves_login_and_runs_a_cluster(tmp_path, fresh_database_url):
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in ("SUMOSOURCES_ADMIN_PASSWORD",)}
    if fresh_database_url:
        env["DATABASE_URL"] = fresh_database_url
    env.update(
        PORT=str(port),
        SUMOSOURCES_DATA_DIR=str(tmp_path),
        SUMOSOURCES_Q_NAME=f"smoke{os.getpid()}",
        PYTHONUNBUFFERED="1",
    )
    log = (tmp_path / "run.log").open("w+")
    proc = subprocess.Popen(
        ["make", "run"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        base = f"http://127.0.0.1:{port}"

        def login_page():
            try:
                return requests.get(f"{base}/accounts/login/", timeout=5).status_code == 200
            except (
                requests.ConnectionError,
                requests.Timeout,
            ):  # not up yet, or a slow first answer
                assert proc.poll() is None, (tmp_path / "run.log").read_text()[-3000:]
                return False

        wait_for(login_page, timeout=120, interval=0.5, message="the login page")
        wait_for(lambda: _cluster_count(env) >= 1, timeout=60, interval=1, message="a live cluster")

        # The first admin's generated password was printed once; it logs in.
        output = (tmp_path / "run.log").read_text()
        password = re.search(r"Created user 'admin' with password: (\S+)", output).group(1)
        session = requests.Session()
        page = session.get(f"{base}/accounts/login/", timeout=5)
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
        response = session.post(
            f"{base}/accounts/login/",
            data={"username": "admin", "password": password, "csrfmiddlewaretoken": token},
            headers={"Referer": f"{base}/accounts/login/"},
            timeout=5,
        )
        assert response.status_code == 200 and "Log in" not in response.text
        assert password not in response.text
    finally:
        # Ctrl-C in a terminal signals the whole foreground group; do the same.
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=40)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            raise
        log.close()

    def group_gone():
        try:
            os.killpg(proc.pid, 0)
        except ProcessLookupError:
            return True
        return False

    # Web server, cluster sentinel and workers all share the group: none may survive Ctrl-C.
    wait_for(group_gone, timeout=20, message="every process of `make run` to exit")
