"""Scenario faults and delays as the network shows them (mockcre/faces/core.py), over real sockets.

Each fault is seen three ways: by a raw socket (the bytes received, and RST against an orderly close:
``recv`` raising ConnectionResetError against returning ``b""``), by requests, and by Java's
``HttpClient`` (compiled in a temp folder; skipped only where no JDK is installed). Also: delays do
not serialise, a held timeout blocks nobody, and idle connections are bounded (issue 22, point 6).
Everything is on 127.0.0.1 with bounded counts and timeouts.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import socket
import ssl
import subprocess
import time
from pathlib import Path

import pytest
import requests

import mockcre
from mockcre.faces import core
from mockcre.faces.server import ThreadedServer
from mockcre.faces.tls import make_local

from httpkit import dm_item, dm_recommend, fixed_clock, stop_soon

FAULTS = ("reset", "close", "garbage", "timeout", "truncated")
HOLD_MS = 400
DELAY_MS = 500  # 200 requests on 48 threads (the old core) would need 2.1 s; awaited, all end after about 0.5 s


def _scenario() -> dict:
    """Each fault for the dm user of its name; user ``slow`` is answered after :data:`DELAY_MS`."""
    rules = [{"when": {"match": {"uid": name}}, "then": {"fault": name, **({"timeout_ms": HOLD_MS} if name == "timeout" else {})}}
             for name in FAULTS]
    rules.append({"when": {"match": {"uid": "slow"}}, "then": {"passthrough": True, "delay_ms": DELAY_MS}})
    return {"name": "faults", "rules": rules}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return make_local(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module", params=["http", "https"])
def server(request, certs):
    context = certs.server_context() if request.param == "https" else None
    srv = ThreadedServer(mockcre.create_app({"clock": fixed_clock(), "scenarios": [_scenario()]}), ssl_context=context).start()
    srv.certs = certs
    yield srv
    stop_soon(srv)


def _raw_request(server, uid: str) -> bytes:
    body = json.dumps(dm_recommend(uid=uid)).encode()
    return (f"POST /dm/service HTTP/1.1\r\nHost: 127.0.0.1:{server.port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


def _connect(server) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    if server.scheme == "https":
        sock = server.certs.client_context().wrap_socket(sock, server_hostname="127.0.0.1")
    return sock


class _Tls:
    """TLS over a raw socket through memory buffers, so the TCP ending (RST or FIN) stays visible under it."""

    def __init__(self, server, raw: socket.socket):
        self.raw, self.incoming, self.outgoing = raw, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = server.certs.client_context().wrap_bio(self.incoming, self.outgoing, server_hostname="127.0.0.1")
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                raw.sendall(self.outgoing.read())
                self.incoming.write(raw.recv(65536))
        raw.sendall(self.outgoing.read())

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self.raw.sendall(self.outgoing.read())

    def decrypt(self, data: bytes) -> bytes:
        """The application bytes in ``data`` (TLS records such as session tickets carry none)."""
        self.incoming.write(data)
        out = b""
        try:
            while chunk := self.tls.read(65536):
                out += chunk
        except (ssl.SSLWantReadError, ssl.SSLZeroReturnError):
            pass
        return out


def _raw(server, uid: str) -> tuple[bytes, str, float]:
    """The reply's bytes (decrypted under TLS), how TCP ended (``"reset"`` or ``"closed"``), and the time taken."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as raw:
        tls = _Tls(server, raw) if server.scheme == "https" else None
        started = time.monotonic()
        (tls or raw).sendall(_raw_request(server, uid))
        got, ending = b"", "closed"
        try:
            while chunk := raw.recv(65536):
                got += tls.decrypt(chunk) if tls else chunk
        except ConnectionResetError:
            ending = "reset"
        return got, ending, time.monotonic() - started


def test_reset_is_an_rst_before_any_byte(server):
    got, ending, _ = _raw(server, "reset")
    assert (got, ending) == (b"", "reset")


