"""Issue 15 over plain HTTP: CORS on the API (serve and proxy), and the admin API kept from web pages.

Requests carry the headers a browser would send (``Origin``, ``Sec-Fetch-Site``, a rebound
``Host``); the browser itself is in test_web_pages_browser.py. ``mockcre serve`` and ``mockcre proxy``
run as real processes where the flags matter; everything is on 127.0.0.1 and every wait
is bounded.
"""

from __future__ import annotations

import json

import pytest
import requests

from httpkit import TIMEOUT, cre_item, cre_upload, dm_item, serve  # noqa: F401 - serve: a fixture
from servekit import ServeProcess, run_cli, started_servers
from test_proxy import Running

import mockcre

APP = "http://app.example:3000"  # the H5 page's origin
EVIL = "http://evil.example"
API_PATHS = ("/upload", "/cre_test_upload", "/query", "/test-query", "/dm/data", "/dm/service", "/")
PREFLIGHT = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type,x-trace"}


@pytest.fixture
def process(tmp_path):
    with started_servers(ServeProcess, tmp_path) as start:
        yield start


def call(server: ServeProcess, method: str, path: str, body=None, **headers):
    """(status, lower-case headers, parsed JSON or raw bytes)."""
    raw = json.dumps(body).encode() if isinstance(body, dict) else body
    status, found, reply = server.request(method, path, raw, headers)
    try:
        return status, found, json.loads(reply)
    except ValueError:
        return status, found, reply


# -- CORS on the API ----------------------------------------------------------------------------------------


def test_serve_cors_for_the_given_origins(process):
    server = process("--cors-origin", APP, "--cors-origin", "HTTP://Other.Example/")
    for path in API_PATHS:
        status, headers, body = call(server, "OPTIONS", path, Origin=APP, **PREFLIGHT)
        assert (status, body) == (204, b""), (path, status, body)
        assert headers["access-control-allow-origin"] == APP
        assert headers["access-control-allow-methods"] == "POST"
        assert headers["access-control-allow-headers"] == "content-type,x-trace"
        assert int(headers["access-control-max-age"]) > 0
        assert headers["vary"] == "Origin"
    assert call(server, "OPTIONS", "/query", Origin="http://other.example", **PREFLIGHT)[0] == 204  # spelled otherwise

    status, headers, body = call(server, "OPTIONS", "/upload", Origin=EVIL, **PREFLIGHT)
    assert status == 403 and "--cors-origin" in body["message"]
    assert not [name for name in headers if name.startswith("access-control-")]

    # every API reply to a request with Origin: accepted, refused by the contract, a wrong method
    replies = [call(server, "POST", "/upload", cre_upload("1", [cre_item("i1")]), Origin=APP),
               call(server, "POST", "/dm/data", {"data_type": 1}, Origin=APP),
               call(server, "GET", "/query", Origin=APP)]
    assert [(status, body.get("code", body.get("status"))) for status, _, body in replies] == [(200, "0"), (200, -1),
                                                                                               (405, 405)]
    assert [headers.get("access-control-allow-origin") for _, headers, _ in replies] == [APP] * 3
    assert "access-control-allow-origin" not in call(server, "POST", "/upload", cre_upload("1", [cre_item("i2")]),
                                                     Origin=EVIL)[1]
    status, headers, body = call(server, "OPTIONS", "/upload")  # no Origin: not a preflight
    assert (status, body["status"], headers["allow"]) == (405, 405, "POST")

    status, headers, journal = call(server, "GET", "/__admin/journal", Origin=APP)
    assert status == 200 and "access-control-allow-origin" not in headers  # the admin API is never shared
    assert [e["headers"].get("Origin") for e in journal["entries"]] == [APP, APP, EVIL]


