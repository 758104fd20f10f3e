"""``mockcre report`` as a user runs it: a subprocess reading a journal file or a running server.

Data goes over real HTTP into servers with ``journal_file`` set (the Integration helper of
test_quality plants one problem at a time); the command's output formats, exit codes
(0 clean, 1 at or above --fail-on, 2 unreadable input), colour only on a terminal, and a
self-contained HTML page that escapes what clients sent.
"""

from __future__ import annotations

import json
import os
import pty
import re
import select
import subprocess
import sys

import pytest

from mockcre import create_app
from mockcre.common.resources import scenarios_dir
from mockcre.faces.server import ThreadedServer

from httpkit import dm_action, dm_recommend, fixed_clock, free_port, serve  # noqa: F401
from test_quality import CASES, Integration

ENV = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}


def report(*args, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mockcre", "report", *args], capture_output=True, text=True,
                          timeout=60, env=env or ENV)


@pytest.fixture
def journaled(serve, tmp_path):  # noqa: F811
    """``make(case=None, bad=True)``: a server writing its journal to a file, optionally with one case played."""

    def make(name: str | None = None, bad: bool = True):
        path = tmp_path / f"journal-{len(list(tmp_path.iterdir()))}.jsonl"
        s = Integration(serve({"journal_file": str(path)}))
        s.path = str(path)
        if name:
            CASES[name][1](s, bad)
        return s

    return make


# -- exit codes --------------------------------------------------------------------------------

@pytest.mark.parametrize("name, fail_on, code", [
    (None, "error", 0),  # nothing sent: no findings
    ("click-without-exposure/cre", "error", 0),  # warnings only
    ("click-without-exposure/cre", "warning", 1),
    ("click-without-exposure/cre", "never", 0),
    ("cre-scene-ids-unknown", "error", 1),  # an error finding
    ("cre-scene-ids-unknown", "warning", 1),
    ("cre-scene-ids-unknown", "never", 0),
    ("item-describe-missing", "warning", 0),  # information never fails
])
def test_exit_code_follows_the_worst_finding_and_fail_on(journaled, name, fail_on, code):
    s = journaled(name)
    result = report("--journal", s.path, "--format", "json", "--fail-on", fail_on)
    assert result.returncode == code, result.stderr
    rules = {f["rule"] for f in json.loads(result.stdout)["findings"]}
    assert rules == ({CASES[name][0]} if name else set())


def test_the_default_fail_on_is_error(journaled):
    assert report("--journal", journaled("dm-scene-unrequested").path).returncode == 1
    assert report("--journal", journaled("item-tags-missing").path).returncode == 0


@pytest.mark.parametrize("content, message", [
    (None, "No such file"),
    ('{"seq": 1}\n\n{"seq": 2, "kind": "item"\n', "line 3 is not JSON"),
    ('{"seq": 1}\n[1, 2]\n', "line 2 is not a journal entry"),
    ('{"seq": 1}\n"text"\n', "line 2 is not a journal entry"),
])
def test_an_unreadable_journal_exits_2_and_says_why(tmp_path, content, message):
    path = tmp_path / "journal.jsonl"
    if content is not None:
        path.write_text(content, encoding="utf-8")
    result = report("--journal", str(path))
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.startswith("mockcre report: cannot read the journal: ") and message in result.stderr
    assert "Traceback" not in result.stderr


def test_an_unreachable_or_refusing_server_exits_2():
    result = report("--url", f"http://127.0.0.1:{free_port()}")
    assert result.returncode == 2 and "cannot read http://127.0.0.1:" in result.stderr
    with ThreadedServer(create_app({"admin_token": "s3cret"})) as srv:
        refused = report("--url", srv.url)
        assert refused.returncode == 2 and "401" in refused.stderr
        allowed = report("--url", srv.url, "--admin-token", "s3cret", "--format", "json")
        assert allowed.returncode == 0 and json.loads(allowed.stdout)["findings"] == []


# -- the same report everywhere ------------------------------------------------------------------

def test_journal_url_and_admin_endpoint_give_the_same_report(journaled):
    s = journaled()
    s.cre_catalogue()
    s.cre_items(s.cre_item(7, drop=["tags"]))  # a warning
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    s.cre_expose("u1", ans, rule_id="200723")  # an error
    s.cre_act("u1", "102", ans.ids[0], ans, trace="elsewhere")  # a warning
    expected = s.report()
    assert {f["rule"] for f in expected["findings"]} == {"item-tags-missing", "cre-scene-ids-unknown",
                                                          "click-without-exposure"}
    from_journal = report("--journal", s.path, "--format", "json")
    from_url = report("--url", s.c.url, "--format", "json")
    assert from_journal.returncode == from_url.returncode == 1
    assert json.loads(from_journal.stdout) == json.loads(from_url.stdout) == expected


