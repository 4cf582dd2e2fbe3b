"""Pytest fixtures that run the bundled Sophos Central simulator in-process.

* ``simulator_factory(**options)`` starts a :class:`Simulator` (options are SimulatorConfig
  settings, e.g. ``id_type="partner", tenants=3``) on a free 127.0.0.1 port, points the Django
  settings at it (SOPHOS_TOKEN_URL, SOPHOS_API_URL, SOPHOS_EXTRA_HOSTS, and SOPHOS_VERIFY_TLS
  when it serves HTTPS) and stops it at teardown. The process-wide token cache is cleared on both
  sides, so no test sees another's tokens.
* ``simulator``: one default simulator (a tenant credential with one tenant).
"""

import pytest

from collector.kinds.sophos_central.transport import clear_token_cache
from sophos_simulator import Simulator, SimulatorConfig


@pytest.fixture
def simulator_factory(settings):
    started: list[Simulator] = []

    def start(**options) -> Simulator:
        options.setdefault("host", "127.0.0.1")
        options.setdefault("port", 0)
        sim = Simulator(SimulatorConfig(**options)).start()
        started.append(sim)
        settings.SOPHOS_TOKEN_URL = sim.token_url
        settings.SOPHOS_API_URL = sim.api_url
        settings.SOPHOS_EXTRA_HOSTS = list(sim.extra_hosts)
        if sim.config.tls_cert:
            settings.SOPHOS_VERIFY_TLS = sim.config.tls_cert
        clear_token_cache()
        return sim

    yield start
    for sim in started:
        sim.stop()
    clear_token_cache()


@pytest.fixture
def simulator(simulator_factory) -> Simulator:
    return simulator_factory()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 and its key, as PEM files: (cert path, key path)."""
    import datetime as dt
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Sophos Central simulator")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=30))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    folder = tmp_path_factory.mktemp("tls")
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return str(cert_path), str(key_path)
