"""Counters, answer sequences and the latency profile (issue 24), over real HTTP.

Every case runs through ``mockcre serve`` (a subprocess) and through the test handle
(:class:`mockcre.testing.MockcreServer`), the two ways users meet a scenario. Each row of the
counter table in docs/scenarios.md is one rule, keyed by its own user id; the test sends that user's
queries in turn and reads which of them the rule answered (code -2) and which the engine did ("0").
"""

from __future__ import annotations

import time

import pytest
import requests
import yaml

from mockcre.testing import MockcreServer

from httpkit import TIMEOUT, cre_query
from test_scenarios_cli import Served

# (the rule's when, beyond its user, the requests it answers among the first eight, 1-based)
COUNTER_TABLE = [
    ({"after": 3}, [3, 4, 5, 6, 7, 8]),
    ({"times": 2}, [1, 2]),
    ({"every": 3}, [3, 6]),
    ({"after": 3, "times": 1}, [3]),
    ({"after": 2, "times": 3}, [2, 3, 4]),
    ({"every": 2, "times": 2}, [2, 4]),
    ({"every": 2, "after": 3, "times": 2}, [4, 6]),
]
SCENARIO = {
    "name": "counters", "seed": 7,
    "rules": [{"name": f"row {n}", "when": {"endpoint": "cre.query", "match": {"user_id": f"row{n}"}, **when},
               "then": {"code": -2, "msg": "busy"}} for n, (when, _) in enumerate(COUNTER_TABLE)]
    + [{"name": "drawn twice", "when": {"endpoint": "cre.query", "match": {"user_id": "drawn"}, "times": 2,
                                          "probability": 0.5}, "then": {"code": -2}},
       {"name": "coin", "when": {"endpoint": "cre.query", "match": {"user_id": "coin"}, "probability": 0.5},
        "then": {"code": -2}},
       {"name": "steps", "when": {"endpoint": "cre.query", "match": {"user_id": "steps"}},
        "then": [{"code": -2, "msg": "first"}, {"code": -3, "msg": "second"},
                 {"recommend": ["canned"]}, {"passthrough": True}]},
       {"name": "round", "cycle": True, "when": {"endpoint": "cre.query", "match": {"user_id": "round"}},
        "then": [{"code": -2}, {"passthrough": True, "delay_ms": 1}]},
       {"name": "kinds", "when": {"endpoint": "cre.query", "match": {"user_id": "kinds"}},
        "then": [{"status": 503, "body": {"error": "busy"}}, {"delay_ms": 1}, {"fault": "reset"},
                 {"fault": "empty"}]}],
}


class Face:
    """One way to reach a scenario: ``url``, ``journal()`` and ``restart()`` (as between two tests)."""

    def __init__(self, url, journal, restart):
        self.url, self.journal, self.restart = url, journal, restart

    def answered(self, user: str, count: int = 8) -> list[int]:
        """Which of ``count`` queries of ``user`` a rule answered with a code (1-based)."""
        codes = [self.query(user).json()["code"] for _ in range(count)]
        return [n for n, code in enumerate(codes, 1) if code != "0"]

    def query(self, user: str) -> requests.Response:
        return requests.post(self.url + "/query", json=cre_query(user, "0", 3), timeout=TIMEOUT)


@pytest.fixture(scope="module", params=["serve", "handle"])
def face(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp("counters")
    path = folder / "counters.yaml"
    path.write_text(yaml.safe_dump(SCENARIO, allow_unicode=True), encoding="utf-8")
    if request.param == "serve":
        server = Served(folder, "--scenario", str(path), "--latency", "0")
        server.wait_until(lambda: requests.get(server.url + "/__admin/health", timeout=2))
        get = lambda: requests.get(server.url + "/__admin/journal", timeout=TIMEOUT).json()["entries"]  # noqa: E731
        reset = lambda: requests.post(server.url + "/__admin/reset", timeout=TIMEOUT)  # noqa: E731
        yield Face(server.url, get, reset)
        server.stop()
        server.kill()
    else:
        with MockcreServer(scenario=str(path), allow_violations=True) as mock:
            yield Face(mock.url, lambda: mock.journal, mock.begin_test)


@pytest.mark.parametrize("when, answers", COUNTER_TABLE, ids=[str(w) for w, _ in COUNTER_TABLE])
def test_each_row_of_the_counter_table(face, when, answers):
    face.restart()
    row = COUNTER_TABLE.index((when, answers))
    assert face.answered(f"row{row}") == answers
    face.restart()  # counters start again with the scenario
    assert face.answered(f"row{row}") == answers


def test_times_with_probability_answers_that_many_times_at_random_and_repeatably(face):
    face.restart()
    first = face.answered("drawn", 20)
    assert len(first) == 2  # two answers in all, wherever the draws fall
    face.restart()
    assert face.answered("drawn", 20) == first  # the scenario's seed draws the same again
    face.restart()
    coin = face.answered("coin", 40)
    assert 8 < len(coin) < 32


def test_a_sequence_answers_in_turn_then_repeats_its_last(face):
    face.restart()
    replies = [face.query("steps").json() for _ in range(6)]
    assert [r["code"] for r in replies[:2]] == ["-2", "-3"] and [r["message"] for r in replies[:2]] == ["first", "second"]
    assert [e["id"] for e in replies[2]["rec"]["0"]] == ["canned"]
    assert [r["code"] for r in replies[3:]] == ["0", "0", "0"] and "canned" not in str(replies[3:])
    items = [e["scenario"][0]["item"] for e in face.journal() if e["body"]["user_id"] == "steps"]
    assert items == [0, 1, 2, 3, 3, 3]
    face.restart()  # a sequence starts again with the scenario
    assert face.query("steps").json()["code"] == "-2"


def test_cycle_starts_the_sequence_again(face):
    face.restart()
    assert [face.query("round").json()["code"] for _ in range(5)] == ["-2", "0", "-2", "0", "-2"]
    assert [e["scenario"][0]["item"] for e in face.journal()] == [0, 1, 0, 1, 0]


def test_each_item_of_a_sequence_is_any_answer(face):
    face.restart()
    first = face.query("kinds")
    assert first.status_code == 503 and first.json() == {"error": "busy"}
    assert face.query("kinds").json()["code"] == "0"  # a delay alone: the engine answers
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):  # never an answer
        face.query("kinds")
    assert face.query("kinds").content == b""
    faults = [e["scenario"][0].get("fault") for e in face.journal()]
    assert faults == [None, None, "reset", "empty"]