def test_any_origin_by_default(serve):
    mock = serve()
    for origin in ("http://localhost:5173", "https://h5.example.com", "null"):
        reply = mock.session.options(mock.url + "/dm/service", headers={"Origin": origin, **PREFLIGHT}, timeout=TIMEOUT)
        assert reply.status_code == 204 and reply.headers["Access-Control-Allow-Origin"] == origin
        assert "Access-Control-Allow-Private-Network" not in reply.headers
    # a page on a public host calling the mock on loopback: Chrome's Private Network Access asks too
    reply = mock.session.options(mock.url + "/upload", headers={"Origin": "https://h5.example.com", **PREFLIGHT,
                                                                "Access-Control-Request-Private-Network": "true"},
                                 timeout=TIMEOUT)
    assert reply.status_code == 204 and reply.headers["Access-Control-Allow-Private-Network"] == "true"


def test_a_cors_origin_must_be_an_origin():
    with pytest.raises(ValueError, match="scheme://host"):
        mockcre.create_app({"cors_origins": ["localhost:3000"]})
    done = run_cli("serve", "--cors-origin", "localhost:3000", timeout=30)
    assert done.returncode == 2 and "scheme://host[:port]" in done.stderr and "Traceback" not in done.stderr


@pytest.mark.mockcre(cors_origins=[APP])
def test_the_marker_limits_cors(mockcre):
    for origin, allowed in ((APP, APP), (EVIL, None)):
        reply = mockcre.server.app.test_client().options("/upload", headers={"Origin": origin, **PREFLIGHT})
        assert reply.headers.get("Access-Control-Allow-Origin") == allowed


def test_after_the_marker_any_origin_again(mockcre):
    reply = mockcre.server.app.test_client().options("/upload", headers={"Origin": EVIL, **PREFLIGHT})
    assert reply.status_code == 204 and reply.headers["Access-Control-Allow-Origin"] == EVIL


def test_proxy_cors(serve, tmp_path):
    upstream = serve()  # a mock that itself allows any origin
    proxy = Running(tmp_path, "proxy", "--upstream", upstream.url, "--cors-origin", APP, "--allowed-host", "proxy.lan")
    try:
        proxy.wait_ready()
        reply = requests.options(proxy.url + "/dm/data", headers={"Origin": APP, **PREFLIGHT}, timeout=TIMEOUT)
        assert reply.status_code == 204 and reply.headers["Access-Control-Allow-Origin"] == APP
        assert reply.headers["Access-Control-Allow-Methods"] == "POST"
        assert upstream.journal() == []  # answered by the proxy itself

        reply = requests.post(proxy.url + "/dm/data", json=dm_item("i1"), headers={"Origin": APP}, timeout=TIMEOUT)
        assert reply.json()["code"] == 0 and reply.headers["Access-Control-Allow-Origin"] == APP
        # the upstream answers this origin, but the proxy does not: its own header is dropped
        reply = requests.post(proxy.url + "/dm/data", json=dm_item("i2"), headers={"Origin": EVIL}, timeout=TIMEOUT)
        assert reply.json()["code"] == 0 and "Access-Control-Allow-Origin" not in reply.headers
        assert [e["headers"]["Origin"] for e in upstream.journal()] == [APP, EVIL]

        # the proxy's admin API is guarded as serve's
        journal = proxy.url + "/__admin/journal"
        assert requests.get(journal, headers={"Host": "attacker.example"}, timeout=TIMEOUT).status_code == 403
        assert requests.get(journal, headers={"Host": "proxy.lan:80"}, timeout=TIMEOUT).status_code == 200
        assert requests.post(proxy.url + "/__admin/reset", headers={"Origin": EVIL}, timeout=TIMEOUT).status_code == 403
        assert requests.get(journal, timeout=TIMEOUT).json()["count"] == 2
    finally:
        proxy.close()


# -- the admin API and web pages ------------------------------------------------------------------------------


