"""``mockcre conformance`` against our own server, and against broken servers it must catch."""

from __future__ import annotations

import json
import random
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
        ranking.entries = [e for e in ranking.entries if chance.random() > 0.4]
        return ranking

    monkeypatch.setattr("mockcre.pipeline.service.rank", forgetful)
    results = failed(run_against(server.url, dialects=("dm",), seed=1))
    name = "dm stateful: on-shelf, unexpired, pooled, bounded, ordered, repeatable"
    assert name in results and results[name].expected.startswith("the same ranking for the same request")
    assert name not in failed(run_against(server.url, dialects=("dm",), deterministic=False, seed=1))


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
