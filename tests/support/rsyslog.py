"""A real rsyslog (Debian's ``rsyslogd``) for destination tests: started by the test itself on
free loopback ports with its own configuration, writing every received message as one JSON line
(the properties rsyslog parsed from it) to a file the test reads.

No systemd is involved: ``rsyslogd -n -f <conf> -i <pidfile>`` runs in the foreground as a child
of the test and is stopped with SIGTERM at teardown. TLS uses rsyslog's GnuTLS driver (package
``rsyslog-gnutls``) with a CA and certificates the test generates (:class:`Pki`).
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import shutil
import signal
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tests.conftest import wait_for

RSYSLOGD = shutil.which("rsyslogd") or "/usr/sbin/rsyslogd"
PROBE = "rsyslog-fixture-probe"

# Each message as one JSON object: what rsyslog parsed from the header, and MSG exactly.
# Control characters are not escaped on receipt (parser.escapeControlCharactersOnReceive off), so
# "msg" is the bytes we sent, and the ":::json" option escapes them for this file.
TEMPLATE = (
    '{\\"pri\\":\\"%pri%\\",\\"version\\":\\"%protocol-version%\\",'
    '\\"host\\":\\"%hostname:::json%\\",\\"app\\":\\"%app-name:::json%\\",'
    '\\"procid\\":\\"%procid:::json%\\",\\"msgid\\":\\"%msgid:::json%\\",'
    '\\"sd\\":\\"%structured-data:::json%\\",\\"time\\":\\"%timereported:::date-rfc3339%\\",'
    '\\"msg\\":\\"%msg:::json%\\"}\\n'
)

# The message as received, one line each: far less work for rsyslog than TEMPLATE's JSON.
RAW = "%rawmsg%\\n"


def free_port(kind: int = socket.SOCK_STREAM) -> int:
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Tls:
    """The receiver's TLS files and how it authenticates clients (``anon`` or ``x509/certvalid``)."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    auth_mode: str = "anon"


