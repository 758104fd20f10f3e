"""The pytest plugin, as a user meets it: small test files run by ``pytester`` against the installed plugin."""

from __future__ import annotations

import re
import statistics
import time
from pathlib import Path

import hypothesis  # noqa: F401
import pytest
import requests  # noqa: F401

import mockcre.faces.admin  # noqa: F401
import mockcre.faces.app  # noqa: F401
from mockcre.common import __version__
from mockcre.testing import MockcreServer

# The modules above are imported once here: pytester's in-process runs then find them loaded
# instead of importing (and assertion-rewriting) them again for every run.

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "test_example_usage.py"

# What every user test file below starts with: a tiny client, the "code under test".
CLIENT = '''
import re
import pytest
import requests

TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"

def upload(url, *item_ids, pool="p1", **extra):
    data = [{"busi_id": "1", "test_id": "1", "item_id": i, "pool_id": pool, "describe": i, **extra} for i in item_ids]
    body = {"version": "1", "seq_no": "1", "data_type": "1", "token": TOKEN, "data": data}
    return requests.post(url + "/upload", json=body, timeout=5).json()

def click(url, uid, item_id):
    record = {"uid_type": "2", "uid": uid, "oper_time": "1700000000", "source": "1", "action_id": "102",
              "busi_id": "1", "item_action": [{"item_id": item_id}]}
    body = {"version": "1", "seq_no": "2", "data_type": "2", "token": TOKEN, "data": [record]}
    return requests.post(url + "/upload", json=body, timeout=5).json()

def query(url, uid, pool="p1"):
    body = {"seq_no": "3", "token": TOKEN, "proj_id": "1", "scn_id": "1", "uid_type": "2", "user_id": uid,
            "pool_id": pool}
    return requests.post(url + "/query", json=body, timeout=5).json()

def bad_upload(url):
    body = {"version": "1", "seq_no": "1", "data_type": "1", "token": TOKEN, "data": [{"item_id": "x"}]}
    return requests.post(url + "/upload", json=body, timeout=5).json()
'''


def run(pytester, *args, subprocess: bool = False):
    """Run pytest on the user's files; without unrelated plugins of this environment that only add noise."""
    args = (*args, "-p", "no:benchmark")
    return pytester.runpytest_subprocess(*args) if subprocess else pytester.runpytest(*args)


def report_part(out: str) -> str:
    """The run's output before pytest's own recap: under CI (``CI`` set) the short test summary repeats
    each failure's whole message, which is pytest's choice, not a second report."""
    return out.partition("short test summary info")[0]


def make_tests(pytester, source: str, name: str = "test_user"):
    return pytester.makepyfile(**{name: CLIENT + source})


def test_a_passing_test(pytester):
    make_tests(pytester, '''
def test_upload_and_query(mockcre):
    assert upload(mockcre.url, "a1", "a2")["code"] == "0"
    reply = query(mockcre.url, "u1")
    assert sorted(e["id"] for e in reply["rec"]["p1"]) == ["a1", "a2"]
    mockcre.assert_called("cre.upload", item_id="a1")
    mockcre.assert_called("/query", times=1, user="u1")
    mockcre.assert_no_violations()
    assert [e["endpoint"] for e in mockcre.journal] == ["cre.upload", "cre.query"]
    assert len(mockcre.requests("cre.upload")) == 1 and mockcre.requests(item="a2")[0]["kind"] == "item"
    [part] = mockcre.state()["partitions"]
    assert part["pools"]["p1"]["items"] == ["a1", "a2"]
''')
    result = run(pytester)
    result.assert_outcomes(passed=1)


def test_a_contract_breaking_request_fails_the_test_at_teardown(pytester):
    make_tests(pytester, '''
def test_sends_a_bad_body(mockcre):
    reply = bad_upload(mockcre.url)
    assert reply["code"] == "-1"  # the client ignores the error: the test body passes
''')
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines([
        "*ERROR at teardown of test_sends_a_bad_body*",
        "mockcre: the code under test sent 1 request that breaks the contract (3 violations):",
        "*#1 cre.upload (item)*",
        "*/data/0/busi_id: data[[]0[]].busi_id: required field is missing*",
        "*/data/0/test_id: *required field is missing*",
        "*/data/0/pool_id: *required field is missing*",
        "*@pytest.mark.mockcre(allow_violations=True)*",
    ])
    assert "Traceback" not in result.stdout.str()
    out = result.stdout.str()
    assert report_part(out).count("/data/0/busi_id: data[0].busi_id") == 1, out  # once, not again "during handling"
    assert "During handling of the above exception" not in out


