"""Scenario lint (issue 4): every listed mistake is caught, on the right line, and never loaded.

Each bad scenario below marks the line its mistake is on with ``# <- HERE``; the lint must report
a problem on that line (``file:line:column: message``), and the same scenario without the mistake
must lint clean, so the problem found is the mistake and nothing else. Loading a bad scenario
(engine, ``create_app`` config, admin API) fails with the same positions and changes nothing.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest
import requests

import mockcre
from mockcre.faces.app import create_app as _app_factory
from mockcre.common.resources import scenarios_dir
from mockcre.scenarios import Problem, ScenarioEngine, ScenarioError, lint, lint_files, read
from mockcre.faces.server import ThreadedServer
from mockcre.model.store import Store

from httpkit import fixed_clock, stop_soon

NOW = 1_700_000_000
MARK = "# <- HERE"
PROBLEM_LINE = re.compile(r"^(?P<file>.+?):(?P<line>\d+):(?P<column>\d+): (?P<message>.+)$")


def create_app(config):
    return getattr(mockcre, "create_app", _app_factory)(config)


def marked_line(text: str) -> int:
    lines = [n for n, line in enumerate(text.splitlines(), 1) if MARK in line]
    assert len(lines) == 1, "a case marks exactly one line"
    return lines[0]


def write(folder: Path, text: str, name: str = "case.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def problems_of(path: Path) -> list[Problem]:
    return lint(read(str(path)), NOW)


# -- each listed mistake, on its line ----------------------------------------------------------

# (id, bad scenario, the mistake as written, words the problem must contain); FIXES below repairs each
CASES = [
    ("typo-in-then", """\
name: typo
rules:
  - when:
      endpoint: cre.query
    then:
      code: -1
      mesage: "spelled wrong"  # <- HERE
""", "mesage", ["mesage"]),
    ("typo-in-when", """\
name: typo
rules:
  - when:
      endpiont: cre.query  # <- HERE
      match: {user_id: x}
    then: {code: -1}
""", "endpiont", ["endpiont"]),
    ("typo-at-top", """\
name: typo
description: a scenario
rulez: []  # <- HERE
""", "rulez", ["rulez"]),
    ("unknown-endpoint", """\
name: endpoints
rules:
  - name: search
    when:
      endpoint: cre.serch  # <- HERE
      match: {user_id: x}
    then: {code: -1}
""", "cre.serch", ["cre.serch"]),
    ("unknown-kind", """\
name: kinds
rules:
  - when:
      kind: items  # <- HERE
      match: {uid: x}
    then: {code: -1}
""", "items", ["items"]),
    ("then-does-nothing", """\
name: idle
rules:
  - when: {endpoint: dm.service, match: {uid: x}}
    then:  # <- HERE
      msg: "a message but no code"
""", "msg", ["does nothing"]),
    ("then-empty", """\
name: idle
rules:
  - when: {endpoint: dm.service, match: {uid: x}}
    then: {}  # <- HERE
""", "{}", ["does nothing"]),
    ("regex-does-not-compile", """\
name: regex
rules:
  - when:
      match:
        uid: {regex: "user-(["}  # <- HERE
    then: {code: -1}
""", "user-([", ["regex", "compile"]),
    ("header-regex-does-not-compile", """\
name: regex
rules:
  - when:
      headers:
        X-Mode: {regex: "*oops"}  # <- HERE
    then: {code: -1}
""", "*oops", ["regex", "compile"]),
    ("regex-re2-refuses-lookahead", """\
name: regex
rules:
  - when:
      match:
        uid: {regex: "^(?!bot)u"}  # <- HERE
    then: {code: -1}
""", "^(?!bot)u", ["RE2", "lookaround"]),
    ("unreachable-after-catch-all", """\
name: dead
rules:
  - name: everything fails
    when: {endpoint: any}
    then: {code: -2}
  - name: never reached  # <- HERE
    when: {endpoint: cre.query, match: {user_id: vip}}
    then: {code: -1}
""", "any", ["unreachable"]),
    ("unreachable-after-endpoint-catch-all", """\
name: dead
rules:
  - when: {endpoint: [dm.service, dm.data]}
    then: {fault: reset}
  - when: {endpoint: dm.service, times: 1}  # <- HERE
    then: {code: -1}
""", "dm.data]", ["unreachable"]),
    ("duplicate-key", """\
