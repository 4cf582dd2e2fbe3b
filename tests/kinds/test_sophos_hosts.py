"""The vendor host allow-list, judged as the HTTP client connects.

Hostile URLs of every parser-differential family (backslash, userinfo, percent-encoding, IDNA and
Unicode look-alikes, trailing dots, port tricks, whitespace and control characters, ``#?;``) are
refused as ThirdPartyConfig before any socket is opened, wherever they enter: a tenant's stored
data host, whoami's data region, a tenant listing's ``apiHost``, the configured token and API
URLs. A property test checks that whatever the check accepts is exactly what requests and urllib3
connect to, and is allowed.
"""

import json
import socket
from urllib.parse import urlsplit

import pytest
import urllib3.util.connection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from requests.models import PreparedRequest
from urllib3.util import parse_url

from collector.choices import ErrorType
from collector.errors import CollectionError
from collector.kinds.base import Tenant
from collector.kinds.sophos_central import kind
from collector.kinds.sophos_central.transport import HostRefused, Transport, check_url

CONFIG = ErrorType.THIRD_PARTY_CONFIG
FAST = {"timeout": (1.0, 2.0), "retries": 1, "backoff": 0.0}

# {port} is a local listener that must never hear from the client. Each entry: (id, URL).
HOSTILE = [
    ("backslash", "https://127.0.0.1:{port}\\.sophos.com"),
    ("backslash-at", "https://127.0.0.1:{port}\\@api.central.sophos.com"),
    ("backslash-scheme", "https:\\\\127.0.0.1:{port}"),
    ("userinfo", "https://api.central.sophos.com@127.0.0.1:{port}"),
    ("userinfo-port", "https://api.central.sophos.com:443@127.0.0.1:{port}"),
    ("userinfo-password", "https://user:pass@api.central.sophos.com"),
    ("pct-at", "https://api.central.sophos.com%40127.0.0.1:{port}"),
    ("pct-dots", "https://127%2e0%2e0%2e1:{port}"),
    ("pct-dot-sophos", "https://api-eu01%2ecentral.sophos.com"),
    ("pct-slash", "https://127.0.0.1:{port}%2f.sophos.com"),
    ("fullwidth-dot", "https://api.central\uff0esophos.com"),
    ("fullwidth-colon", "https://127.0.0.1\uff1a{port}"),
    ("ideographic-dot", "https://api\u3002central.sophos.com"),
    ("cyrillic-s", "https://api.central.\u0455ophos.com"),
    ("punycode-lookalike", "https://api.central.xn--ophos-g2e.com"),
    ("non-ascii", "https://api.central.sophos.com\u00e9"),
    ("trailing-dot", "https://api.central.sophos.com."),
    ("trailing-dot-root", "https://sophos.com."),
    ("empty-label", "https://api..sophos.com"),
    ("leading-hyphen", "https://-api.central.sophos.com"),
    ("underscore", "https://api_eu01.central.sophos.com"),
    ("wildcard", "https://*.sophos.com"),
    ("port-zero", "https://api.central.sophos.com:0"),
    ("port-too-big", "https://api.central.sophos.com:99999"),
    ("port-plus", "https://api.central.sophos.com:+443"),
    ("port-empty", "https://api.central.sophos.com:"),
    ("port-leading-zero", "https://api.central.sophos.com:0443"),
    ("port-other", "https://api.central.sophos.com:8443"),
    ("port-twice", "https://127.0.0.1:{port}:443"),
    ("http-sophos-with-port", "http://api.central.sophos.com:80"),
    ("space", "https://127.0.0.1:{port} .sophos.com"),
    ("tab", "https://api.central.sophos.com\t.evil.example"),
    ("nul", "https://127.0.0.1:{port}\x00.sophos.com"),
    ("crlf", "https://api.central.sophos.com\r\nHost: 127.0.0.1"),
    ("bidi-override", "https://api.central.sophos.com\u202e"),
    ("fragment", "https://127.0.0.1:{port}#.sophos.com"),
    ("query", "https://127.0.0.1:{port}?.sophos.com"),
    ("semicolon", "https://127.0.0.1:{port};.sophos.com"),
    ("suffix", "https://api.central.sophos.com.evil.example"),
    ("lookalike-domain", "https://evilsophos.com"),
    ("path-not-host", "https://127.0.0.1:{port}/.sophos.com"),
    ("dot-segments", "https://api.central.sophos.com/../x"),
    ("double-slash-path", "https://api.central.sophos.com//127.0.0.1"),
    ("scheme-relative", "//127.0.0.1:{port}"),
    ("other-scheme", "ftp://api.central.sophos.com"),
    ("ip-not-listed", "https://127.0.0.1:{port}"),
    ("ip-decimal", "http://2130706433:{port}"),
    ("ip-short", "http://127.1:{port}"),
    ("ip-mapped-v6", "http://[::ffff:127.0.0.1]:{port}"),
    ("empty", ""),
]