def test_a_test_that_also_fails_in_its_body_prints_the_report_once(pytester):
    """Near miss of the above: the body fails too; the teardown report is still printed once."""
    make_tests(pytester, '''
def test_sends_a_bad_body_and_fails(mockcre):
    bad_upload(mockcre.url)
    assert False, "the test's own failure"
''')
    result = run(pytester, "-rA")
    result.assert_outcomes(failed=1, errors=1)
    out = result.stdout.str()
    assert report_part(out).count("/data/0/busi_id: data[0].busi_id: required field is missing") == 1, out
    assert out.count("the test's own failure") >= 1


def test_allow_violations_lets_a_test_send_bad_requests(pytester):
    make_tests(pytester, '''
@pytest.mark.mockcre(allow_violations=True)
def test_client_handles_rejection(mockcre):
    assert bad_upload(mockcre.url)["code"] == "-1"
    paths = [v["path"] for _, v in mockcre.violations()]
    assert paths == ["/data/0/busi_id", "/data/0/test_id", "/data/0/pool_id"]
    with pytest.raises(AssertionError, match="breaks? the contract"):
        mockcre.assert_no_violations()
''')
    run(pytester).assert_outcomes(passed=1)


def test_violations_are_kept_across_a_reset_in_the_middle_of_a_test(pytester):
    make_tests(pytester, '''
def test_resets_after_the_bad_call(mockcre):
    bad_upload(mockcre.url)
    mockcre.reset()
    assert mockcre.journal == []
''')
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(["*/data/0/pool_id*"])


def test_assert_called_passes_and_fails_with_a_near_miss_report(pytester):
    make_tests(pytester, '''
def test_called(mockcre):
    upload(mockcre.url, "a1", "a2")
    click(mockcre.url, "u1", "a1")
    click(mockcre.url, "u1", "a2")
    assert len(mockcre.assert_called("cre.upload", times=2, kind="action", user="u1")) == 2
    mockcre.assert_called("cre.upload", item=re.compile("^a"), data_type=1)  # "1" and 1 are alike
    mockcre.assert_called("any", uid=lambda uid: uid.startswith("u"))
    mockcre.assert_called("cre.upload", item_action__item_id="a2", code="0")
    mockcre.assert_called("cre.query", times=0)

def test_not_called(mockcre):
    upload(mockcre.url, "a1", "a2", pool="shoes")
    click(mockcre.url, "u1", "a1")
    mockcre.assert_called("cre.upload", item_id="a9", pool_id="shoes")

def test_called_too_often(mockcre):
    click(mockcre.url, "u1", "a1")
    click(mockcre.url, "u1", "a1")
    mockcre.assert_called("cre.upload", times=1, user="u1")

def test_nothing_received(mockcre):
    mockcre.assert_called("dm.service")

def test_unknown_endpoint(mockcre):
    mockcre.assert_called("cre.uplaod")
''')
    result = run(pytester)
    result.assert_outcomes(passed=1, failed=4)
    out = result.stdout.str()
    result.stdout.fnmatch_lines([
        "*AssertionError: assert_called('cre.upload', item_id='a9', pool_id='shoes'): "
        "expected at least 1 matching request, got 0.",
        "*Received 2 requests; the closest that did not match:",
        "*#* cre.upload (item), items a1, a2, reply code '0': 1 of 3 criteria differ",
        "*expected*| received",
        "*endpoint: cre.upload*| cre.upload",
        "*item_id: 'a9'*| 'a1', 'a2'*<<<<< differs",
        "*pool_id: 'shoes'*| 'shoes'",
        "*#* cre.upload (action), user u1, items a1, reply code '0': 2 of 3 criteria differ",
    ])
    assert re.search(r"item_id: 'a9' +\| 'a1', 'a2' +<<<<< differs", out)
    assert re.search(r"pool_id: 'shoes' +\| \(absent\) +<<<<< differs", out)
    result.stdout.fnmatch_lines([
        "*assert_called('cre.upload', user='u1'): expected exactly 1 matching request, got 2.",
        "*Matching requests:", "*#* cre.upload (action), user u1*", "*#* cre.upload (action), user u1*"])
    result.stdout.fnmatch_lines(["*mockcre received no requests at all since the test began "
                                 "(is the client pointed at http://127.0.0.1:*?)"])
    result.stdout.fnmatch_lines(["*ValueError: unknown endpoint 'cre.uplaod'; did you mean cre.upload*"])