def test_dns_rebinding_is_refused(process):
    server = process("--allowed-host", "Dev.Box")
    port = server.port
    status, headers, body = call(server, "GET", "/__admin/journal", Host=f"attacker.example:{port}")
    assert status == 403 and headers["content-type"] == "application/json"
    assert "DNS rebinding" in body["message"] and "--allowed-host attacker.example" in body["message"]
    assert call(server, "POST", "/__admin/reset", b"", Host="attacker.example")[0] == 403
    for host in ("localhost.", "127.0.0.1.evil.example", "[::1", "a b", ""):  # near misses and garbage: never a 500
        status, headers, body = call(server, "GET", "/__admin/journal", Host=host)
        assert status in (400, 403) and headers["content-type"] == "application/json", (host, status, body)
    for host in (f"127.0.0.1:{port}", "127.0.0.1", f"localhost:{port}", "LOCALHOST", f"[::1]:{port}",
                 f"dev.box:{port}", "DEV.BOX"):
        assert call(server, "GET", "/__admin/journal", Host=host)[0] == 200, host
    assert call(server, "GET", "/__admin/journal")[0] == 200  # no Origin, the server's own Host


def test_the_listening_address_is_an_allowed_host():
    client = mockcre.create_app({}).test_client()
    assert client.get("/__admin/health", base_url="http://192.0.2.7:8088").status_code == 200
    assert client.get("/__admin/health", base_url="http://192.0.2.7:8088", headers={"Host": "192.0.2.8:8088"}
                      ).status_code == 403


def test_the_host_is_checked_before_the_token(process):
    server = process("--admin-token", "t0ken")
    assert call(server, "GET", "/__admin/journal", Host="attacker.example")[0] == 403  # not 401
    assert call(server, "GET", "/__admin/journal", Host="attacker.example", Authorization="Bearer t0ken")[0] == 403
    assert call(server, "POST", "/__admin/reset", b"", Origin=EVIL, Authorization="Bearer t0ken")[0] == 403
    assert call(server, "GET", "/__admin/journal", Authorization="Bearer t0ken")[0] == 200


WRITES = [("POST", "/__admin/reset"), ("POST", "/__admin/scenarios"), ("DELETE", "/__admin/scenarios"),
          ("DELETE", "/__admin/journal"), ("POST", "/__admin/ui/reset"), ("POST", "/__admin/ui/scenarios"),
          ("PUT", "/__admin/scenarios"), ("PATCH", "/__admin/state")]


def test_cross_site_writes_are_refused(serve):
    mock = serve()
    own = mock.url
    mock.ok("/upload", cre_upload("1", [cre_item("kept")]))
    assert mock.post("/__admin/scenarios", data="name: mine\n").status_code == 201
    views = ("/__admin/scenarios", "/__admin/state", "/__admin/journal")
    before = [mock.session.get(own + path, timeout=TIMEOUT).json() for path in views]
    scenario = b"name: hijack\nrules:\n  - when: {endpoint: any}\n    then: {code: -2, msg: hijacked}\n"
    for headers in ({"Origin": EVIL}, {"Origin": "null"}, {"Origin": own.replace("127.0.0.1", "localhost")},
                    {"Sec-Fetch-Site": "cross-site"}, {"Sec-Fetch-Site": "same-site"},
                    {"Origin": own, "Sec-Fetch-Site": "same-site"}):
        for method, path in WRITES:
            reply = mock.session.request(method, own + path, data=scenario, headers=headers, timeout=TIMEOUT)
            assert reply.status_code == 403, (method, path, headers, reply.status_code)
            assert "another site" in reply.json()["message"]
    assert [mock.session.get(own + path, timeout=TIMEOUT).json() for path in views] == before
    assert mock.session.get(own + "/__admin/state", headers={"Origin": EVIL}, timeout=TIMEOUT).status_code == 200

    for headers in ({"Origin": own, "Sec-Fetch-Site": "same-origin"}, {"Sec-Fetch-Site": "none"}, {}):
        reply = mock.session.post(own + "/__admin/reset?scenarios=1", headers=headers, timeout=TIMEOUT)
        assert reply.status_code == 200, (headers, reply.text)