# -- the latency profile --------------------------------------------------------------------------

LATENCY = {
    "name": "slow", "seed": 3, "latency": {"uniform": [60, 80]},
    "rules": [{"name": "canned", "when": {"match": {"user_id": "vip"}}, "then": {"recommend": ["a", "b"]}},
              {"name": "own delay", "when": {"match": {"user_id": "quick"}}, "then": {"code": -2, "delay_ms": 0}},
              {"name": "sequence", "when": {"match": {"user_id": "seq"}},
               "then": [{"code": -2, "delay_ms": 5}, {"code": -3}]}],
}


def timed(url: str, user: str) -> float:
    started = time.perf_counter()
    requests.post(url + "/query", json=cre_query(user, "0", 2), timeout=TIMEOUT).raise_for_status()
    return (time.perf_counter() - started) * 1000


def test_latency_applies_to_canned_rules_and_the_engine_and_a_rules_own_delay_replaces_it():
    with MockcreServer(scenario=LATENCY) as mock:
        assert timed(mock.url, "vip") >= 60  # a canned answer waits the profile's delay
        assert timed(mock.url, "nobody") >= 60  # so does the engine's
        for user in ("quick", "seq", "seq"):
            timed(mock.url, user)
        delays = [e.get("delay_ms") for e in mock.journal]  # the journal records the delay applied
        assert all(60 <= d <= 80 for d in delays[:2]), delays
        assert delays[2] is None and delays[3] == 5 and 60 <= delays[4] <= 80, delays  # own delay_ms, then profile
        mock.begin_test()
        for user in ("vip", "nobody", "quick", "seq", "seq"):
            timed(mock.url, user)
        assert [e.get("delay_ms") for e in mock.journal] == delays  # seeded: the same draws again


def test_serve_latency_flag_replaces_the_scenarios_profile(tmp_path):
    path = tmp_path / "slow.yaml"
    path.write_text(yaml.safe_dump(LATENCY), encoding="utf-8")
    server = Served(tmp_path, "--scenario", str(path), "--latency", "lognormal:30,0.2", "--seed", "5")
    try:
        server.wait_until(lambda: requests.get(server.url + "/__admin/health", timeout=2))
        for user in ("vip", "nobody", "quick"):
            timed(server.url, user)
        entries = requests.get(server.url + "/__admin/journal", timeout=TIMEOUT).json()["entries"]
        delays = [e.get("delay_ms") for e in entries]
        assert all(15 < d < 60 for d in delays[:2]) and delays[2] is None, delays
    finally:
        server.stop()
        server.kill()


@pytest.mark.parametrize("spec, fine", [("50", True), ("uniform:10,200", True), ("lognormal:50,0.5", True),
                                        ("60000", True), ("60001", False), ("lognormal:50", False),
                                        ("uniform:10", False), ("gauss:1,2", False), ("-1", False)])
def test_serve_latency_spec_is_checked_before_serving(tmp_path, spec, fine):
    from test_scenarios_cli import run

    if fine:  # --help names the forms; a good SPEC gets past the check (the bad host is what stops it)
        done = run("serve", "--latency", spec, "--host", "0.0.0.0", timeout=30)
        assert "--latency" not in done.stderr and "--admin-token" in done.stderr, done.stderr
    else:
        done = run("serve", "--latency", spec, timeout=30)
        assert done.returncode == 2 and "--latency" in done.stderr and "uniform:LO,HI" in done.stderr, done.stderr


def test_serve_help_says_the_latency_syntax():
    from test_scenarios_cli import run

    text = " ".join(run("serve", "--help").stdout.split())
    assert "--latency SPEC" in text and "uniform:10,200" in text and "lognormal:50,0.5" in text


def test_lint_exits_1_on_a_dead_rule_and_0_on_a_warning(tmp_path):
    from test_scenarios_cli import run

    dead = tmp_path / "dead.yaml"
    dead.write_text("name: dead\nrules:\n  - when: {endpoint: cre.query, probability: 0}\n    then: {code: -2}\n")
    done = run("scenario", "lint", str(dead))
    assert done.returncode == 1 and done.stdout.startswith(f"{dead}:3:33: rules[0] never answers"), done.stdout
    old = tmp_path / "old.yaml"
    old.write_text("name: old\nrules:\n  - when: {endpoint: cre.query, after: 3, times: 3}\n    then: {code: -2}\n")
    done = run("scenario", "lint", str(old))
    assert done.returncode == 0, done.stdout
    assert f"{old}:3:43: warning: rules[0].when: after: 3, times: 3 answers the 3rd to the 5th" in done.stdout
    assert done.stdout.rstrip().endswith("1 file checked, 0 problems, 1 warning"), done.stdout