def test_tests_are_isolated(pytester):
    """What one test stores, asks or loads never reaches the next, in either order of running."""
    make_tests(pytester, '''
@pytest.mark.parametrize("round", [1, 2, 3])
def test_leaves_things_behind(mockcre, round):
    assert mockcre.journal == [] and mockcre.state()["partitions"] == []
    assert mockcre.service.scenarios.describe() == []
    upload(mockcre.url, "a1")
    click(mockcre.url, "u1", "a1")
    mockcre.load_scenario({"name": f"leftover-{round}",
                           "rules": [{"when": {"endpoint": "cre.query"}, "then": {"code": -2}}]})
    assert query(mockcre.url, "u1")["code"] == "-2"
    mockcre.service.config.strict = True

def test_starts_empty(mockcre):
    assert mockcre.journal == []
    assert mockcre.state() == {"partitions": [], "offset": 0, "limit": None, "next_offset": None}
    assert mockcre.service.scenarios.describe() == [] and mockcre.service.config.strict is False
    assert query(mockcre.url, "u1")["code"] == "0"  # no leftover rule answers
''')
    run(pytester, "-p", "no:randomly").assert_outcomes(passed=4)


def test_scenario_marker_finds_files_next_to_the_test_in_dirs_and_bundled(pytester):
    rules = "rules:\n  - when: {endpoint: cre.query}\n    then: {code: -2, msg: busy}\n"
    pytester.path.joinpath("busy.yaml").write_text("name: busy\n" + rules, encoding="utf-8")
    shared = pytester.mkdir("shared")
    shared.joinpath("outage.yaml").write_text("name: outage\n" + rules.replace("-2", "-3"), encoding="utf-8")
    make_tests(pytester, '''
@pytest.mark.mockcre(scenario="busy.yaml")
def test_next_to_the_test_file(mockcre):
    assert query(mockcre.url, "u1")["code"] == "-2"
    assert [s["name"] for s in mockcre.service.scenarios.describe()] == ["busy"]

@pytest.mark.mockcre(scenario="outage")
def test_in_a_scenario_dir(mockcre):
    assert query(mockcre.url, "u1")["code"] == "-3"

@pytest.mark.mockcre(scenario="shop.yaml")
def test_bundled_by_bare_name(mockcre):
    assert query(mockcre.url, "u1", pool="apparel")["rec"]["apparel"]

@pytest.mark.mockcre(scenario="shop")
def test_bundled_again_without_suffix(mockcre):
    assert mockcre.state(partition="cre:prod")["partitions"][0]["totals"]["items"] > 100

@pytest.mark.mockcre(scenario="busy.yaml")
def test_marker_without_naming_the_fixture():
    pass

def test_no_marker_no_scenario(mockcre):
    assert mockcre.service.scenarios.describe() == []

@pytest.mark.mockcre(scenario="missing.yaml")
def test_missing_scenario(mockcre):
    pass

@pytest.mark.mockcre(scenario={"name": "broken", "rules": [{"when": {"endpoint": "nowhere"}, "then": {}}]})
def test_invalid_scenario(mockcre):
    pass

@pytest.mark.mockcre(scenaro="busy.yaml")
def test_misspelt_argument(mockcre):
    pass
''')
    result = run(pytester, "--mockcre-scenario-dir", "shared", "-p", "no:randomly")
    result.assert_outcomes(passed=6, errors=3)
    result.stdout.fnmatch_lines([
        "*@pytest.mark.mockcre(scenario='missing.yaml'): no scenario 'missing.yaml'; looked in*",
        "*@pytest.mark.mockcre(scenario={'name': 'broken'*invalid scenario:*",
        "*@pytest.mark.mockcre: unknown argument(s) scenaro; known: scenario, strict, allow_violations*",
    ])