def connect_authority(url: str) -> str | None:
    """host[:port] that requests and urllib3 would connect to for ``url``; None if unparseable."""
    if "://" not in url:
        url = "https://" + url
    prepared = PreparedRequest()
    try:
        prepared.prepare_url(url, None)
        target = parse_url(prepared.url)
    except Exception:
        return None
    if not target.host:
        return None
    return target.host.lower() + (f":{target.port}" if target.port is not None else "")


@pytest.fixture(autouse=True)
def _quiet(caplog):
    caplog.set_level("WARNING", logger="collector.kinds.sophos_central")


@pytest.fixture
def connections(monkeypatch):
    """Every address the HTTP client opens a socket to; anything but loopback is refused (and so
    never resolved or reached), so a URL that slipped through cannot leave the machine."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    real = urllib3.util.connection.create_connection
    seen: list[tuple[str, int]] = []

    def create_connection(address, *args, **kwargs):
        seen.append((address[0], address[1]))
        if address[0] not in ("127.0.0.1", "::1"):
            raise OSError(f"the test refuses a connection to {address}")
        return real(address, *args, **kwargs)

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    return seen


@pytest.fixture
def listener():
    """A listening socket on 127.0.0.1 that must receive no connection."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        sock.setblocking(False)
        yield sock


def heard(sock: socket.socket) -> bool:
    """Whether a connection reached ``sock``. The client connects synchronously, so a completed
    handshake is already queued when the call returns: no waiting needed."""
    try:
        conn, _ = sock.accept()
    except BlockingIOError:
        return False
    conn.close()
    return True


def hostile(template: str, listener) -> str:
    return template.replace("{port}", str(listener.getsockname()[1]))


def assert_refused(error: CollectionError, url: str, listener, connections, *, allowed_port=None):
    assert error.error_type == CONFIG, (url, error)
    expected = connect_authority(url)
    if expected is not None:
        assert f"({expected})" in error.message, (url, error.message)
    assert not any(ord(c) < 0x20 or c == "\x7f" for c in error.message)
    assert not heard(listener), url
    assert all(port == allowed_port for _host, port in connections), (url, connections)


# --- every place a host enters --------------------------------------------------------------


@pytest.mark.parametrize("template", [t for _, t in HOSTILE], ids=[i for i, _ in HOSTILE])
def test_hostile_data_host_is_refused_before_any_socket(template, listener, connections):
    url = hostile(template, listener)
    session = kind.open(config={"clientId": "c"}, secret="s", **FAST)
    tenant = Tenant(id="t-1", name="T", api_host=url, region="eu01")
    for call in (
        lambda: next(session.pages(stream="Events", tenant=tenant, checkpoint=None)),
        lambda: next(session.pages(stream="Alerts", tenant=tenant, checkpoint=None)),
        lambda: session.recent("Events", tenant),
    ):
        with pytest.raises(CollectionError) as info:
            call()
        assert_refused(info.value, url, listener, connections)
    assert connections == []  # not even the token was asked for


@pytest.mark.parametrize("template", [t for _, t in HOSTILE], ids=[i for i, _ in HOSTILE])
@pytest.mark.parametrize(
    "setting, name", [("SOPHOS_TOKEN_URL", "TOKEN_URL"), ("SOPHOS_API_URL", "API_URL")]
)
def test_hostile_configured_url_is_refused_before_any_socket(
    template, setting, name, settings, listener, connections
):
    url = hostile(template, listener)
    port = listener.getsockname()[1] + 1  # a port nobody listens on, allowed
    settings.SOPHOS_EXTRA_HOSTS = [f"127.0.0.1:{port}"]
    settings.SOPHOS_TOKEN_URL = f"http://127.0.0.1:{port}/api/v2/oauth2/token"
    settings.SOPHOS_API_URL = f"http://127.0.0.1:{port}"
    setattr(settings, setting, url)
    session = kind.open(config={"clientId": "c"}, secret="s", **FAST)
    with pytest.raises(CollectionError) as info:
        session.authenticate()
    assert_refused(info.value, url, listener, connections)
    assert f"SUMOSOURCES_SOPHOS_{name}" in info.value.message
    assert connections == []


