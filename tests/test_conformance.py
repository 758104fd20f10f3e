"""``mockcre conformance`` against our own server, and against broken servers it must catch."""

from __future__ import annotations

import dataclasses

import json
import random
import socket
import time
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest
from flask import Flask
from hypothesis import HealthCheck, given, settings

from mockcre import create_app, strategies
from mockcre.contracts.auth import Accounts
from mockcre.tools.conformance import Run, Target
from mockcre.contracts import validate
from mockcre.dialects import DIALECTS
from mockcre.faces.server import ThreadedServer
from mockcre.pipeline.service import Judgement
from mockcre.model.store import Item

EXAMPLES = 8


def run_against(url, dialects=("cre", "dm"), deterministic=True, seed=0, **target):
    run = Run(Target(url, **target), dialects, EXAMPLES, seed, deterministic, steps=6, shrink_seconds=2)
    return {r.name: r for r in run.execute()}


def failed(results):
    return {name: r for name, r in results.items() if not r.passed}


@pytest.fixture
def server():
    with ThreadedServer(create_app()) as srv:
        yield srv


def test_our_server_passes_every_check(server):
    results = run_against(server.url)
    assert len(results) == 14 and not failed(results), {n: (r.expected, r.detail) for n, r in failed(results).items()}


def test_accounts_are_signed_and_a_bad_signature_must_be_refused():
    with ThreadedServer(create_app({"accounts": ["cre:T1", "dm:b9=tok"]})) as srv:
        assert not failed(run_against(srv.url, cre_token="T1", dm_account=("b9", "tok")))
        unsigned = failed(run_against(srv.url, dialects=("dm",)))
        assert "dm item: valid requests answered with code 0 and a valid reply" in unsigned


def test_a_server_that_ignores_off_shelf_is_caught(server, monkeypatch):
    monkeypatch.setattr(Item, "live", lambda self, now: now < self.expire_time)  # forgets publish
    results = failed(run_against(server.url))
    for dialect in ("cre", "dm"):
        r = results[f"{dialect} stateful: on-shelf, unexpired, pooled, bounded, ordered, repeatable"]
        assert r.expected.startswith("only on-shelf, unexpired items of pools"), r.expected
        assert r.exchange is not None and r.exchange.curl().startswith("curl -sS -X POST ")
    assert all("stateful" in name for name in results)  # nothing else broke


@pytest.mark.slow
def test_a_server_that_accepts_invalid_bodies_is_caught(server, monkeypatch):
    def accept_anything(judgement):
        adapter, echo = judgement.adapter, judgement.adapter.echo(judgement.body)
        if adapter.name == "cre" and judgement.kind == "query":
            return {"seq_no": echo, "code": "0", "message": "ok"}
        return adapter.accepted(judgement.body) if isinstance(judgement.body, dict) else adapter.error(echo, -1, "?")

    monkeypatch.setattr(Judgement, "rejection", accept_anything)
    results = failed(run_against(server.url))
    invalid = [name for name in results if "one-defect" in name]
    assert len(invalid) == 6, sorted(results)
    r = results["dm action: one-defect requests answered -1 naming the field"]
    assert r.expected.startswith("code -1 with a message naming ") and r.exchange.reply["code"] == 0
    assert r.exchange.received().startswith("HTTP 200 {")


@pytest.mark.slow
def test_html_and_5xx_answers_are_failures():
    app = Flask("html")

    @app.post("/<path:anything>")
    def html(anything):
        return "<html><body>Internal error</body></html>", 500

    with ThreadedServer(app) as srv:
        results = run_against(srv.url, dialects=("dm",))
    assert len(results) == 7 and not any(r.passed for r in results.values())
    assert {r.expected for r in results.values()} == {"HTTP 200 with a JSON body"}


def test_determinism_is_checked_unless_opted_out(server, monkeypatch):
    import mockcre.model.recommend as recommend

    real, chance = recommend.rank, random.Random(7)

    def forgetful(part, req, now):  # still ordered and in range, but not the same twice
        ranking = real(part, req, now)
        return dataclasses.replace(ranking, entries=tuple(e for e in ranking.entries if chance.random() > 0.4))

    monkeypatch.setattr("mockcre.pipeline.service.rank", forgetful)
    results = failed(run_against(server.url, dialects=("dm",), seed=1))
    name = "dm stateful: on-shelf, unexpired, pooled, bounded, ordered, repeatable"
    assert name in results and results[name].expected.startswith("the same ranking for the same request")
    assert name not in failed(run_against(server.url, dialects=("dm",), deterministic=False, seed=1))


