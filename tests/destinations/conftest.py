"""Fixtures for destination tests: a test PKI and real rsyslog receivers."""

import pytest

from tests.support.rsyslog import RSYSLOGD, Pki, Rsyslog


@pytest.fixture(scope="session")
def pki(tmp_path_factory) -> Pki:
    return Pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def rsyslog(tmp_path):
    """Start an rsyslogd: ``rsyslog("tcp")``, ``rsyslog("tls", tls=pki.server)``; each one is
    stopped at teardown."""
    import os

    if not os.access(RSYSLOGD, os.X_OK):
        pytest.fail(
            "rsyslogd is not installed; `make test` installs Debian's rsyslog and rsyslog-gnutls"
        )
    started: list[Rsyslog] = []

    def start(protocol: str, **options) -> Rsyslog:
        folder = tmp_path / f"rsyslog-{len(started)}"
        folder.mkdir()
        receiver = Rsyslog(folder, protocol=protocol, **options)
        started.append(receiver)
        return receiver.start()

    yield start
    for receiver in started:
        receiver.stop()
