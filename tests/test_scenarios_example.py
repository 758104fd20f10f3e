"""The complete example of docs/scenarios.md (examples/checkout-scenario.yaml), loaded and driven over HTTP.

Each rule of the file is checked as the page describes it, through the test handle; the page's
code lines are checked for width here too (no meaning behind a horizontal scrollbar).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import requests

from mockcre.testing import MockcreServer

from httpkit import TIMEOUT, cre_action, cre_query, cre_upload, dm_recommend

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "checkout-scenario.yaml"
CODE_COLUMN = 80  # characters a code block of the docs' theme shows without scrolling


@pytest.fixture(scope="module")
def mock():
    with MockcreServer(scenario=str(EXAMPLE), allow_violations=True) as server:
        yield server


def query(mock, user, seq_no="1"):
    return requests.post(mock.url + "/query", json=cre_query(user, "shoes", 5, seq_no=seq_no), timeout=TIMEOUT)


def test_every_answer_waits_the_latency_profile_unless_a_rule_sets_its_own(mock):
    mock.begin_test()
    for user in ("vip", "someone", "flaky", "flaky"):
        query(mock, user)
    delays = [e.get("delay_ms") for e in mock.journal]
    assert all(15 < d < 60 for d in delays[:3]), delays  # lognormal, median 30 ms
    assert delays[3] == 5  # the item's own delay_ms replaces the profile


def test_vip_gets_the_canned_list(mock):
    mock.begin_test()
    reply = query(mock, "vip").json()
    assert reply["rec"]["shoes"] == [{"id": "sku-2", "score": "99"}, {"id": "sku-1", "score": "50"}]


def test_teapot_gets_a_raw_reply(mock):
    mock.begin_test()
    reply = query(mock, "teapot", seq_no="42")
    assert reply.status_code == 418 and reply.json() == {"teapot": True} and reply.headers["X-Why"] == "42"


def test_flaky_fails_twice_then_the_engine_answers(mock):
    mock.begin_test()
    replies = [query(mock, "flaky").json() for _ in range(4)]
    assert [r["message"] for r in replies[:2]] == ["system busy, try again", "still busy"]
    assert [r["code"] for r in replies] == ["-2", "-2", "0", "0"]
    assert {e["id"] for e in replies[2]["rec"]["shoes"]} == {"sku-1", "sku-2"}  # the fixtures


def test_the_third_other_query_fails_and_only_that_one(mock):
    mock.begin_test()
    codes = [query(mock, f"u{n}").json()["code"] for n in range(6)]
    assert codes == ["0", "0", "-2", "0", "0", "0"]
    mock.begin_test()  # counters start again with each test
    assert [query(mock, "u").json()["code"] for _ in range(3)] == ["0", "0", "-2"]


def test_dm_recommendations_alternate(mock):
    mock.begin_test()
    codes = [requests.post(mock.url + "/dm/service", json=dm_recommend("r1", "shoes", bid="shop"),
                           timeout=TIMEOUT).json()["code"] for _ in range(4)]
    assert codes == [-3, 0, -3, 0]


def test_chaos_actions_are_lost_and_others_kept(mock):
    mock.begin_test()
    body = cre_upload("2", [cre_action("buyer", "102", ["sku-1"])])
    with pytest.raises((requests.ConnectionError, requests.exceptions.ChunkedEncodingError)):
        requests.post(mock.url + "/upload", json=body, headers={"X-Chaos": "on"}, timeout=TIMEOUT)
    assert mock.state(user="buyer")["partitions"][0]["totals"]["actions"] == 0
    assert requests.post(mock.url + "/upload", json=body, timeout=TIMEOUT).json()["code"] == "0"
    assert mock.state(user="buyer")["partitions"][0]["totals"]["actions"] == 1


def test_the_clock_starts_at_the_scenarios_moment(mock):
    mock.begin_test()
    mock.clock.advance("1d")
    mock.begin_test()
    assert mock.clock() == 1767225600  # 2026-01-01T00:00:00Z


def code_lines(text: str):
    """(line number, line) of every line of a Markdown page's fenced examples; ``console`` blocks are left out,
    since they show commands as typed and what they print, which the page cannot wrap."""
    fence = language = None
    for number, line in enumerate(text.splitlines(), 1):
        marker = re.match(r"\s*(```+|~~~+)\s*(\w*)", line)
        if marker and (fence is None or marker.group(1).startswith(fence)):
            fence, language = (None, None) if fence else (marker.group(1), marker.group(2))
        elif fence and language != "console":
            yield number, line


def test_the_example_and_the_scenario_pages_code_fit_the_code_column():
    page = ROOT / "docs" / "scenarios.md"
    wide = [f"{page.name}:{n}: {len(line)}" for n, line in code_lines(page.read_text(encoding="utf-8"))
            if len(line) > CODE_COLUMN]
    wide += [f"{EXAMPLE.name}:{n}: {len(line)}" for n, line in
             enumerate(EXAMPLE.read_text(encoding="utf-8").splitlines(), 1) if len(line) > CODE_COLUMN]
    assert not wide, f"code lines wider than {CODE_COLUMN} characters: {wide}"


def test_the_width_check_finds_a_wide_line():
    """The near miss and the boundary of the check above: 80 characters fit, 81 do not; console blocks and prose
    are not examples to wrap."""
    text = ("```yaml\n" + "a" * CODE_COLUMN + "\n" + "b" * (CODE_COLUMN + 1) + "\n```\nprose " + "c" * 99 +
            "\n```console\n$ " + "d" * 99 + "\n```\n")
    assert [len(line) for _, line in code_lines(text) if len(line) > CODE_COLUMN] == [CODE_COLUMN + 1]