class Rsyslog:
    """One rsyslogd with a UDP input, a TCP input, or a TLS input (``tls``), on 127.0.0.1."""

    def __init__(
        self,
        folder: Path,
        *,
        protocol: str,
        tls: Tls | None = None,
        template: str = TEMPLATE,
        allowed_sender: str = "",
    ):
        """``template`` is rsyslog's for each output line: :data:`TEMPLATE` (what :meth:`records`
        reads) or a lighter one such as :data:`RAW` for benchmarks. ``allowed_sender`` (e.g.
        ``192.0.2.1``) makes rsyslog drop TCP connections from any other address."""
        self.folder = folder
        self.allowed_sender = allowed_sender
        self.template = template
        self.protocol = protocol
        self.tls = tls
        self.port = free_port(socket.SOCK_DGRAM if protocol == "udp" else socket.SOCK_STREAM)
        self.output = folder / "received.jsonl"
        self.config = folder / "rsyslog.conf"
        self.pidfile = folder / "rsyslogd.pid"
        self.log = folder / "rsyslogd.log"
        self.work = folder / "work"
        self.work.mkdir(exist_ok=True)
        self.process: subprocess.Popen | None = None
        self.config.write_text(self._config_text())

    def _config_text(self) -> str:
        glob = [
            f'workDirectory="{self.work}"',
            'maxMessageSize="1m"',  # beyond the largest datagram and the tests' largest message
            'parser.escapeControlCharactersOnReceive="off"',
        ]
        lines = []
        if self.allowed_sender:
            lines.append(f"$AllowedSender TCP, {self.allowed_sender}")
        if self.protocol == "udp":
            lines.append('module(load="imudp")')
            # A large buffer: the tests send hundreds of datagrams at once (root may exceed
            # rmem_max, which rsyslog does with SO_RCVBUFFORCE).
            lines.append(
                f'input(type="imudp" address="127.0.0.1" port="{self.port}" rcvbufSize="8m")'
            )
        elif self.protocol == "tcp":
            # imtcp refuses octet-counted frames over 200,000 bytes by default.
            lines.append('module(load="imtcp" maxFrameSize="1000000")')
            lines.append(f'input(type="imtcp" address="127.0.0.1" port="{self.port}")')
        else:
            tls = self.tls
            glob += [
                f'defaultNetstreamDriverCAFile="{tls.ca_file}"',
                f'defaultNetstreamDriverCertFile="{tls.cert_file}"',
                f'defaultNetstreamDriverKeyFile="{tls.key_file}"',
            ]
            lines.append(
                'module(load="imtcp" maxFrameSize="1000000" streamDriver.name="gtls" '
                f'streamDriver.mode="1" streamDriver.authMode="{tls.auth_mode}")'
            )
            lines.append(f'input(type="imtcp" address="127.0.0.1" port="{self.port}")')
        return "\n".join(
            [
                f"global({' '.join(glob)})",
                *lines,
                f'template(name="capture" type="string" string="{self.template}")',
                f'action(type="omfile" file="{self.output}" template="capture")',
                "",
            ]
        )

    # --- lifecycle ----------------------------------------------------------------------------
    def start(self) -> Rsyslog:
        check = subprocess.run(
            [RSYSLOGD, "-N1", "-f", str(self.config)], capture_output=True, text=True
        )
        assert check.returncode == 0, f"rsyslog refused its config:\n{check.stderr}"
        self.pidfile.unlink(missing_ok=True)
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [RSYSLOGD, "-n", "-f", str(self.config), "-i", str(self.pidfile)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        self._wait_ready()
        return self

    def _wait_ready(self) -> None:
        def exited():
            if self.process.poll() is not None:
                raise AssertionError(
                    f"rsyslogd exited with {self.process.returncode}:\n{self.log.read_text()}"
                )

        if self.protocol == "udp":
            # Nothing answers a datagram: send probes until one reaches the output file, which
            # proves the whole path (input, queue, file) is up.
            probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:

                def arrived():
                    exited()
                    probe.sendto(
                        f"<134>1 - - {PROBE} - - - probe".encode(), ("127.0.0.1", self.port)
                    )
                    return any(r["app"] == PROBE for r in self.records(include_probes=True))

                wait_for(arrived, timeout=20, interval=0.05, message="rsyslog's UDP input")
            finally:
                probe.close()
            return

        def listening():
            exited()
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return True
            except OSError:
                return False

        wait_for(listening, timeout=20, interval=0.05, message="rsyslog's TCP input")

    def stop(self) -> None:
        """SIGTERM and wait: rsyslog closes its connections (the peer sees end-of-file)."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)

    def restart(self) -> None:
        self.stop()
        self.start()

    # --- what arrived -------------------------------------------------------------------------
    def records(self, *, include_probes: bool = False) -> list[dict]:
        """Every message received so far, in arrival order (a partly written last line is left
        for the next call)."""
        try:
            data = self.output.read_bytes()
        except FileNotFoundError:
            return []
        lines = data.split(b"\n")[:-1]  # the part after the last LF may be incomplete
        records = [json.loads(line) for line in lines]
        if include_probes:
            return records
        return [r for r in records if r["app"] != PROBE]

    def wait_records(self, count: int, *, timeout: float = 30.0) -> list[dict]:
        """The records once at least ``count`` have arrived."""
        return wait_for(
            lambda: (lambda r: r if len(r) >= count else None)(self.records()),
            timeout=timeout,
            message=f"{count} messages at rsyslog",
        )


# --- certificates -----------------------------------------------------------------------------
class Pki:
    """A test CA with a server certificate for 127.0.0.1/localhost and a client certificate, and
    a second, unrelated CA with a server and a client certificate of its own (certificates our
    CA did not sign), as PEM files and strings."""

    def __init__(self, folder: Path):
        from cryptography.hazmat.primitives.asymmetric import ec

        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._ec = ec
        ca_key, ca_cert = self._authority("Sumo Sources test CA")
        other_key, other_cert = self._authority("Some other CA")
        self.ca_pem = self._pem(ca_cert)
        self.other_ca_pem = self._pem(other_cert)
        server_key, server_cert = self._leaf("127.0.0.1", ca_key, ca_cert, server=True)
        client_key, client_cert = self._leaf("sumosources-client", ca_key, ca_cert, server=False)
        stray_key, stray_cert = self._leaf("127.0.0.1", other_key, other_cert, server=True)
        stranger_key, stranger_cert = self._leaf("stranger", other_key, other_cert, server=False)
        self.client_cert_pem = self._pem(client_cert)
        self.client_key_pem = self._key_pem(client_key)
        # A client certificate that the other CA signed: one our receiver does not trust.
        self.stranger_cert_pem = self._pem(stranger_cert)
        self.stranger_key_pem = self._key_pem(stranger_key)
        self.ca_file = self._write("ca.pem", self.ca_pem)
        self.server = Tls(
            ca_file=self.ca_file,
            cert_file=self._write("server.pem", self._pem(server_cert)),
            key_file=self._write("server-key.pem", self._key_pem(server_key)),
        )
        self.stray_server = Tls(
            ca_file=self._write("other-ca.pem", self.other_ca_pem),
            cert_file=self._write("stray.pem", self._pem(stray_cert)),
            key_file=self._write("stray-key.pem", self._key_pem(stray_key)),
        )

    def _write(self, name: str, text: str) -> Path:
        path = self.folder / name
        path.write_text(text)
        os.chmod(path, 0o600)
        return path

    @staticmethod
    def _pem(cert) -> str:
        from cryptography.hazmat.primitives import serialization

        return cert.public_bytes(serialization.Encoding.PEM).decode()

    @staticmethod
    def _key_pem(key) -> str:
        from cryptography.hazmat.primitives import serialization

        return key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()

    def _authority(self, name: str):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        key = self._ec.generate_private_key(self._ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )  # fmt: skip
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False
            )
            .sign(key, hashes.SHA256())
        )
        return key, cert

    def _leaf(self, name: str, ca_key, ca_cert, *, server: bool):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = self._ec.generate_private_key(self._ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                critical=False,
            )
        )
        if server:
            builder = builder.add_extension(
                x509.SubjectAlternativeName(
                    [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost")]
                ),
                critical=False,
            )
        return key, builder.sign(ca_key, hashes.SHA256())
