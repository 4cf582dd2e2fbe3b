"""The simulator's control interface refuses what a web page in a local browser could send it:
cross-site form and text/plain posts (CSRF), foreign origins, and DNS-rebound Host names."""

import http.client
import json

import pytest
import requests

from sophos_simulator import Simulator
from sophos_simulator.server import control_hosts


@pytest.fixture
def sim():
    with Simulator(events=5, alerts=1) as running:
        yield running


def call(sim, method, path, *, body=b"", **headers):
    """One request over a real socket with exactly these headers (``Host`` defaults to the
    listener's 127.0.0.1:PORT; ``None`` leaves a header out). Returns (status, JSON or None)."""
    if isinstance(body, str):
        body = body.encode()
    headers = {"Host": f"127.0.0.1:{sim.port}", **headers}
    conn = http.client.HTTPConnection("127.0.0.1", sim.port, timeout=10)
    try:
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        for name, value in headers.items():
            if value is not None:
                conn.putheader(name.replace("_", "-"), value)
        if body or method != "GET":
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body or None)
        response = conn.getresponse()
        data = response.read()
    finally:
        conn.close()
    return response.status, json.loads(data) if data else None


FAULT = '{"kind": "status", "api": "Events", "status": 503}'


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "text/plain;charset=UTF-8", "application/x-www-form-urlencoded",
     "multipart/form-data; boundary=x", None],
)  # fmt: skip
def test_a_control_post_whose_body_is_not_declared_json_is_refused(sim, content_type):
    status, answer = call(sim, "POST", "/_simulator/faults", body=FAULT, Content_Type=content_type)
    assert status == 415 and "application/json" in answer["error"]
    assert sim.faults.list() == []


def test_an_empty_form_post_is_refused_too(sim):
    """A cross-site <form> with no fields sends no body but still a form Content-Type; the
    query string alone would otherwise move the clock."""
    before = sim.now()
    status, _answer = call(
        sim, "POST", "/_simulator/advance?seconds=90000", Content_Type="text/plain"
    )
    assert status == 415
    assert sim.now() - before < 3600


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "null", "http://127.0.0.1:1", "https://127.0.0.1:{port}"]
)
def test_a_foreign_origin_is_refused(sim, origin):
    status, answer = call(
        sim,
        "POST",
        "/_simulator/faults",
        body=FAULT,
        Content_Type="application/json",
        Origin=origin.format(port=sim.port),
    )
    assert status == 403 and "same-origin" in answer["error"]
    assert sim.faults.list() == []
    status, _answer = call(sim, "GET", "/_simulator/stats", Origin=origin.format(port=sim.port))
    assert status == 403


@pytest.mark.parametrize("host", ["evil.example:{port}", "evil.example", "127.0.0.1:1", "", None])
def test_a_host_that_is_not_this_listener_is_refused(sim, host):
    """DNS rebinding: a page's own name, now resolving to 127.0.0.1, arrives as its Host."""
    host = host.format(port=sim.port) if host is not None else None
    status, answer = call(sim, "GET", "/_simulator/stats", Host=host)
    assert status == 403 and "this listener" in answer["error"]
    status, _answer = call(
        sim, "POST", "/_simulator/faults", body=FAULT, Content_Type="application/json", Host=host
    )
    assert status == 403 and sim.faults.list() == []


@pytest.mark.parametrize("name", ["127.0.0.1", "localhost", "LocalHost", "[::1]"])
def test_the_proper_json_call_works_under_each_local_name(sim, name):
    host = f"{name}:{sim.port}"
    status, answer = call(
        sim,
        "POST",
        "/_simulator/faults",
        body=FAULT,
        Content_Type="application/json; charset=utf-8",
        Host=host,
        Origin=f"http://{host}",
    )
    assert status == 200 and answer["faults"][0]["api"] == "Events"
    status, answer = call(sim, "DELETE", "/_simulator/faults", Host=host)  # no body, no type
    assert status == 200 and answer == {"cleared": 1}
    status, answer = call(sim, "POST", "/_simulator/expire-tokens", Host=host)
    assert status == 200 and answer == {"expired": True}
    status, answer = call(sim, "GET", "/_simulator/stats", Host=host)
    assert status == 200 and answer["faults"] == []


def test_requests_and_the_python_api_still_work(sim):
    made = requests.post(sim.url + "/_simulator/items", json={"stream": "Alerts", "count": 2})
    assert made.status_code == 200 and made.json() == {"added": 2}
    assert requests.get(sim.url + "/_simulator/stats").json()["totals"]["Alerts"]["available"] == 3


def test_the_public_host_is_accepted():
    with Simulator(events=1, alerts=1, public_host="sim.example.test") as sim:
        host = f"sim.example.test:{sim.port}"
        assert sim.url == f"http://{host}"
        status, answer = call(sim, "GET", "/_simulator/stats", Host=host, Origin=sim.url)
        assert status == 200 and "totals" in answer
        status, _answer = call(sim, "GET", "/_simulator/stats", Host="evil.example.test")
        assert status == 403


def test_vendor_api_paths_keep_answering_any_host(sim):
    """Like Sophos's, they answer whoever has a bearer token; their data is generated."""
    status, answer = call(
        sim,
        "POST",
        "/api/v2/oauth2/token",
        body="grant_type=client_credentials&client_id=simulator-client"
        "&client_secret=simulator-secret&scope=token",
        Content_Type="application/x-www-form-urlencoded",
        Host="id.sophos.example",
    )
    assert status == 200 and answer["token_type"] == "bearer"


def test_control_hosts():
    assert control_hosts(port=8765, scheme="http", bound="0.0.0.0", public="sim.test") == {
        "127.0.0.1:8765",
        "localhost:8765",
        "[::1]:8765",
        "sim.test:8765",
    }
    assert "10.1.2.3:8765" in control_hosts(
        port=8765, scheme="http", bound="10.1.2.3", public="127.0.0.1"
    )
    assert "[fe80::1]:8765" in control_hosts(port=8765, scheme="http", bound="fe80::1", public="x")
    # Clients leave the scheme's default port out of Host and Origin.
    assert "localhost" in control_hosts(port=443, scheme="https", bound="::", public="x")
    assert "localhost" not in control_hosts(port=80, scheme="https", bound="::", public="x")
