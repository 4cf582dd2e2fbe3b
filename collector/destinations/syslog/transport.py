"""Sockets to a syslog receiver: UDP datagrams, a persistent TCP or TLS stream, and the
classification of their failures into :class:`collector.errors.CollectionError`.

Error text names the receiver (``host:port``) and the cause, never the client key: the key is
only ever handed to OpenSSL through a file that exists for the duration of one call.
"""

from __future__ import annotations

import contextlib
import os
import select
import socket
import ssl
import tempfile
import time

from collector.choices import ErrorType
from collector.errors import CollectionError

CONNECT_TIMEOUT = 10.0  # seconds to connect and finish the TLS handshake
SEND_TIMEOUT = 30.0  # seconds a blocked write may wait on a receiver that stopped reading

RETRY = "Delivery retries by itself; check that the receiver is running and reachable."


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _config_error(message: str, remedy: str) -> CollectionError:
    return CollectionError(ErrorType.THIRD_PARTY_CONFIG, message, remedy=remedy, api="syslog")


def classify(exc: BaseException, host: str, port: int, protocol: str) -> CollectionError:
    """A socket or TLS failure as a classified error (design section 11): a certificate the CA
    bundle does not vouch for, a rejected client certificate or a receiver that does not speak
    TLS waits for an edit (ThirdPartyConfig); refused, reset, timed-out connections and DNS
    failures retry (ThirdPartyGeneric)."""
    where = _where(host, port)
    if isinstance(exc, CollectionError):
        return exc
    if isinstance(exc, ssl.SSLCertVerificationError):
        return _config_error(
            f"The TLS certificate of the syslog receiver at {where} could not be verified "
            f"({exc.verify_message or exc.reason or 'verification failed'}).",
            "Put the CA certificate that signed the receiver's certificate in the CA bundle, "
            "and check that the host name is one the certificate names.",
        )
    if type(exc) is ssl.SSLError:  # a TLS alert or protocol failure, not an EOF or a reset
        reason = exc.reason or "handshake failed"
        return _config_error(
            f"The TLS handshake with the syslog receiver at {where} failed ({reason}).",
            "Check that the port speaks TLS and that the receiver accepts the client "
            "certificate, if one is set.",
        )
    generic = ErrorType.THIRD_PARTY_GENERIC
    if isinstance(exc, ClosedOnArrival):
        if protocol == "tls":
            return _config_error(
                f"The syslog receiver at {where} closed the TLS connection as soon as it was "
                "set up: it most likely requires a client certificate, or does not trust ours.",
                "Set a client certificate and key that the receiver accepts, or check its TLS "
                "client authentication settings.",
            )
        return CollectionError(
            generic,
            f"The syslog receiver at {where} (TCP) closed the connection as soon as it was "
            "opened; it may not accept connections from this host.",
            remedy="Check the receiver's list of allowed senders. " + RETRY,
            api="syslog",
        )
    if isinstance(exc, socket.gaierror):
        return CollectionError(
            generic,
            f"The host name of the syslog receiver {host!r} could not be resolved.",
            remedy="Check the host name and this machine's DNS. " + RETRY,
            api="syslog",
        )
    if isinstance(exc, ConnectionRefusedError):
        what = "refused the connection" if protocol != "udp" else "answered that nothing listens"
        return CollectionError(
            generic,
            f"The syslog receiver at {where} ({protocol.upper()}) {what}.",
            remedy="Check that the receiver listens on this port. " + RETRY,
            api="syslog",
        )
    if isinstance(exc, TimeoutError):
        return CollectionError(
            generic,
            f"The syslog receiver at {where} ({protocol.upper()}) did not answer in time.",
            remedy=RETRY,
            api="syslog",
        )
    if isinstance(exc, ConnectionError | ssl.SSLError):  # reset, broken pipe, EOF mid-handshake
        return CollectionError(
            generic,
            f"The syslog receiver at {where} ({protocol.upper()}) closed the connection "
            f"({type(exc).__name__}).",
            remedy=RETRY,
            api="syslog",
        )
    if isinstance(exc, OSError):
        return CollectionError(
            generic,
            f"The syslog receiver at {where} ({protocol.upper()}) could not be reached "
            f"({exc.strerror or type(exc).__name__}).",
            remedy=RETRY,
            api="syslog",
        )
    return CollectionError(
        ErrorType.FIRST_PARTY_GENERIC,
        f"Sending to the syslog receiver at {where} failed ({type(exc).__name__}).",
        remedy="This is a fault of Sumo Sources; it retries by itself.",
        api="syslog",
    )


@contextlib.contextmanager
def _private_file(text: str):
    """A path holding ``text`` that no other user can read, removed as soon as the block ends.

    On Linux an anonymous memory file (never on disk); elsewhere a 0600 temporary file."""
    data = text.encode()
    if hasattr(os, "memfd_create"):
        fd = os.memfd_create("sumosources-tls", os.MFD_CLOEXEC)
        try:
            os.write(fd, data)
            yield f"/proc/self/fd/{fd}"
        finally:
            os.close(fd)
        return
    fd, path = tempfile.mkstemp(prefix="sumosources-tls-")  # mkstemp creates it 0600
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        yield path
    finally:
        os.unlink(path)