@pytest.mark.slow
def test_the_same_seed_finds_the_same_minimal_request(server, monkeypatch):
    monkeypatch.setattr(Judgement, "rejection", lambda judgement: judgement.adapter.accepted(judgement.body))
    first = failed(run_against(server.url, dialects=("dm",), seed=5))
    second = failed(run_against(server.url, dialects=("dm",), seed=5))
    name = "dm item: one-defect requests answered -1 naming the field"
    strip = lambda b: {k: v for k, v in b.items() if k not in ("request_id", "MD5")}  # noqa: E731
    assert strip(first[name].exchange.body).keys() == strip(second[name].exchange.body).keys()


def test_cli_report_exit_codes_and_junit(server, tmp_path):
    junit = tmp_path / "conformance.xml"
    done = subprocess.run([sys.executable, "-m", "mockcre", "conformance", "--target", server.url, "--dialect", "cre",
                           "--max-examples", "5", "--junit", str(junit)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().endswith("7 checks: 7 passed, 0 failed")
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite.get("tests") == "7" and suite.get("failures") == "0"


# -- the strategies integrators use ------------------------------------------------------------------

@pytest.mark.parametrize("dialect, kind", [("cre", "upload-response"), ("cre", "query-response"),
                                           ("dm", "report-response"), ("dm", "recommend-response"), ("dm", "error-response")])
def test_every_generated_response_is_valid(dialect, kind):
    @settings(max_examples=60, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategies.responses(dialect, kind))
    def check(reply):
        assert not [v for v in validate(reply, dialect, kind, strict=True) if v.severity == "error"], reply

    check()


def test_responses_reach_the_edges_a_parser_must_survive():
    seen = set()

    @settings(max_examples=400, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategies.responses("dm", "recommend-response"))
    def collect(reply):
        data = reply.get("data") or []
        seen.add(("code", reply["code"]))
        seen.update({"200 items"} if len(data) == 200 else set())
        seen.update({"empty"} if reply["code"] == 0 and not data else set())
        seen.update({"max weight"} if any(e["weight"] == 1_000_000 for e in data) else set())
        seen.update({"unicode id"} if any(not e["item"].isascii() for e in data) else set())

    collect()
    assert {("code", 0), ("code", -1), ("code", -2), ("code", -3), "200 items", "empty", "max weight", "unicode id"} <= seen


def test_signed_requests_pass_the_account_check():
    accounts = Accounts.parse(["cre:T1", "dm:b9=tok"])

    @settings(max_examples=30, database=None, deadline=None, suppress_health_check=list(HealthCheck))
    @given(strategies.requests("dm", "recommend", account=("b9", "tok")), strategies.requests("cre", "query", account="T1"))
    def check(dm_body, cre_body):
        assert DIALECTS["dm"].check_auth(accounts, dm_body) is None and DIALECTS["cre"].check_auth(accounts, cre_body) is None

    check()
    assert json.dumps(strategies.sign("dm", {"request_id": "r"}, ("b", "t")))  # plain dicts, ready to send


def test_an_unreachable_target_is_said_at_once_with_exit_2():
    from servekit import run_cli

    from httpkit import free_port

    started = time.monotonic()
    done = run_cli("conformance", "--target", f"http://127.0.0.1:{free_port()}", timeout=30)
    assert time.monotonic() - started < 5, "the CLI starts, probes and gives up within 5 s"
    assert done.returncode == 2 and "cannot connect to http://127.0.0.1:" in done.stderr, done.stderr
    assert "FAIL" not in done.stdout and "Traceback" not in done.stderr


# -- a target that is no cre/dm API (issue 25.5) ------------------------------------------------------

@pytest.fixture
def static_file_server(tmp_path):
    """``python3 -m http.server`` on a free loopback port: it answers POST with an HTML 501 page."""
    from httpkit import free_port

    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"], cwd=tmp_path,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.kill()
        proc.wait(timeout=10)


def conformance_cli(*args):
    from servekit import run_cli

    started = time.monotonic()
    done = run_cli("conformance", *args, timeout=60)
    return done, time.monotonic() - started


def test_a_static_file_server_is_a_stranger_said_within_5_s_with_exit_2(static_file_server):
    done, seconds = conformance_cli("--target", static_file_server)
    assert done.returncode == 2, done.stdout + done.stderr
    assert seconds < 5, f"{seconds:.1f} s"
    assert "does not speak a cre/dm API" in done.stderr
    assert "cre: POST /test-query answered HTTP 501 text/html" in done.stderr, done.stderr
    assert "dm: POST /dm/service answered HTTP 501 text/html" in done.stderr and "not JSON" in done.stderr
    assert "<html" not in (done.stdout + done.stderr).lower() and "FAIL" not in done.stdout and "Traceback" not in done.stderr


def json_app(reply_for):
    """A Flask app answering every POST with the JSON ``reply_for(path)``, HTTP 200."""
    app = Flask("json")

    @app.post("/<path:anything>")
    def answer(anything):
        return json.dumps(reply_for("/" + anything)), 200, {"Content-Type": "application/json"}

    return app


def test_json_without_code_is_still_a_stranger():
    with ThreadedServer(json_app(lambda path: {"status": "error", "detail": "no such API"})) as srv:
        done, seconds = conformance_cli("--target", srv.url)
    assert done.returncode == 2 and seconds < 5
    assert "HTTP 200 application/json" in done.stderr and "a JSON object without code (keys: detail, status)" in done.stderr


@pytest.mark.slow
def test_a_json_envelope_with_code_is_no_stranger():
    """The near miss: an envelope with code (even -1 to everything) is an API, whose checks then run and fail."""
    with ThreadedServer(json_app(lambda path: {"code": "-1", "message": "no"})) as srv:
        assert Target(srv.url).probe("cre") is None and Target(srv.url).probe("dm") is None
        done, _ = conformance_cli("--target", srv.url, "--dialect", "cre", "--max-examples", "1", "--steps", "1",
                                  "--shrink-seconds", "1")
    assert done.returncode == 1, done.stdout + done.stderr
    assert "FAIL  cre item: valid requests answered with code 0" in done.stdout and "7 checks: 0 passed, 7 failed" in done.stdout
    assert 'received: HTTP 200 {"code": "-1", "message": "no"}' in done.stdout


def test_a_server_speaking_one_dialect_is_told_to_check_that_one():
    speaks_cre = json_app(lambda path: {"code": "-1"} if not path.startswith("/dm/") else ["not", "an", "envelope"])
    with ThreadedServer(speaks_cre) as srv:
        done, _ = conformance_cli("--target", srv.url)
    assert done.returncode == 2
    assert "speaks cre but not dm: dm: POST /dm/service answered HTTP 200 application/json" in done.stderr, done.stderr
    assert "JSON list, not an object" in done.stderr and "--dialect cre" in done.stderr


def test_a_server_that_never_answers_is_said_within_5_s():
    """It takes the connection and says nothing: the command (start-up included) gives up within 5 s, not --timeout's 10 s."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        done, seconds = conformance_cli("--target", f"http://127.0.0.1:{listener.getsockname()[1]}")
    assert done.returncode == 2 and 3 < seconds < 5, (seconds, done.stderr)  # it did wait for an answer, 3.5 s
    assert "got no answer within" in done.stderr and "timed out" in done.stderr, done.stderr


@pytest.mark.parametrize("url, said", [
    ("127.0.0.1:8000", "'127.0.0.1:8000' has no scheme; write the base URL with one, such as http://127.0.0.1:8000"),
    ("localhost:8000", "has no scheme; write the base URL with one, such as http://localhost:8000"),
    ("ftp://127.0.0.1:8000", "the scheme is ftp; expected http:// or https://"),
    ("http://", "has no host"),
    ("http://127.0.0.1:65536", "the port is not a number from 0 to 65535"),
    ("http://127.0.0.1:8000/?x=1", "a base URL has no ?query"),
])
def test_a_url_of_the_wrong_form_is_said_as_such(url, said):
    done, seconds = conformance_cli("--target", url)
    assert done.returncode == 2 and seconds < 5
    assert said in done.stderr and "cannot connect" not in done.stderr, done.stderr


def test_a_well_formed_url_near_the_boundary_reaches_the_connection_step():
    """Port 65535 is a valid port: the URL passes its form check and fails only to connect (nothing listens)."""
    done, _ = conformance_cli("--target", "http://127.0.0.1:65535")
    assert done.returncode == 2 and "cannot connect to http://127.0.0.1:65535" in done.stderr, done.stderr


def test_a_non_json_answer_during_a_run_is_described_not_printed():
    from mockcre.tools.conformance import Exchange

    page = b"<!DOCTYPE html><html><head><title>Error</title></head><body>" + b"x" * 5000 + b"</body></html>"
    said = Exchange("http://127.0.0.1/query", {}, 500, "text/html; charset=utf-8", page).received()
    assert said.startswith("HTTP 500 text/html, 5,074 bytes, not JSON: '<!DOCTYPE html>") and len(said) < 250