def test_close_ends_the_connection_in_order_without_a_byte(server):
    got, ending, _ = _raw(server, "close")
    assert (got, ending) == (b"", "closed")


def test_garbage_sends_bytes_that_are_not_http_then_closes(server):
    got, ending, _ = _raw(server, "garbage")
    assert (got, ending) == (core.GARBAGE, "closed") and not got.startswith(b"HTTP/")


def test_timeout_holds_then_closes_without_a_byte(server):
    got, ending, took = _raw(server, "timeout")
    assert (got, ending) == (b"", "closed")
    assert HOLD_MS / 1000 <= took < HOLD_MS / 1000 + 3


def test_truncated_sends_the_head_and_half_the_body(server):
    got, ending, _ = _raw(server, "truncated")
    head, _, body = got.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK") and ending == "closed"
    declared = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")))
    assert 0 < len(body) == declared // 2 < declared


@pytest.mark.parametrize("fault, error", [("reset", requests.exceptions.ConnectionError),
                                          ("close", requests.exceptions.ConnectionError),
                                          ("garbage", requests.exceptions.ConnectionError),
                                          ("timeout", requests.exceptions.ConnectionError),
                                          ("truncated", requests.exceptions.ChunkedEncodingError)])
def test_requests_meets_each_fault_as_an_error(server, fault, error):
    verify = str(server.certs.ca_path)
    with pytest.raises(error):
        requests.post(server.url + "/dm/service", json=dm_recommend(uid=fault), timeout=5, verify=verify).json()
    assert requests.post(server.url + "/dm/service", json=dm_recommend(uid="calm"), timeout=5,
                         verify=verify).json()["code"] == -3  # and the server is fine afterwards


def test_what_is_stored_after_each_fault():
    """A lost request (reset, close, garbage, timeout) stores nothing; a truncated reply was answered."""
    srv = ThreadedServer(mockcre.create_app({"clock": fixed_clock(), "scenarios": [_scenario()]})).start()
    try:
        for fault in FAULTS:
            with pytest.raises(requests.exceptions.RequestException):
                requests.post(srv.url + "/dm/data", json=dm_item(f"item-{fault}", uid=fault), timeout=5).json()
        stored = {item for part in srv.service.store.partitions.values() for item in part.items}
        assert stored == {"item-truncated"}
        faults = [entry["reply"].get("fault") for entry in requests.get(srv.url + "/__admin/journal", timeout=5).json()["entries"]]
        assert sorted(f for f in faults if f) == sorted(FAULTS)
    finally:
        stop_soon(srv)


def test_200_delayed_requests_do_not_serialise(server):
    """200 delayed requests at once, each on its own connection: all done in under 2 x the delay."""
    context = server.certs.client_context() if server.scheme == "https" else None

    async def burst(count):
        """Connect (and shake hands) first, then time the requests alone."""
        connections = await asyncio.gather(*(asyncio.open_connection(
            "127.0.0.1", server.port, ssl=context, server_hostname="127.0.0.1" if context else None) for _ in range(count)))
        started = time.monotonic()
        for _, writer in connections:
            writer.write(_raw_request(server, "slow"))
        lines = await asyncio.wait_for(asyncio.gather(*(reader.readline() for reader, _ in connections)), 30)
        took = time.monotonic() - started
        for _, writer in connections:
            writer.close()
        return [line.rstrip() for line in lines], took

    asyncio.run(burst(4))  # warm up
    lines, took = asyncio.run(burst(200))
    assert lines == [b"HTTP/1.1 200 OK"] * 200
    assert DELAY_MS / 1000 <= took < 2 * DELAY_MS / 1000, f"200 requests delayed {DELAY_MS} ms took {took:.2f} s"


