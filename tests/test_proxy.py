"""``mockcre proxy`` and ``--record`` (issue 10), tested locally against upstreams on other 127.0.0.1 ports.

The main upstream is a second mockcre running a scenario that answers some requests with
schema-breaking replies, slowly, or by breaking the connection. Two tiny raw servers cover what
mockcre cannot play: an echo server (forwarding fidelity, byte for byte, with an odd status and
headers) and servers that never answer or answer a byte at a time (timeouts). Every server is
on a free port and stopped at teardown; every subprocess is bounded and killed in ``finally``.
"""

from __future__ import annotations

import gzip
import json
import signal
import socket
import socketserver
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests
import yaml

import mockcre
from mockcre.contracts.schema_check import schema_violations
from mockcre.faces.proxy import create_proxy_app
from mockcre.scenarios import lint_files
from mockcre.faces.server import ThreadedServer

from httpkit import (CRE_TOKEN, NOW, TIMEOUT, cre_action, cre_item, cre_query, cre_upload, dm_action, dm_item,
                     dm_recommend, fixed_clock, free_port, stop_soon, wait_for)
from servekit import kill_group, mockcre_command
from test_serve_cli import run

#: The upstream's scenario: valid requests from these users get replies that break the reply contract.
BREAKING = {
    "name": "breaking-upstream",
    "rules": [
        {"name": "cre query: code a number, ids numbers, score not numeric",
         "when": {"endpoint": "cre.query", "match": {"user_id": "wrong-types"}},
         "then": {"body": {"seq_no": "{{ request.seq_no }}", "code": 0, "message": "success", "test_id": "1",
                           "abtag": "9001", "trace_id": "42", "rec": {"p1": [{"id": 7, "score": "high"}]}}}},
        {"name": "dm recommend: weights rise down the list, request_id not echoed",
         "when": {"endpoint": "dm.service", "match": {"uid": "rising"}},
         "then": {"body": {"request_id": "someone-else", "code": 0, "algid": 13, "scene_id": "1001",
                           "data": [{"item": "a", "weight": 1}, {"item": "b", "weight": 9}]}}},
        {"name": "dm report: HTTP 500 with an HTML page",
         "when": {"endpoint": "dm.data", "match": {"item_id": "boom"}},
         "then": {"status": 500, "body": "<html>oops</html>", "headers": {"Content-Type": "text/html"}}},
        {"name": "dm report answered by the engine, with a header of its own",
         "when": {"endpoint": "dm.data", "match": {"item_id": "tagged"}},
         "then": {"passthrough": True, "headers": {"X-Upstream": "mockcre"}}},
        {"name": "dm recommend: slow", "when": {"endpoint": "dm.service", "match": {"uid": "slow"}},
         "then": {"code": -3, "msg": "empty result", "delay_ms": 3000}},
        {"name": "dm recommend: connection reset", "when": {"endpoint": "dm.service", "match": {"uid": "reset"}},
         "then": {"fault": "reset"}},
    ],
}


# -- servers ---------------------------------------------------------------------------------


@pytest.fixture
def upstream():
    """A second mockcre (fixed clock, lenient) playing the real service, with the BREAKING scenario."""
    server = ThreadedServer(mockcre.create_app({"clock": fixed_clock(), "scenarios": [BREAKING]})).start()
    yield server
    stop_soon(server)


@pytest.fixture
def proxy_to():
    """Factory: ``proxy_to(url, timeout=…, record=…, **config)`` → a running proxy (ThreadedServer)."""
    started = []

    def make(url: str, timeout: float = 5, record=None, **config) -> ThreadedServer:
        app = create_proxy_app(url, {"clock": fixed_clock(), **config}, timeout=timeout,
                               record=str(record) if record else None)
        server = ThreadedServer(app).start()
        started.append(server)
        return server

    yield make
    for server in started:
        stop_soon(server)