name: twice
rules:
  - when: {match: {uid: a}}  # <- HERE (reported where the key first appears)
    then: {code: -1}
    when: {match: {uid: b}}
""", "when: {match: {uid: b}}", ["twice"]),
    ("recommend-on-upload-only", """\
name: canned
rules:
  - when: {endpoint: cre.upload}
    then:
      recommend: [a, b]  # <- HERE
""", "cre.upload", ["recommend"]),
    ("several-answers", """\
name: many
rules:
  - when: {endpoint: dm.service}
    then:  # <- HERE
      code: -2
      recommend: [a]
""", "recommend: [a]", ["several"]),
    ("passthrough-with-answer", """\
name: both
rules:
  - when: {endpoint: dm.service}
    then:  # <- HERE
      passthrough: true
      code: -2
""", "code: -2", ["passthrough"]),
    ("fault-unknown", """\
name: faults
rules:
  - when: {endpoint: dm.service}
    then:
      fault: explode  # <- HERE
""", "explode", ["explode"]),
    ("probability-above-one", """\
name: odds
rules:
  - when:
      endpoint: dm.service
      probability: 1.5  # <- HERE
    then: {code: -2}
""", "1.5", ["probability"]),
    ("probability-zero", """\
name: odds
rules:
  - when:
      endpoint: dm.service
      probability: 0  # <- HERE
    then: {code: -2}
""", "probability: 0 ", ["never answers"]),
    ("times-zero", """\
name: never
rules:
  - when:
      endpoint: dm.service
      times: 0  # <- HERE
    then: {code: -2}
""", "times: 0", ["times", "at least 1"]),
    ("unreachable-after-certain-probability", """\
name: dead
rules:
  - when: {endpoint: cre.query, probability: 1, after: 1}
    then: {passthrough: true, delay_ms: 5}
  - when: {endpoint: cre.query, match: {user_id: vip}}  # <- HERE
    then: {code: -1}
""", "probability: 1,", ["unreachable"]),
    ("empty-sequence", """\
name: steps
rules:
  - when: {endpoint: cre.query}
    then: []  # <- HERE
""", "[]", ["empty list", "never answers"]),
    ("cycle-without-list", """\
name: steps
rules:
  - when: {endpoint: cre.query}
    then: {code: -2}
    cycle: true  # <- HERE
""", "{code: -2}", ["cycle", "list"]),
    ("mistake-in-a-sequence-item", """\
name: steps
rules:
  - when: {endpoint: cre.query}
    then:
      - {code: -2}
      - {code: -2, recommend: [a]}  # <- HERE
""", "code: -2, recommend", ["then[1]", "several"]),
]

# Mistakes inside a field that takes one of several shapes (a matcher: scalar or operators; endpoint:
# a name or a list; delay_ms: a number or a distribution). The problem must still be on the mistake's
# line and name it, not say that the field should have been the first shape.
ALTERNATIVES = [
    ("typo-in-matcher", """\
name: typo
rules:
  - when:
      match:
        uid:
          regexp: "^a"  # <- HERE
    then: {code: -2}
""", "regexp", ["regexp"]),
    ("unknown-endpoint-in-list", """\
name: endpoints
rules:
  - when:
      match: {uid: x}
      endpoint: [cre.query, dm.servce]  # <- HERE
    then: {code: -1}
""", "dm.servce", ["dm.servce"]),
    ("delay-out-of-range", """\
name: slow
rules:
  - when: {endpoint: dm.service}
    then:
      delay_ms: {uniform: [10]}  # <- HERE