@pytest.mark.parametrize("api", ["Whoami", "Tenants"])
def test_hostile_hosts_from_whoami_and_tenant_listings(
    api, simulator_factory, listener, connections
):
    """The vendor hands the hosts: the token and whoami go to the simulator, nothing further."""
    sim = simulator_factory(id_type="tenant" if api == "Whoami" else "partner", tenants=1)
    cred = sim.credential()
    for _id, template in HOSTILE:
        url = hostile(template, listener)
        if api == "Whoami":
            body = {"id": "t-1", "idType": "tenant", "apiHosts": {"dataRegion": url}}
        elif url:  # a tenant without an apiHost is one still being set up: skipped, not refused
            body = {"items": [{"id": "t-1", "name": "T", "apiHost": url}], "pages": {"total": 1}}
        else:
            continue
        sim.clear_faults()
        sim.set_fault("body", api=api, body=json.dumps(body))
        connections.clear()
        session = kind.open(config={"clientId": cred.client_id}, secret=cred.client_secret, **FAST)
        with session, pytest.raises(CollectionError) as info:
            session.authenticate()
        assert info.value.api == api, url
        assert_refused(info.value, url, listener, connections, allowed_port=sim.port)
        assert "so no token was sent to it" in info.value.message


def test_refused_host_text_is_escaped_and_names_the_connect_target():
    with pytest.raises(HostRefused) as info:
        check_url("https://127.0.0.1:9\\.sophos.com", ())
    assert info.value.shown == "127.0.0.1:9"
    with pytest.raises(HostRefused) as info:
        check_url("https://api.sophos.com\r\n\u202e\uff0e x", ())
    assert info.value.shown == "https://api.sophos.com\\r\\n\\u202e\\uff0e\\x20x"
    with pytest.raises(HostRefused) as info:
        check_url({"not": "a url"}, ())
    assert info.value.reason == "malformed" and "not" in info.value.shown


# --- what is allowed ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url, extra, expected",
    [
        ("https://api-eu01.central.sophos.com", (), "https://api-eu01.central.sophos.com"),
        ("https://API-US01.Central.Sophos.com/", (), "https://api-us01.central.sophos.com"),
        ("http://api-eu02.central.sophos.com/", (), "https://api-eu02.central.sophos.com"),
        ("api.central.sophos.com", (), "https://api.central.sophos.com"),
        ("https://sophos.com:443", (), "https://sophos.com:443"),
        (
            "https://id.sophos.com/api/v2/oauth2/token",
            (),
            "https://id.sophos.com/api/v2/oauth2/token",
        ),
        (
            "http://127.0.0.1:8123/region/eu01",
            ("127.0.0.1:8123",),
            "http://127.0.0.1:8123/region/eu01",
        ),
        ("https://127.0.0.1:8123", ("http://127.0.0.1:8123", "https://127.0.0.1"), None),
        ("http://localhost:9/siem/v1/events", ("localhost",), "http://localhost:9/siem/v1/events"),
        ("http://[::1]:8123/region/us01", ("[::1]:8123",), "http://[::1]:8123/region/us01"),
        ("https://proxy.example/x_y~z", ("https://proxy.example:443",), None),
    ],
)
def test_allowed_urls_in_their_normal_form(url, extra, expected):
    checked = check_url(url, extra)
    assert checked.url == (expected or url)
    assert connect_authority(checked.url) == checked.authority


@pytest.mark.parametrize(
    "url, extra",
    [
        ("http://127.0.0.1:8124", ("127.0.0.1:8123",)),  # another port
        ("http://127.0.0.1:8123", ("https://127.0.0.1:8123",)),  # another scheme
        ("http://127.0.0.2:8123", ("127.0.0.1",)),  # another address
        ("http://localhost:8123", ("127.0.0.1",)),  # a name is not its address
        ("http://127.0.0.1:8123", ("localhost",)),  # nor the other way round
        ("http://sub.localhost", ("localhost",)),  # extra hosts are exact, not suffixes
        ("http://127.0.0.1:8123", ("127.0.0.1:8123@evil", "127.0.0.1\\:8123", "127.0.0.1 :8123")),
    ],
)
def test_extra_hosts_are_exact(url, extra):
    with pytest.raises(HostRefused):
        check_url(url, extra)


# --- the property ---------------------------------------------------------------------------