class _Echo(BaseHTTPRequestHandler):
    """Answers every request with what it received, under an odd status, reason and headers."""

    protocol_version = "HTTP/1.1"

    def _any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length)
        seen = {"method": self.command, "target": self.path, "headers": self.headers.items(),
                "body": body.decode("latin-1")}
        self.server.seen.append(seen)
        payload = json.dumps(seen).encode()
        self.server.sent.append(payload)
        self.send_response(299, "Custom Reason")
        self.send_header("Content-Type", "application/vnd.echo+json")
        self.send_header("X-Echo", "1")
        self.send_header("Set-Cookie", "session=abc; HttpOnly")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

    def log_message(self, *args):
        pass


@pytest.fixture
def echo():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    server.daemon_threads = True
    server.seen, server.sent = [], []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def black_hole():
    """A port that accepts connections (into the backlog) and never answers."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    sock.close()


class _Drip(socketserver.BaseRequestHandler):
    def handle(self):
        self.request.recv(65536)
        self.request.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n")
        for _ in range(25):  # one byte every 0.2 s: each read is quick, the whole reply is not
            try:
                self.request.sendall(b" ")
            except OSError:
                return
            time.sleep(0.2)


@pytest.fixture
def dripping():
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), _Drip)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


# -- helpers ---------------------------------------------------------------------------------


def post(url: str, path: str, body=None, **kwargs) -> requests.Response:
    kwargs.setdefault("timeout", TIMEOUT)
    if body is not None:
        kwargs["json"] = body
    return requests.post(url + path, **kwargs)


def journal(server_or_url) -> list[dict]:
    url = getattr(server_or_url, "url", server_or_url)
    resp = requests.get(url + "/__admin/journal", timeout=TIMEOUT)
    assert resp.status_code == 200
    return resp.json()["entries"]


def recording(proxy: ThreadedServer) -> str:
    """The proxy's recording as it stands now (written at once, not at the recorder's next pause)."""
    recorder = proxy.app.extensions["mockcre.proxy"].recorder
    recorder.flush()
    return recorder.path.read_text(encoding="utf-8")


def rules_of(entry_violations) -> set:
    return {v["rule"] for v in entry_violations}


def by_path(violations) -> dict:
    return {v["path"]: v for v in violations}


# -- forwarding fidelity -------------------------------------------------------------------------


def test_request_and_reply_pass_through_unchanged(echo, proxy_to):
    proxy = proxy_to(echo.url + "/base")
    body = b'{ "seq_no" : "1",\n  "token": "t",  "proj_id":"1", "scn_id":"2", "uid_type":"5", "user_id":"\\u4e2d" }'
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Client-Trace": "t-1", "User-Agent": "client/1.0",
               "Accept-Encoding": "identity", "Cookie": "c=1", "Connection": "keep-alive"}
    resp = requests.post(proxy.url + "/query?debug=1&x=%20y", data=body, headers=headers, timeout=TIMEOUT)

    [seen] = echo.seen
    assert seen["method"] == "POST"
    assert seen["target"] == "/base/query?debug=1&x=%20y"
    assert seen["body"].encode("latin-1") == body  # byte for byte
    received = {k.lower(): v for k, v in seen["headers"]}
    for name, value in headers.items():
        if name != "Connection":  # hop-by-hop: each hop has its own
            assert received[name.lower()] == value, name
    assert received["host"] == echo.url.removeprefix("http://")
    assert received["content-length"] == str(len(body))
    # the reply comes back untouched: status, reason, headers, bytes
    assert (resp.status_code, resp.reason) == (299, "Custom Reason")
    assert resp.headers["Content-Type"] == "application/vnd.echo+json"
    assert resp.headers["X-Echo"] == "1"
    assert resp.headers["Set-Cookie"] == "session=abc; HttpOnly"
    assert "BaseHTTP" in resp.headers["Server"]  # the upstream's (Werkzeug's test server adds its own too)
    assert resp.content == echo.sent[0]  # byte for byte

    [entry] = journal(proxy)
    assert entry["endpoint"] == "cre.query" and entry["body"]["user_id"] == "中"
    assert entry["body"]["token"] != "t" and entry["headers"]["Cookie"] != "c=1"  # masked in the journal only
    assert entry["upstream"]["status"] == 299
    assert entry["upstream"]["url"] == echo.url + "/base/query?debug=1&x=%20y"
    assert "reply.http-status" in rules_of(entry["upstream"]["violations"])


def test_a_compressed_body_is_forwarded_compressed_and_judged_decompressed(echo, proxy_to):
    proxy = proxy_to(echo.url)
    body = gzip.compress(json.dumps(dm_item("i1")).encode())
    requests.post(proxy.url + "/dm/data", data=body, headers={"Content-Encoding": "gzip",
                                                                "Content-Type": "application/json"}, timeout=TIMEOUT)
    [seen] = echo.seen
    assert seen["body"].encode("latin-1") == body
    [entry] = journal(proxy)
    assert (entry["kind"], entry["body"]["item_id"], entry["violations"]) == ("item", "i1", [])


def test_other_paths_and_methods_are_forwarded_and_journaled(echo, proxy_to):
    proxy = proxy_to(echo.url)
    assert requests.get(proxy.url + "/status?x=1", timeout=TIMEOUT).status_code == 299
    assert requests.get(proxy.url + "/query", timeout=TIMEOUT).status_code == 299
    assert requests.delete(proxy.url + "/", timeout=TIMEOUT).status_code == 299
    assert [(s["method"], s["target"]) for s in echo.seen] == [("GET", "/status?x=1"), ("GET", "/query"), ("DELETE", "/")]
    entries = journal(proxy)
    assert [rules_of(e["violations"]) for e in entries] == [{"http.path"}, {"http.method"}, {"http.method"}]
    assert all(e["endpoint"] is None and e["upstream"]["status"] == 299 for e in entries)
    # the admin API stays the proxy's own
    assert requests.get(proxy.url + "/__admin/health", timeout=TIMEOUT).json() == {"status": "ok"}
    assert requests.get(proxy.url + "/__admin/nothing", timeout=TIMEOUT).status_code == 404
    assert len(echo.seen) == 3


def test_every_api_path_reaches_the_mockcre_upstream(upstream, proxy_to):
    proxy = proxy_to(upstream.url)
    sent = [("/upload", cre_upload("1", [cre_item("c1")])), ("/cre_test_upload", cre_upload("1", [cre_item("c2")])),
            ("/query", cre_query("u1")), ("/test-query", cre_query("u1")),
            ("/dm/data", dm_item("d1")), ("/dm/service", dm_recommend("u1")), ("/", dm_action("u1", 2, ["d1"]))]
    headers = {"X-Client": "tests"}
    replies = [post(proxy.url, path, body, headers=headers) for path, body in sent]
    seen, ours = journal(upstream), journal(proxy)
    assert [e["endpoint"] for e in seen] == [e["endpoint"] for e in ours] == \
        ["cre.upload", "cre.test_upload", "cre.query", "cre.test_query", "dm.data", "dm.service", "dm.data"]
    for resp, theirs, mine in zip(replies, seen, ours):
        assert resp.status_code == 200
        assert resp.json() == theirs["reply"] == mine["reply"]  # the client got what the upstream answered
        assert theirs["body"] == mine["body"] and theirs["headers"]["X-Client"] == "tests"
        assert mine["violations"] == [] and mine["upstream"]["violations"] == [], mine
        assert mine["upstream"]["status"] == 200 and mine["upstream"]["latency_ms"] > 0
    assert post(proxy.url, "/dm/data", dm_item("tagged")).headers["X-Upstream"] == "mockcre"


# -- violations --------------------------------------------------------------------------------


def test_request_violations_are_journaled_and_the_request_still_forwarded(upstream, proxy_to):
    proxy = proxy_to(upstream.url)
    bad = cre_upload("1", [{"item_id": "no-pool"}])
    reply = post(proxy.url, "/upload", bad).json()
    [theirs], [mine] = journal(upstream), journal(proxy)
    assert reply == theirs["reply"] and reply["code"] == "-1"  # the upstream's own answer
    assert "/data/0/pool_id" in by_path(mine["violations"])
    assert by_path(mine["violations"]) == by_path(theirs["violations"])  # judged as mockcre serve judges it
    assert mine["upstream"]["violations"] == []  # a well-formed -1 envelope


def test_reply_violations_are_journaled_and_the_reply_passed_on(upstream, proxy_to):
    proxy = proxy_to(upstream.url)
    wrong = post(proxy.url, "/query", cre_query("wrong-types", seq_no="s-1"))
    rising = post(proxy.url, "/dm/service", dm_recommend("rising"))
    boom = post(proxy.url, "/dm/data", dm_item("boom"))

    assert wrong.json()["rec"] == {"p1": [{"id": 7, "score": "high"}]}  # passed on as it came
    assert (boom.status_code, boom.headers["Content-Type"], boom.text) == (500, "text/html", "<html>oops</html>")
    entries = journal(proxy)
    assert all(e["violations"] == [] for e in entries)  # the requests were fine
    found = [by_path(e["upstream"]["violations"]) for e in entries]
    assert found[0]["/code"]["rule"] == "schema.type"  # 0, not "0": replies are held to the strict contract
    assert found[0]["/rec/p1/0/id"]["severity"] == "error"
    assert found[0]["/rec/p1/0/score"]["severity"] == "error"
    assert found[1]["/request_id"]["rule"] == "reply.echo"
    assert "rec-order" in rules_of(entries[1]["upstream"]["violations"])
    assert rules_of(entries[2]["upstream"]["violations"]) >= {"reply.http-status", "reply.content-type"}
    assert entries[2]["reply"] == {"raw": "<html>oops</html>"}


def test_strict_proxy_judges_requests_strictly(upstream, proxy_to):
    lenient, strict = proxy_to(upstream.url), proxy_to(upstream.url, strict=True)
    body = dm_recommend("u1", MD5="not-an-md5")
    post(lenient.url, "/dm/service", body)
    post(strict.url, "/dm/service", body)
    assert by_path(journal(lenient)[0]["violations"])["/MD5"]["severity"] == "warning"
    assert by_path(journal(strict)[0]["violations"])["/MD5"]["severity"] == "error"


def test_an_oversized_body_is_refused_not_forwarded(echo, proxy_to):
    proxy = proxy_to(echo.url, max_body_bytes=300)
    reply = post(proxy.url, "/dm/data", dm_item("big", describe="x" * 400)).json()
    assert reply["code"] == -1 and "not forwarded" in reply["msg"]
    assert echo.seen == []
    assert journal(proxy)[0]["upstream"]["error"].startswith("not forwarded")


# -- an upstream that fails: a -2 envelope, never a hang ----------------------------------------


def test_a_slow_upstream_becomes_a_system_error_in_time(upstream, proxy_to):
    proxy = proxy_to(upstream.url, timeout=1)
    body = dm_recommend("slow")
    started = time.monotonic()
    reply = post(proxy.url, "/dm/service", body).json()
    took = time.monotonic() - started
    assert reply == {"request_id": body["request_id"], "code": -2, "msg": reply["msg"]}
    assert "within 1 s" in reply["msg"]
    assert 0.9 < took < 2.5
    [entry] = journal(proxy)
    assert entry["upstream"]["status"] is None and "within 1 s" in entry["upstream"]["error"]
    assert entry["reply"] == reply


def test_an_upstream_that_never_answers_or_drips_is_cut_off_at_the_deadline(black_hole, dripping, proxy_to):
    for url in (black_hole, dripping):
        proxy = proxy_to(url, timeout=0.6)
        started = time.monotonic()
        reply = post(proxy.url, "/query", cre_query("u1", seq_no="s-9")).json()
        assert time.monotonic() - started < 1.6, url
        assert (reply["seq_no"], reply["code"]) == ("s-9", "-2")


def test_an_unreachable_upstream_becomes_a_system_error(proxy_to):
    proxy = proxy_to(f"http://127.0.0.1:{free_port()}")
    started = time.monotonic()
    reply = post(proxy.url, "/upload", cre_upload("1", [cre_item("c1")], seq_no="s-2")).json()
    assert time.monotonic() - started < 1.5
    assert (reply["seq_no"], reply["code"]) == ("s-2", "-2")
    assert "cannot reach" in journal(proxy)[0]["upstream"]["error"]
    other = requests.get(proxy.url + "/elsewhere", timeout=TIMEOUT)  # outside the API: a JSON 502
    assert other.status_code == 502 and other.json()["error"] == "Bad Gateway"


def test_an_upstream_that_hangs_up_becomes_a_system_error(upstream, proxy_to):
    proxy = proxy_to(upstream.url)
    reply = post(proxy.url, "/dm/service", dm_recommend("reset")).json()
    assert reply["code"] == -2
    assert journal(proxy)[0]["upstream"]["error"]


# -- dashboard, report, store ----------------------------------------------------------------------


def test_dashboard_report_and_store_work_in_proxy_mode(upstream, proxy_to, tmp_path):
    journal_file = tmp_path / "proxy.jsonl"
    proxy = proxy_to(upstream.url, journal_file=str(journal_file))
    post(proxy.url, "/dm/data", dm_item("d1", tags=["a", "b"]))
    post(proxy.url, "/dm/data", dm_action("u1", 2, ["d1"]))
    post(proxy.url, "/upload", cre_upload("1", [{"item_id": "no-pool"}]))
    post(proxy.url, "/dm/service", dm_recommend("rising"))
    requests.get(proxy.url + "/elsewhere", timeout=TIMEOUT)

    state = requests.get(proxy.url + "/__admin/state", params={"partition": "dm:b_demo"}, timeout=TIMEOUT).json()
    assert "d1" in state["partitions"][0]["items"]  # mirrored: the upstream accepted it
    page = requests.get(proxy.url + "/__admin/", timeout=TIMEOUT)
    assert page.status_code == 200 and "dm.data" in page.text
    for entry in journal(proxy):
        assert requests.get(f"{proxy.url}/__admin/requests/{entry['seq']}", timeout=TIMEOUT).status_code == 200
    report = requests.get(proxy.url + "/__admin/report", timeout=TIMEOUT)
    assert report.status_code == 200 and report.json()["totals"]
    assert requests.get(proxy.url + "/__admin/report?format=html", timeout=TIMEOUT).status_code == 200
    lines = [json.loads(line) for line in journal_file.read_text(encoding="utf-8").splitlines()]
    assert len(lines) == 5 and all("upstream" in e for e in lines)
    done = run("report", "--journal", str(journal_file), "--format", "json")
    assert done.returncode in (0, 1), done.stderr
    assert json.loads(done.stdout)["totals"]


# -- recording and replaying -------------------------------------------------------------------------


def _session(fresh: int) -> list[tuple[str, dict]]:
    """The requests of a recorded session; ``fresh`` varies the request ids and seq_nos, as a new run would."""
    rid = iter(range(1000 + fresh * 100, 2000 + fresh * 100))

    def dm(builder, *args, **fields):
        return builder(*args, request_id=f"{NOW + fresh}000_{next(rid)}", **fields)

    return [
        ("/upload", cre_upload("1", [cre_item("c1"), cre_item("c2")], seq_no=f"{fresh}-1")),
        ("/upload", cre_upload("2", [cre_action("u1", "102", ["c1"])], seq_no=f"{fresh}-2")),
        ("/query", cre_query("u1", pool_id="p1", seq_no=f"{fresh}-3")),
        ("/query", cre_query("u1", pool_id="p1", seq_no=f"{fresh}-4")),  # the same again: another trace_id
        ("/query", cre_query("wrong-types", seq_no=f"{fresh}-5")),
        ("/test-query", cre_query("u1", seq_no=f"{fresh}-6")),
        ("/dm/data", dm(dm_item, "d1", tags=["x"])),
        ("/", dm(dm_action, "u1", 2, ["d1"])),
        ("/dm/service", dm(dm_recommend, "u1")),
        ("/dm/service", dm(dm_recommend, "rising")),
        ("/dm/data", dm(dm_item, "boom")),
        ("/dm/service", dm(dm_recommend, "reset")),
        ("/upload", cre_upload("1", [{"item_id": "no-pool"}], seq_no=f"{fresh}-7")),  # breaks the contract
    ]


def _answers(url: str, session) -> list[tuple]:
    out = []
    for path, body in session:
        resp = post(url, path, body)
        echo_field = "seq_no" if "seq_no" in body else "request_id"
        try:
            parsed = resp.json()
        except ValueError:
            parsed = resp.text
        if isinstance(parsed, dict) and parsed.get(echo_field) == body[echo_field]:
            parsed = {**parsed, echo_field: "<echo>"}
        out.append((resp.status_code, resp.headers.get("Content-Type", "").split(";")[0], parsed))
    return out


def test_a_recorded_session_replays_the_same_answers(upstream, proxy_to, tmp_path):
    path = tmp_path / "session.yaml"
    proxy = proxy_to(upstream.url, record=path)
    observed = _answers(proxy.url, _session(0))

    scenario = yaml.safe_load(recording(proxy))
    assert lint_files([str(path)], NOW) == []
    assert schema_violations("scenario", scenario, strict=True) == []
    assert len(scenario["rules"]) == 12  # the contract-breaking upload is not recorded: the mock answers it itself

    assert scenario == proxy.app.extensions["mockcre.proxy"].recorder.scenario()
    replay = ThreadedServer(mockcre.create_app({"clock": fixed_clock(), "scenarios": [str(path)]})).start()
    try:
        replayed = _answers(replay.url, _session(1))  # new request ids and seq_nos, as a new test run sends
    finally:
        stop_soon(replay)
    assert replayed == observed
    assert observed[2][2]["trace_id"] != observed[3][2]["trace_id"]  # the same request twice, answered in order
    assert observed[11][2]["code"] == -2  # the upstream hung up: the proxy's -2 is what the client saw
    assert observed[10][:2] == (500, "text/html")


def test_a_recording_holds_no_secret_and_no_timestamp(upstream, proxy_to, tmp_path):
    proxy = proxy_to(upstream.url, record=tmp_path / "session.yaml")
    session = _session(0)
    _answers(proxy.url, session)
    text = recording(proxy)
    secrets = {CRE_TOKEN} | {body["MD5"] for _, body in session if "MD5" in body}
    assert not [s for s in secrets if s in text]
    assert str(NOW) not in text  # request ids (ms timestamps), oper_time, action_time…: none kept
    assert "{{ request.request_id }}" in text and "{{ request.seq_no }}" in text
    assert text.startswith("# Recorded by mockcre proxy in front of " + upstream.url)
    assert "1 request(s) not recorded" in text


def test_a_recording_is_written_as_it_goes(upstream, proxy_to, tmp_path):
    path = tmp_path / "live.yaml"
    proxy = proxy_to(upstream.url, record=path)
    assert yaml.safe_load(path.read_text(encoding="utf-8"))["rules"] == []  # valid from the start
    time.sleep(0.25)
    post(proxy.url, "/dm/data", dm_item("d1"))  # a lone request is written at once
    assert len(yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]) == 1
    for n in range(5):  # a burst: written within the recorder's interval after it
        post(proxy.url, "/dm/data", dm_item(f"burst-{n}"))
    deadline = time.monotonic() + 2
    while len(yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]) < 6 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(yaml.safe_load(path.read_text(encoding="utf-8"))["rules"]) == 6
    assert not [p for p in tmp_path.iterdir() if p.name != "live.yaml"]  # no temporary file left behind


# -- the command ---------------------------------------------------------------------------------------


class Running:
    """A mockcre subprocess on a free port: output to files, killed (its process group) at close."""

    def __init__(self, folder: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = folder / f"{args[0]}-{self.port}.out"
        self.err = folder / f"{args[0]}-{self.port}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.proc = subprocess.Popen(mockcre_command() + [*args, "--port", str(self.port)], stdout=out, stderr=err,
                                         stdin=subprocess.DEVNULL, start_new_session=True, cwd=folder)
        self.started = time.monotonic()

    def wait_ready(self, within: float = 10) -> None:
        resp = wait_for(self.url + "/__admin/health", self.started + within)
        assert resp is not None and resp.status_code == 200, self.err.read_text()

    def close(self) -> None:
        kill_group(self.proc)


def test_proxy_command_end_to_end(tmp_path):
    (tmp_path / "breaking.yaml").write_text(yaml.safe_dump(BREAKING), encoding="utf-8")
    running = []
    try:
        up = Running(tmp_path, "serve", "--scenario", "breaking.yaml")
        running.append(up)
        up.wait_ready()
        proxy = Running(tmp_path, "proxy", "--upstream", up.url, "--record", "rec.yaml", "--upstream-timeout", "1",
                        "--journal", "proxy.jsonl")
        running.append(proxy)
        proxy.wait_ready()
        session = [("/dm/data", dm_item("d1")), ("/query", cre_query("wrong-types")),
                   ("/dm/service", dm_recommend("slow")), ("/dm/service", dm_recommend("rising"))]
        observed = _answers(proxy.url, session)
        assert observed[2][2]["code"] == -2  # cut off after 1 s
        entries = journal(proxy)
        assert [bool(e["upstream"]["violations"]) for e in entries] == [False, True, False, True]
        proxy.proc.send_signal(signal.SIGINT)
        assert proxy.proc.wait(timeout=10) == 0
        assert f"proxy on {proxy.url} -> {up.url}" in proxy.out.read_text()

        assert run("scenario", "lint", str(tmp_path / "rec.yaml")).returncode == 0
        replay = Running(tmp_path, "serve", "--scenario", "rec.yaml")
        running.append(replay)
        replay.wait_ready()
        again = [(p, {**b, "request_id": b["request_id"] + "1"} if "request_id" in b else b) for p, b in session]
        assert _answers(replay.url, again) == observed
        assert len((tmp_path / "proxy.jsonl").read_text().splitlines()) == 4
    finally:
        for process in running:
            process.close()


@pytest.mark.parametrize("args, code, message", [
    (["--upstream", "ftp://example.com"], 2, "expected http://"),
    (["--upstream", "http://user:pw@example.com"], 2, "no credentials"),
    (["--upstream", "http://127.0.0.1:1", "--upstream-timeout", "0"], 2, "more than 0"),
    (["--upstream", "http://127.0.0.1:1", "--host", "0.0.0.0"], 2, "--admin-token"),
])
def test_proxy_command_refuses_bad_arguments(args, code, message):
    done = run("proxy", *args, "--port", str(free_port()), timeout=20)
    assert done.returncode == code
    assert message in done.stderr


def test_proxy_command_refuses_a_taken_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(1)
        done = run("proxy", "--upstream", "http://127.0.0.1:1", "--port", str(sock.getsockname()[1]), timeout=20)
    assert done.returncode == 2 and "already in use" in done.stderr


def test_a_recording_holds_no_secret_an_upstream_echoes_from_any_case_depth_or_header(echo, proxy_to, tmp_path):
    """Body secrets in any case and at any depth become templates; secret headers (which no template can name),
    whole or just their credential, are masked. The near miss: a header that is no secret is kept as it came."""
    proxy = proxy_to(echo.url, record=tmp_path / "session.yaml")
    body = dm_recommend("u1", Token="top-token-secret-1",
                        extra={"nested": [{"token": "nested-token-secret-3", "MD5": "nested-md5-secret-4"}]})
    headers = {"X-Api-Key": "xapikey-secret-1", "Authorization": "Bearer sk-live-0123456789",
               "X-Client-Trace": "trace-not-a-secret-5"}
    requests.post(proxy.url + "/dm/service", json=body, headers=headers, timeout=TIMEOUT)
    text = recording(proxy)
    for secret in ("top-token-secret-1", "nested-token-secret-3", "nested-md5-secret-4", body["MD5"],
                   "xapikey-secret-1", "sk-live-0123456789"):
        assert secret not in text, secret
    assert "{{ request.extra.nested[0].token }}" in text and "{{ request.Token }}" in text
    assert "xapi…" in text and "trace-not-a-secret-5" in text