""", "[10]", ["uniform"]),
]


@pytest.mark.parametrize("case, bad, _needle, words", ALTERNATIVES, ids=[c[0] for c in ALTERNATIVES])
def test_lint_explains_mistakes_inside_alternatives(tmp_path, case, bad, _needle, words):
    problems = problems_of(write(tmp_path, bad))
    line = marked_line(bad)
    on_line = [p for p in problems if p.line == line]
    assert on_line, f"no problem on line {line}; got {[str(p) for p in problems]}"
    for word in words:
        assert word in " ".join(p.message for p in on_line), (word, [str(p) for p in problems])
    old, new = FIXES[case]
    assert problems_of(write(tmp_path, bad.replace(old, new, 1), "fixed.yaml")) == []


# the fix of each case: the mistake's text replaced by something valid (None: drop the marked line)
FIXES = {
    "typo-in-then": ("mesage", "message"), "typo-in-when": ("endpiont", "endpoint"), "typo-at-top": ("rulez", "rules"),
    "typo-in-matcher": ("regexp", "regex"), "unknown-endpoint": ("cre.serch", "cre.query"),
    "unknown-endpoint-in-list": ("dm.servce", "dm.service"), "unknown-kind": ("items", "item"),
    "then-does-nothing": ("msg:", "code: -1\n      msg:"), "then-empty": ("{}", "{code: -3}"),
    "regex-does-not-compile": ("user-([", "user-[a-z]"), "header-regex-does-not-compile": ("*oops", ".*oops"),
    "regex-re2-refuses-lookahead": ("^(?!bot)u", "^[^b]u"),
    "unreachable-after-catch-all": ("endpoint: any}", "endpoint: any, match: {uid: x}}"),
    "unreachable-after-endpoint-catch-all": ("dm.data]}", "dm.data], match: {uid: x}}"),
    "duplicate-key": ("when: {match: {uid: b}}", "name: once"),
    "recommend-on-upload-only": ("cre.upload", "cre.query"), "several-answers": ("recommend: [a]", "msg: busy"),
    "passthrough-with-answer": ("code: -2", "delay_ms: 5"), "fault-unknown": ("explode", "reset"),
    "delay-out-of-range": ("[10]", "[10, 20]"), "probability-above-one": ("1.5", "0.5"),
    "probability-zero": ("probability: 0 ", "probability: 0.01 "), "times-zero": ("times: 0", "times: 1"),
    "unreachable-after-certain-probability": ("probability: 1,", "probability: 0.99,"),
    "empty-sequence": ("[]", "[{code: -2}]"), "cycle-without-list": ("{code: -2}", "[{code: -2}, {code: -3}]"),
    "mistake-in-a-sequence-item": ("code: -2, recommend", "recommend"),
}


@pytest.mark.parametrize("case, bad, _needle, words", CASES, ids=[c[0] for c in CASES])
def test_lint_reports_the_mistake_on_its_line(tmp_path, case, bad, _needle, words):
    path = write(tmp_path, bad)
    problems = problems_of(path)
    line = marked_line(bad)
    on_line = [p for p in problems if p.line == line]
    assert on_line, f"no problem on line {line}; got {[str(p) for p in problems]}"
    text = " ".join(p.message for p in on_line)
    for word in words:
        assert word in text, (word, [str(p) for p in problems])
    assert all(p.file == str(path) and p.column >= 1 for p in problems)
    assert all(str(p).startswith(f"{path}:{p.line}:{p.column}: ") for p in problems)

    old, new = FIXES[case]
    fixed = bad.replace(old, new, 1)
    assert fixed != bad
    assert problems_of(write(tmp_path, fixed, "fixed.yaml")) == [], fixed


@pytest.mark.parametrize("case, bad, _needle, _words", CASES, ids=[c[0] for c in CASES])
def test_loading_a_bad_scenario_fails_with_the_same_line(tmp_path, case, bad, _needle, _words):
    path = write(tmp_path, bad)
    engine = ScenarioEngine(Store(), fixed_clock())
    with pytest.raises(ScenarioError) as info:
        engine.load(str(path))
    line = marked_line(bad)
    assert any(p.startswith(f"{path}:{line}:") for p in info.value.problems), info.value.problems
    assert len(engine) == 0


def test_column_points_at_the_key(tmp_path):
    bad = CASES[0][1]
    problems = problems_of(write(tmp_path, bad))
    line = marked_line(bad)
    typo = next(p for p in problems if p.line == line)
    assert typo.column == bad.splitlines()[line - 1].index("mesage") + 1
    assert "did you mean 'message'" in typo.message


def test_problems_of_one_file_are_all_reported_in_line_order(tmp_path):
    text = """\
name: many
rules:
  - when: {endpoint: cre.serch}
    then: {code: -1}
  - when: {match: {uid: {regex: "(("}}}
    then: {code: -2}
  - when: {endpoint: dm.service}
    then: {}
"""
    problems = problems_of(write(tmp_path, text))
    assert [p.line for p in problems] == sorted(p.line for p in problems)
    assert {3, 5, 8} <= {p.line for p in problems}


def test_a_clean_scenario_has_no_problems(tmp_path):
    text = """\
name: clean
description: every feature once
seed: 1
strict: false
accounts:
  cre: {tokens: [t1]}
  dm: {bids: {b1: s1}}