def test_a_journal_holds_only_what_was_sent_so_fixtures_are_not_in_it(serve, tmp_path):  # noqa: F811
    """news-feed's expired articles are fixtures: the server's report shows them (from its store), a journal does not."""
    path = tmp_path / "news.jsonl"
    s = Integration(serve({"clock": fixed_clock(1_767_830_800), "journal_file": str(path),
                           "scenarios": [str(scenarios_dir() / "news-feed.yaml")]}))
    reply = s.post("/dm/service", dm_recommend(uid="r001", bid="news", pool_id="tech", scene_id="feed"))
    ids = [e["item"] for e in reply["data"]]
    s.post("/dm/data", dm_action("r001", 1, ids, bid="news", scene_id="feed", trace_id="tr-9", action_time="1767830790"))
    assert [f["rule"] for f in s.report()["findings"]] == ["item-expired-on-arrival"]
    result = report("--journal", str(path), "--format", "json")
    rules = {f["rule"] for f in json.loads(result.stdout)["findings"]}
    assert "item-expired-on-arrival" not in rules
    assert {"action-unknown-item", "pool-empty"} <= rules  # the catalogue never went over HTTP


# -- text ----------------------------------------------------------------------------------------

def test_text_names_scores_findings_and_examples_without_colour_when_piped(journaled):
    s = journaled("cre-scene-ids-unknown")
    result = report("--url", s.c.url)
    assert result.returncode == 1
    out = result.stdout
    assert out.startswith("mockcre data-quality report — overall ")
    assert "actions 80/100" in out  # 100 - 40 x 3 of 6 actions
    assert "ERROR   cre-scene-ids-unknown  ×3" in out and "document: test_id/rule_id：推荐场景必须填写" in out
    assert re.search(r"- #5 cre/prod rule_id '200723' in 3 actions", out)
    assert "\033[" not in out


def _on_a_terminal(args: list, env: dict) -> tuple[int, str]:
    """Run ``mockcre report`` with its stdout on a pseudo-terminal; returns the exit code and what it printed."""
    master, slave = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "mockcre", "report", *args], stdout=slave, stderr=subprocess.PIPE,
                            env=env)
    os.close(slave)
    chunks = []
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            data = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(master)
    return proc.wait(timeout=30), b"".join(chunks).decode("utf-8", "replace")


def test_text_is_coloured_on_a_terminal_unless_no_color(journaled):
    s = journaled("cre-scene-ids-unknown")
    s.cre_items(s.cre_item(8, drop=["tags"]))  # and a warning
    code, out = _on_a_terminal(["--journal", s.path], ENV)
    assert code == 1
    assert "\033[31mERROR   cre-scene-ids-unknown" in out and "\033[33mWARNING item-tags-missing" in out
    code, out = _on_a_terminal(["--journal", s.path], {**ENV, "NO_COLOR": "1"})
    assert code == 1 and "\033[" not in out and "ERROR   cre-scene-ids-unknown" in out


# -- HTML ----------------------------------------------------------------------------------------

EXTERNAL = re.compile(r"https?://|<script|<link|<iframe|<img|\bsrc\s*=|@import|url\(", re.IGNORECASE)


def test_html_is_one_self_contained_page_that_escapes_what_clients_sent(journaled):
    s = journaled()
    s.cre_catalogue()
    s.cre_items(s.cre_item(9, drop=["tags"]) | {"item_id": "<script>alert(1)</script>"})
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    s.cre_expose("u1", ans)
    s.cre_act("u1", "102", ans.ids[0], ans)
    for source in (["--journal", s.path], ["--url", s.c.url]):
        result = report(*source, "--format", "html")
        page = result.stdout
        assert result.returncode == 0 and page.lstrip().lower().startswith("<!doctype html>")
        assert "<style>" in page and page.rstrip().endswith("</html>")
        assert EXTERNAL.search(page) is None, EXTERNAL.search(page)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
        assert "item-tags-missing" in page and "<svg" in page  # the finding, and the actions-per-hour chart