PORT = 8123
EXTRA = (f"127.0.0.1:{PORT}", "localhost", "[::1]")
SCHEMES = [
    "https://",
    "http://",
    "HTTPS://",
    "",
    "//",
    "https:/",
    "https:\\\\",
    "ftp://",
    "hTTp://",
]
HOSTS = [
    "api.central.sophos.com",
    "api-eu01.central.sophos.com",
    "sophos.com",
    "API.Central.Sophos.COM",
    "127.0.0.1",
    "localhost",
    "[::1]",
    "evil.example",
    "",
]
NOISE = [
    *["\\", "@", "%2e", "%40", "%2f", "\uff0e", "\u3002", "\u0455", "\u00e9", "\u202e"],
    *[".", "..", ":", ":443", ":0", ":99999", ":+443", f":{PORT}", ":80", ":0443"],
    *[" ", "\t", "\r\n", "\x00", "#", "?", ";", "/", "//", "[", "]", "*", "-", "_", "~"],
    *["sophos.com", ".sophos.com", "evil", "127.0.0.1", "user:pw@", "xn--ophos-g2e.com"],
]
TAILS = ["", "/", "/region/eu01", "/siem/v1/events", "/api/v2/oauth2/token", "/../x"]

url_ish = st.one_of(
    st.builds(
        lambda scheme, host, noise, tail: scheme + host + "".join(noise) + tail,
        st.sampled_from(SCHEMES),
        st.sampled_from(HOSTS),
        st.lists(st.sampled_from(NOISE), max_size=3),
        st.sampled_from(TAILS),
    ),
    st.lists(st.sampled_from(NOISE + HOSTS + SCHEMES), max_size=6).map("".join),
    # Mostly plain URLs, so that many are accepted and the property has teeth.
    st.builds(
        lambda scheme, host, port, tail: scheme + host + port + tail,
        st.sampled_from(["https://", "http://", "HTTPS://", ""]),
        st.sampled_from(HOSTS),
        st.sampled_from(["", ":443", f":{PORT}", ":80"]),
        st.sampled_from(TAILS),
    ),
)


def is_allowed(scheme: str, host: str, port: int | None) -> bool:
    effective = port or {"http": 80, "https": 443}[scheme]
    sophos = host == "sophos.com" or host.endswith(".sophos.com")
    if scheme == "https" and effective == 443 and sophos:
        return True
    return (host, effective) == ("127.0.0.1", PORT) or host in ("localhost", "[::1]")


def test_what_the_check_accepts_is_what_the_client_connects_to(monkeypatch):
    """For any URL-ish string: accepted means the host:port checked is the one requests and
    urllib3 read from the URL sent, the one a socket is opened to, and an allowed one; refused
    means no socket at all."""
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)
    opened: list[tuple[str, int]] = []

    def create_connection(address, *args, **kwargs):
        opened.append((address[0], address[1]))
        raise OSError("the property test opens no socket")

    monkeypatch.setattr(urllib3.util.connection, "create_connection", create_connection)
    transport = Transport(extra_hosts=EXTRA, retries=1, timeout=(1.0, 1.0))
    tally = {"accepted": 0, "refused": 0}

    @settings(
        max_examples=600,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(url_ish)
    def check(url):
        opened.clear()
        try:
            checked = check_url(url, EXTRA)
        except HostRefused:
            tally["refused"] += 1
            with pytest.raises(CollectionError) as info:
                transport.request("GET", url, api="Events")
            assert info.value.error_type == CONFIG
            assert opened == []
            return
        tally["accepted"] += 1
        # What requests (prepare_url) and urllib3 (parse_url) read from the URL that is sent...
        prepared = PreparedRequest()
        prepared.prepare_url(checked.url + "/siem/v1/events", {"limit": 200})
        target = parse_url(prepared.url)
        assert (target.host, target.port) == (checked.host, checked.port)
        assert urlsplit(prepared.url).hostname == checked.host.strip("[]")
        # ...is what they read from the URL given (scheme aside: http upgraded to https)...
        assert connect_authority(url) == checked.authority
        # ...is allowed...
        assert is_allowed(checked.scheme, checked.host, checked.port)
        # ...and is the one address a socket is opened to.
        with pytest.raises(CollectionError):
            transport.request("GET", checked.url, api="Events")
        default = {"http": 80, "https": 443}[checked.scheme]
        assert opened == [(checked.host.strip("[]"), checked.port or default)]

    check()
    transport.close()
    # The property is not vacuous: both outcomes were reached many times.
    assert tally["accepted"] >= 50 and tally["refused"] >= 100, tally