fixtures:
  items:
    - {busi_id: "1", test_id: "2", item_id: "a", pool_id: "p1"}
    - {bid: b1, item_id: "d1", pool_id: "p1"}
rules:
  - name: header
    when: {headers: {X-Mode: {regex: "^fail"}}, probability: 0.5}
    then: {code: -2, msg: "busy {{ request.seq_no }}", delay_ms: {uniform: [1, 5]}}
  - when: {endpoint: [cre.query, dm.service], match: {user_id: {in: [a, b]}, request_num: {gte: 1}}, state: Started}
    then: {recommend: [x, {id: y, score: "9"}], apply_request_num: false, next_state: Two}
  - when: {endpoint: dm.data, every: 2, after: 1, times: 2}
    then: {fault: empty}
  - when: {kind: item, match: {item_id: {contains: tmp}, "data[*].uid": {present: false}}}
    then: {status: 503, headers: {Retry-After: "1"}, body: {error: busy}}
  - when: {endpoint: any}
    then: {passthrough: true, delay_ms: {lognormal: {median: 5, sigma: 0.5}}}
"""
    assert problems_of(write(tmp_path, text)) == []


# -- body_file stays inside the scenario's folder ---------------------------------------------

def _body_file_case(folder: Path, target: str) -> str:
    return f"""\
name: files
rules:
  - when: {{endpoint: cre.query}}
    then:
      body_file: {target}  # <- HERE
"""


@pytest.mark.parametrize("target", ["../secret.json", "/etc/hostname", "sub/../../secret.json", "link/secret.json",
                                    "missing.json"])
def test_body_file_outside_the_folder_or_missing(tmp_path, target):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (tmp_path / "secret.json").write_text('{"secret": true}', encoding="utf-8")
    (folder / "sub").mkdir()
    (folder / "link").symlink_to(tmp_path, target_is_directory=True)
    text = _body_file_case(folder, target)
    path = write(folder, text)
    problems = problems_of(path)
    assert [p.line for p in problems] == [marked_line(text)], [str(p) for p in problems]
    assert "body_file" in problems[0].message
    with pytest.raises(ScenarioError):
        ScenarioEngine(Store(), fixed_clock()).load(str(path))


def test_body_file_inside_the_folder_is_fine(tmp_path):
    (tmp_path / "bodies").mkdir()
    (tmp_path / "bodies" / "ok.json").write_text("{}", encoding="utf-8")
    assert problems_of(write(tmp_path, _body_file_case(tmp_path, "bodies/ok.json"))) == []


def test_body_file_needs_a_file_backed_scenario():
    engine = ScenarioEngine(Store(), fixed_clock())
    with pytest.raises(ScenarioError) as info:
        engine.load({"name": "m", "rules": [{"when": {}, "then": {"body_file": "x.json"}}]})
    assert "body_file" in info.value.problems[0]


# -- YAML is data only -------------------------------------------------------------------------

PYTHON_TAGS = [
    '!!python/object/apply:os.system ["touch {marker}"]',
    '!!python/object/new:os.system ["touch {marker}"]',
    "!!python/name:os.system",
    '!!python/object/apply:subprocess.check_output [["touch", "{marker}"]]',
    "!!python/module:os",
]


@pytest.mark.parametrize("tag", PYTHON_TAGS)
def test_python_tags_are_rejected_safely(tmp_path, tag):
    marker = tmp_path / "pwned"
    text = f"name: tagged\ndescription: {tag.format(marker=marker)}  {MARK}\n"
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        read(str(path))
    assert info.value.problems[0].startswith(f"{path}:2:"), info.value.problems
    assert "python" in info.value.problems[0]
    with pytest.raises(ScenarioError):
        ScenarioEngine(Store(), fixed_clock()).load(text)
    with pytest.raises(ScenarioError):
        create_app({"scenarios": [str(path)]})
    assert not marker.exists()


def test_python_tag_through_the_admin_api_is_refused(tmp_path):
    marker = tmp_path / "pwned"
    server = ThreadedServer(create_app({"clock": fixed_clock()})).start()
    try:
        text = f'name: tagged\ndescription: !!python/object/apply:os.system ["touch {marker}"]\n'
        resp = requests.post(server.url + "/__admin/scenarios", data=text.encode(), timeout=10)
        assert resp.status_code == 400, resp.text
        assert server.service.scenarios.describe() == []
    finally:
        stop_soon(server)
    assert not marker.exists()


def test_lint_files_gives_the_position_of_a_yaml_error(tmp_path):
    """``lint_files`` (behind ``mockcre scenario lint``) must keep the YAML error's own line and column."""
    path = write(tmp_path, 'name: tagged\ndescription: !!python/object/apply:os.system ["true"]\n')
    problems = lint_files([str(path)], NOW)
    assert len(problems) == 1
    assert (problems[0].file, problems[0].line, problems[0].column) == (str(path), 2, 14), str(problems[0])
    assert str(problems[0]).count(str(path)) == 1