def test_held_timeouts_block_nobody(server):
    """20 connections held by timeout faults; an ordinary query is answered at once meanwhile."""
    held = [_connect(server) for _ in range(20)]
    try:
        for sock in held:
            sock.sendall(_raw_request(server, "timeout"))
        started = time.monotonic()
        reply = requests.post(server.url + "/dm/service", json=dm_recommend(uid="calm"), timeout=5,
                              verify=str(server.certs.ca_path))
        assert reply.json()["code"] == -3 and time.monotonic() - started < 0.2
    finally:
        for sock in held:
            sock.close()


# -- Java's HttpClient ------------------------------------------------------------------------------

JAVA = r"""
import java.net.URI;
import java.net.http.*;
public class Probe {
    /** The older blocking client too: the SDK's own HTTP calls are often HttpURLConnection. */
    static String legacy(String url, String body) {
        try {
            java.net.HttpURLConnection c = (java.net.HttpURLConnection) new java.net.URL(url).openConnection();
            c.setDoOutput(true);
            c.setRequestProperty("Content-Type", "application/json");
            c.getOutputStream().write(body.getBytes("UTF-8"));
            c.getInputStream().readAllBytes();
            return "answer " + c.getResponseCode();
        } catch (Exception e) {
            return "error " + e.getClass().getName() + ": " + e.getMessage();
        }
    }

    public static void main(String[] args) throws Exception {
        HttpClient client = HttpClient.newBuilder().version(HttpClient.Version.HTTP_1_1).build();
        for (int i = 1; i < args.length; i++) {
            HttpRequest request = HttpRequest.newBuilder(URI.create(args[0]))
                .header("Content-Type", "application/json").POST(HttpRequest.BodyPublishers.ofString(args[i])).build();
            try {
                HttpResponse<String> response = client.send(request, HttpResponse.BodyHandlers.ofString());
                System.out.println("answer " + response.statusCode());
            } catch (Exception e) {
                System.out.println("error " + e.getClass().getName() + ": " + e.getMessage());
            }
            System.out.println(legacy(args[0], args[i]));
        }
    }
}
"""


@pytest.fixture(scope="module")
def java_probe(tmp_path_factory):
    if not (shutil.which("javac") and shutil.which("java")):
        pytest.skip("no JDK installed (javac and java)")
    folder = tmp_path_factory.mktemp("java")
    (folder / "Probe.java").write_text(JAVA)
    subprocess.run(["javac", "Probe.java"], cwd=folder, check=True, timeout=120)
    return folder


def test_java_httpclient_meets_each_fault(java_probe):
    srv = ThreadedServer(mockcre.create_app({"clock": fixed_clock(), "scenarios": [_scenario()]})).start()
    try:
        bodies = [json.dumps(dm_recommend(uid=uid)) for uid in (*FAULTS, "calm")]
        done = subprocess.run(["java", "-cp", str(java_probe), "Probe", srv.url + "/dm/service", *bodies],
                              capture_output=True, text=True, timeout=120)
        out = done.stdout.splitlines()
        client, legacy = dict(zip((*FAULTS, "calm"), out[0::2])), dict(zip((*FAULTS, "calm"), out[1::2]))
        assert legacy["reset"] == "error java.net.SocketException: Connection reset", done.stdout
        assert client["reset"].startswith("error java.io.IOException"), done.stdout  # HttpClient words it its own way
        assert client["garbage"].startswith("error java.net.ProtocolException: Invalid status line"), done.stdout
        assert client["truncated"].startswith("error java.io.IOException: fixed content-length"), done.stdout
        for fault in ("close", "timeout"):
            assert client[fault] == "error java.io.IOException: HTTP/1.1 header parser received no bytes", done.stdout
        for fault in ("close", "garbage", "timeout"):  # HttpURLConnection takes a truncated body as it comes
            assert legacy[fault].startswith("error java."), done.stdout
        assert client["calm"] == legacy["calm"] == "answer 200"
    finally:
        stop_soon(srv)


# -- idle and slow connections (issue 22, point 6) --------------------------------------------------