def test_strict_marker_and_option(pytester):
    # lenient accepts a field outside the cre item table (with a warning); strict rejects it
    make_tests(pytester, '''
def lenient_only(url):
    body = {"version": "1", "seq_no": "1", "data_type": "1", "token": TOKEN,
            "data": [{"busi_id": "1", "test_id": "1", "item_id": "a1", "pool_id": "p1", "rule_id": "7"}]}
    return requests.post(url + "/upload", json=body, timeout=5).json()

def test_default(mockcre, request):
    strict = request.config.getoption("mockcre_strict")
    assert lenient_only(mockcre.url)["code"] == ("-1" if strict else "0")
    with pytest.raises(AssertionError, match="contract violation"):
        mockcre.assert_no_violations(warnings=True)

@pytest.mark.mockcre(strict=True)
def test_strict(mockcre):
    assert lenient_only(mockcre.url)["code"] == "-1"

@pytest.mark.mockcre(strict=False)
def test_lenient(mockcre):
    assert lenient_only(mockcre.url)["code"] == "0"
''')
    result = run(pytester, "-p", "no:randomly")
    result.assert_outcomes(passed=3, errors=1)  # test_strict's request broke the strict contract
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_strict*", "*/data/0/rule_id*"])
    result = run(pytester, "-p", "no:randomly", "--mockcre-strict")
    result.assert_outcomes(passed=3, errors=2)  # default and strict; the marker's strict=False wins


def test_header_and_verbose_summary(pytester):
    make_tests(pytester, '''
def test_one(mockcre):
    upload(mockcre.url, "a1")
    query(mockcre.url, "u1")

@pytest.mark.mockcre(allow_violations=True)
def test_two(mockcre):
    bad_upload(mockcre.url)
''')
    result = run(pytester, "-v")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines([f"mockcre {__version__}: server http://127.0.0.1:* (starts when a test uses it)"])
    result.stdout.fnmatch_lines([
        "*- mockcre -*",
        f"mockcre {__version__}: 3 requests received, 1 with violations (3 errors, 0 warnings)",
        "*endpoint*requests*with violations*errors*warnings",
        "*cre.query*1*0*0*0",
        "*cre.upload*2*1*3*0",
    ])
    quiet = run(pytester)
    assert "requests received" not in quiet.stdout.str()


def test_no_server_starts_when_no_test_uses_it(pytester):
    pytester.makepyfile(test_plain="def test_plain():\n    assert True\n")
    result = run(pytester, "-v")
    result.assert_outcomes(passed=1)
    assert "requests received" not in result.stdout.str()


@pytest.mark.slow
def test_xdist_gives_each_worker_its_own_server(pytester):
    make_tests(pytester, '''
import os

@pytest.mark.parametrize("n", range(6))
def test_worker(mockcre, n, tmp_path_factory):
    assert mockcre.journal == []
    upload(mockcre.url, f"a{n}")
    assert [e["items"] for e in mockcre.journal] == [[f"a{n}"]]
    out = tmp_path_factory.getbasetemp().parent.parent / f"url-{os.environ['PYTEST_XDIST_WORKER']}-{n}"
    out.write_text(mockcre.url)
''')
    result = run(pytester, "-n", "2", "-v", "-p", "no:randomly", subprocess=True)
    result.assert_outcomes(passed=6)
    result.stdout.fnmatch_lines([f"mockcre {__version__}: one server per xdist worker, each on a free 127.0.0.1 port",
                                 f"mockcre {__version__}: 6 requests received, 0 with violations*"])


def test_the_docs_example_passes_and_is_the_file_in_the_docs(pytester):
    source = EXAMPLE.read_text(encoding="utf-8")
    pytester.makepyfile(test_example_usage=source)
    run(pytester, "-p", "no:randomly").assert_outcomes(passed=6)
    page = (ROOT / "docs" / "pytest.md").read_text(encoding="utf-8")
    assert '```python\n--8<-- "examples/test_example_usage.py"\n```' in page, \
        "docs/pytest.md must show examples/test_example_usage.py (included by pymdownx.snippets)"


def test_reset_of_an_empty_server_takes_under_2_ms(mockcre):
    times = []
    for _ in range(200):
        start = time.perf_counter()
        mockcre.reset(scenarios=True)
        times.append(time.perf_counter() - start)
    assert statistics.median(times) < 0.002, f"median reset {statistics.median(times) * 1000:.3f} ms"


def test_the_fixture_in_our_own_suite(mockcre, mockcre_server):
    """The plugin is installed here too: the same handle, on the session's server."""
    assert isinstance(mockcre, MockcreServer) and mockcre is mockcre_server
    assert mockcre.url.startswith("http://127.0.0.1:")
    assert mockcre.journal == []
    with pytest.raises(FileNotFoundError, match="no scenario 'no-such-scenario'"):
        mockcre.load_scenario("no-such-scenario")