def test_yaml_syntax_error_has_its_position(tmp_path):
    text = "name: broken\nrules:\n  - when: {endpoint: dm.service\n    then: {code: -1}\n"
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        read(str(path))
    found = PROBLEM_LINE.match(info.value.problems[0])
    assert found and found["file"] == str(path) and int(found["line"]) in (3, 4), info.value.problems
    assert "YAML" in found["message"]


@pytest.mark.parametrize("text, words", [
    ("- name: a list\n", "mapping"),
    ("just text\n", "mapping"),
    ("description: no name\nrules: []\n", "name"),
    ("name: ''\n", "name"),
])
def test_not_a_scenario(tmp_path, text, words):
    problems = problems_of(write(tmp_path, text))
    assert problems and words in " ".join(p.message for p in problems)


# -- fixtures are checked like reports -----------------------------------------------------------

BAD_FIXTURES = [
    ("cre-item-missing-id", """\
name: bad-fixture
fixtures:
  items:
    - {busi_id: "1", test_id: "2", item_id: "ok", pool_id: "1"}
    - {busi_id: "1", test_id: "2", pool_id: "1"}  # <- HERE
"""),
    ("cre-action-unknown-action", """\
name: bad-fixture
fixtures:
  actions:
    - uid_type: "5"
      uid: "u1"
      oper_time: "1700000000"
      source: "0"
      test_id: "2"
      rule_id: "3"
      action_id: "999"  # <- HERE
      item_action: [{item_id: a}]
"""),
    ("dm-item-bad-publish", """\
name: bad-fixture
fixtures:
  items:
    - {bid: b1, item_id: "x", pool_id: "p"}
    - bid: b1
      item_id: "y"
      publish: "yes"  # <- HERE
"""),
    ("dm-action-bad-type", """\
name: bad-fixture
fixtures:
  actions:
    - {bid: b1, uid: u, uid_type: 1, item_id: "x", scene_id: "1", source: tx, trace_id: t, action_time: "1700000000",
       action_type: 9}  # <- HERE
"""),
    ("fixture-into-unknown", """\
name: bad-fixture
fixtures:
  into: [cre, prod]  # <- HERE
  items:
    - {busi_id: "1", test_id: "2", item_id: "ok", pool_id: "1"}
"""),
]


@pytest.mark.parametrize("case, text", BAD_FIXTURES, ids=[c[0] for c in BAD_FIXTURES])
def test_bad_fixture_fails_the_load_with_its_position(tmp_path, case, text):
    path = write(tmp_path, text)
    line = marked_line(text)
    problems = problems_of(path)
    assert any(p.line == line for p in problems), [str(p) for p in problems]
    store = Store()
    engine = ScenarioEngine(store, fixed_clock())
    with pytest.raises(ScenarioError) as info:
        engine.load(str(path))
    assert any(p.startswith(f"{path}:{line}:") for p in info.value.problems), info.value.problems
    assert len(engine) == 0 and store.partitions == {}  # nothing half-loaded
    with pytest.raises(ScenarioError):
        create_app({"scenarios": [str(path)], "clock": fixed_clock()})


def test_bad_fixture_message_names_the_fixture_not_an_internal_batch(tmp_path):
    """A cre fixture's problem should name it as written (items[2]), not the internal upload body's data[1]."""
    text = """\
name: mixed
fixtures:
  items:
    - {bid: b1, item_id: "x", pool_id: "p"}
    - {busi_id: "1", test_id: "2", item_id: "ok", pool_id: "1"}
    - {busi_id: "1", test_id: "2", pool_id: "1"}
"""
    problems = problems_of(write(tmp_path, text))
    assert [p.line for p in problems] == [6]
    assert "data[" not in problems[0].message, problems[0].message