def test_1100_idle_connections_do_not_stop_service():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2400:
        pytest.skip(f"this process may open only {hard} files")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(4096, hard if hard != resource.RLIM_INFINITY else 4096)), hard))
    srv = ThreadedServer(mockcre.create_app({"clock": fixed_clock()})).start()
    idle = []
    try:
        for _ in range(1100):
            idle.append(socket.create_connection(("127.0.0.1", srv.port), timeout=5))
        started = time.monotonic()
        assert requests.get(srv.url + "/__admin/health", timeout=5).status_code == 200
        assert requests.post(srv.url + "/dm/service", json=dm_recommend(uid="u"), timeout=5).json()["code"] == -3
        assert time.monotonic() - started < 3
    finally:
        for sock in idle:
            sock.close()
        stop_soon(srv)
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def test_a_silent_or_slow_head_is_closed_after_the_idle_time(monkeypatch):
    monkeypatch.setattr(core, "IDLE_SECONDS", 1.0)
    srv = ThreadedServer(mockcre.create_app({"clock": fixed_clock()})).start()
    try:
        silent = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        slow = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        slow.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # the head never ends
        started = time.monotonic()
        assert silent.recv(100) == b"" and slow.recv(100) == b""
        assert 0.9 <= time.monotonic() - started < 4
        kept = socket.create_connection(("127.0.0.1", srv.port), timeout=5)  # idle between requests
        kept.sendall(b"GET /__admin/health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert kept.recv(4096).startswith(b"HTTP/1.1 200")
        assert kept.recv(100) == b""
    finally:
        stop_soon(srv)


# -- the same on `mockcre serve --tls-port`: HTTPS and the plain door, one process ---------------------


def test_serve_tls_port_resets_on_both_doors(tmp_path):
    from httpkit import free_port
    from servekit import ServeProcess

    path = tmp_path / "faults.json"
    path.write_text(json.dumps(_scenario()), encoding="utf-8")
    tls_port = free_port()
    with ServeProcess(tmp_path, "--scenario", str(path), "--tls-port", str(tls_port),
                      "--tls-ca-out", str(tmp_path / "ca.pem")) as served:
        ca = str(tmp_path / "ca.pem")
        https = f"https://127.0.0.1:{tls_port}"
        for base in (served.url, https):
            with pytest.raises(requests.exceptions.ConnectionError) as caught:
                requests.post(base + "/dm/service", json=dm_recommend(uid="reset"), timeout=5, verify=ca)
            if base == served.url:  # over TLS Python's ssl reports the RST as the peer going away
                assert "reset" in str(caught.value).lower(), caught.value
            assert requests.post(base + "/dm/service", json=dm_recommend(uid="calm"), timeout=5,
                                 verify=ca).json()["code"] == -3
        with socket.create_connection(("127.0.0.1", served.port), timeout=5) as raw:  # the plain door, raw
            raw.sendall(_raw_request(served, "reset"))
            with pytest.raises(ConnectionResetError):
                assert raw.recv(100) == b"", "an orderly close instead of a reset"


@pytest.mark.parametrize(("pipelined", "pause"), [(1, 0.0), (2, 0.0), (1, 0.3)])
def test_a_half_closed_connection_is_answered_then_closed_at_once(pipelined, pause):
    """A client that sends its requests and shuts down its side (SHUT_WR), at once or once answered, gets every
    answer, then an orderly close straight away, not after the idle timeout."""
    srv = ThreadedServer(mockcre.create_app({"clock": fixed_clock()})).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=5) as sock:
            started = time.monotonic()
            sock.sendall(_raw_request(srv, "u1") * pipelined)
            time.sleep(pause)  # 0.3 s: the answer is sent and the connection idles in keep-alive
            sock.shutdown(socket.SHUT_WR)
            got = b""
            while chunk := sock.recv(65536):
                got += chunk
            took = time.monotonic() - started
        assert got.count(b"HTTP/1.1 200") == pipelined, got[:500]
        assert took < 2.0 < core.IDLE_SECONDS, took
    finally:
        stop_soon(srv)