def tls_context(*, ca_bundle: str, client_cert: str, client_key: str, where: str):
    """A verifying client context: the CA bundle's certificates (the system's when empty), host
    name checking on, and the client certificate and key when a certificate is set."""
    try:
        context = ssl.create_default_context(cadata=ca_bundle or None)
    except (ssl.SSLError, ValueError) as exc:
        raise _config_error(
            f"The CA bundle for the syslog receiver at {where} could not be read "
            f"({getattr(exc, 'reason', None) or 'not PEM certificates'}).",
            "Paste the CA certificates in PEM form (-----BEGIN CERTIFICATE-----).",
        )
    if client_cert:
        if not client_key:
            raise _config_error(
                f"A client certificate is set for the syslog receiver at {where}, but no key.",
                "Enter the client key that belongs to the certificate.",
            )
        try:
            with _private_file(client_cert) as cert_path, _private_file(client_key) as key_path:
                context.load_cert_chain(cert_path, key_path)
        except (ssl.SSLError, OSError, ValueError) as exc:
            # The reason is OpenSSL's code (e.g. KEY_VALUES_MISMATCH), never the key's text.
            reason = getattr(exc, "reason", None) or type(exc).__name__
            raise _config_error(
                f"The client certificate and key for the syslog receiver at {where} could not "
                f"be used ({reason}).",
                "Enter a PEM certificate and the unencrypted PEM key that belongs to it.",
            )
    return context


# How long a new connection is watched for the receiver closing it again before anything is
# written: three times what connecting (and the TLS handshake) took, within these bounds.
SETTLE_MIN = 0.2
SETTLE_MAX = 2.0


class ClosedOnArrival(ConnectionError):
    """The receiver closed a connection as soon as it was opened (see :func:`open_stream`)."""


def open_stream(host: str, port: int, context: ssl.SSLContext | None) -> socket.socket:
    """A connected TCP socket (TLS-wrapped when ``context``), ready for ``sendall``.

    Some receivers accept a connection only to close it at once: rsyslog does so after the TLS
    handshake when a client certificate is required and missing or not trusted (TLS 1.3 lets the
    handshake finish first), and over TCP for a sender it does not allow. A write would still
    succeed, so the batch would count as delivered and be lost, on every reconnection. So a new
    connection is watched for a moment before it is used (a few round trips, measured by how long
    connecting took): if it is closed, ClosedOnArrival; a TLS alert raises its SSLError.
    """
    started = time.monotonic()
    sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT)
    try:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if context is not None:
            sock = context.wrap_socket(sock, server_hostname=host)
        took = time.monotonic() - started
        _settle(sock, min(SETTLE_MAX, max(SETTLE_MIN, 3 * took)))
        sock.settimeout(SEND_TIMEOUT)
        return sock
    except BaseException:
        sock.close()
        raise


def _settle(sock: socket.socket, window: float) -> None:
    """Wait up to ``window`` seconds for the peer to close ``sock``; what it sends meanwhile
    (TLS session tickets) is read and dropped."""
    deadline = time.monotonic() + window
    while (remaining := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([sock], [], [], remaining)
        if not readable:
            return
        sock.setblocking(False)
        try:
            while True:
                if not sock.recv(65536):
                    raise ClosedOnArrival("closed on arrival")
        except (ssl.SSLWantReadError, BlockingIOError):
            pass  # everything there was read; keep watching
        finally:
            sock.settimeout(CONNECT_TIMEOUT)


def open_datagram(host: str, port: int) -> socket.socket:
    """A UDP socket connected to the receiver, so an ICMP "port unreachable" surfaces as
    ConnectionRefusedError on a later send instead of vanishing."""
    error: OSError | None = None
    for family, kind, proto, _name, address in socket.getaddrinfo(
        host, port, type=socket.SOCK_DGRAM
    ):
        sock = socket.socket(family, kind, proto)
        try:
            sock.settimeout(SEND_TIMEOUT)
            sock.connect(address)
            return sock
        except OSError as exc:
            sock.close()
            error = exc
    raise error or OSError(f"no address for {host}")


def peer_closed(sock: socket.socket) -> bool:
    """Whether the receiver closed (or reset) a connection we have not written to since.

    A syslog receiver never writes to us, so a readable socket means end-of-file, a reset or TLS
    housekeeping (session tickets, close_notify). Without this check the first ``sendall`` after
    the peer closed would still succeed, into a connection nobody reads, and the batch would be
    lost. Non-blocking reads drain whatever is there: no data left means alive, EOF means closed.
    """
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):  # closed or invalid descriptor
        return True
    pending = isinstance(sock, ssl.SSLSocket) and sock.pending()
    if not readable and not pending:
        return False
    timeout = sock.gettimeout()
    sock.setblocking(False)
    try:
        while True:
            if not sock.recv(65536):
                return True
    except (ssl.SSLWantReadError, BlockingIOError):
        return False  # everything there was read; the connection is still open
    except OSError:  # reset, or a TLS alert
        return True
    finally:
        with contextlib.suppress(OSError):
            sock.settimeout(timeout)