def test_strict_scenario_checks_its_fixtures_strictly(tmp_path):
    record = '{busi_id: "1", test_id: "2", item_id: "ok", pool_id: "1", not_documented: "x"}'
    lenient = f"name: f\nfixtures:\n  items:\n    - {record}\n"
    assert problems_of(write(tmp_path, lenient)) == []
    problems = problems_of(write(tmp_path, "strict: true\n" + lenient, "strict.yaml"))
    assert [p.line for p in problems] == [5]


# -- the loaders refuse what lint refuses ------------------------------------------------------

def test_admin_api_reports_problems_with_lines(tmp_path):
    server = ThreadedServer(create_app({"clock": fixed_clock()})).start()
    try:
        resp = requests.post(server.url + "/__admin/scenarios", data=CASES[0][1].encode(), timeout=10)
        assert resp.status_code == 400
        problems = resp.json()["problems"]
        assert any(":7:" in p and "mesage" in p for p in problems), problems
        assert server.service.scenarios.describe() == []
    finally:
        stop_soon(server)


def test_create_app_refuses_a_bad_scenario(tmp_path):
    text = next(bad for case, bad, _, _ in CASES if case == "unknown-endpoint")
    path = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        create_app({"scenarios": [str(path)]})
    assert any(p.startswith(f"{path}:{marked_line(text)}:") for p in info.value.problems), info.value.problems


def test_bundled_scenarios_lint_clean():
    files = sorted(scenarios_dir().glob("*.yaml"))
    assert {f.name for f in files} >= {"shop.yaml", "news-feed.yaml", "errors.yaml", "flaky.yaml", "cold-start.yaml",
                                       "strict-auth.yaml"}
    started = time.perf_counter()
    assert lint_files(files, time.time()) == []
    assert time.perf_counter() - started < 10


def test_unreachable_is_not_flagged_for_other_endpoints(tmp_path):
    text = """\
name: fine
rules:
  - when: {endpoint: dm.service}
    then: {code: -2}
  - when: {endpoint: cre.query}
    then: {code: -1}
  - when: {endpoint: dm.service}
    then: {passthrough: true, delay_ms: 5}
  - when: {endpoint: dm.data}
    then: {code: -1}
"""
    problems = problems_of(write(tmp_path, text))
    assert [p.line for p in problems] == [7], [str(p) for p in problems]  # only the third rule is dead
    assert os.path.basename(problems[0].file) == "case.yaml"


# -- counters: earlier rules with counters hide nothing; the old counting gets a warning ----------

@pytest.mark.parametrize("counter", ["times: 1", "after: 2", "every: 2", "probability: 0.99"])
def test_an_earlier_rule_with_a_counter_hides_no_later_rule(tmp_path, counter):
    text = f"""\
name: counted
rules:
  - when: {{endpoint: cre.query, {counter}}}
    then: {{code: -2}}
  - when: {{endpoint: cre.query}}
    then: {{code: -3}}
"""
    assert problems_of(write(tmp_path, text)) == []


@pytest.mark.parametrize("when, said", [
    ("after: 3, times: 3", ["3rd to the 5th", "as the 3rd only", "times: 1"]),
    ("after: 2, times: 4", ["2nd to the 5th", "2nd to the 4th", "times: 3"]),
    ("every: 2, times: 4", ["2nd, 4th", "up to the 8th", "stopped at the 4th", "times: 2"]),
])
def test_the_old_counting_gets_a_warning_that_says_what_the_rule_now_means(tmp_path, when, said):
    path = write(tmp_path, f"name: old\nrules:\n  - when: {{endpoint: cre.query, {when}}}\n    then: {{code: -2}}\n")
    problems = problems_of(path)
    assert [p.severity for p in problems] == ["warning"] and problems[0].line == 3, problems
    for words in said:
        assert words in problems[0].message, (words, problems[0].message)
    assert str(problems[0]).startswith(f"{path}:3:") and ": warning: " in str(problems[0])
    ScenarioEngine(Store(), fixed_clock()).load(str(path))  # a warning does not stop the load


@pytest.mark.parametrize("when", ["after: 3, times: 1", "after: 3, times: 2", "every: 2, times: 2", "every: 3, times: 1",
                                  "times: 5", "after: 1, times: 4"])
def test_counters_written_for_the_new_counting_lint_clean(tmp_path, when):
    """The near misses of the warning: a file the old counting made dead (times < after) means what it says now."""
    path = write(tmp_path, f"name: new\nrules:\n  - when: {{endpoint: cre.query, {when}}}\n    then: {{code: -2}}\n")
    assert problems_of(path) == []
