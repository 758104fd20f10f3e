"""The one request-matching language, as clients meet it: scenario rules, the test handle, and
``POST /__admin/requests/find`` / ``count`` and ``GET /__admin/journal?where=`` over real HTTP."""

from __future__ import annotations

import json
import re
from decimal import Decimal
import threading
import time

import pytest
import requests

from httpkit import TIMEOUT, cre_action, cre_query, cre_upload, dm_recommend, serve  # noqa: F401  (serve is a fixture)

FREEZE_RULE = """\
name: freeze
rules:
  - when:
      endpoint: cre.query
      match:
        user_id: {regex: "^(a+)+$"}
    then: {code: "-3", message: nested quantifier}
"""


def load(client, text: str) -> None:
    resp = client.session.post(client.url + "/__admin/scenarios", data=text.encode(), timeout=TIMEOUT)
    assert resp.status_code == 201, resp.text


def find(client, pattern, path="/__admin/requests/find", **kwargs) -> requests.Response:
    return client.session.post(client.url + path, data=json.dumps(pattern), timeout=TIMEOUT, **kwargs)


def test_a_catastrophic_regex_answers_at_once_while_health_keeps_answering(serve):
    """issue 22.5: with re, ^(a+)+$ against 28 a's and a b held the process ~11 s; RE2 is linear."""
    client = serve()
    load(client, FREEZE_RULE)
    hostile = "a" * 40 + "b"
    health_times = []
    stop = threading.Event()

    def poll_health():
        while not stop.is_set():
            started = time.perf_counter()
            assert requests.get(client.url + "/__admin/health", timeout=TIMEOUT).status_code == 200
            health_times.append(time.perf_counter() - started)

    poller = threading.Thread(target=poll_health)
    poller.start()
    try:
        started = time.perf_counter()
        for _ in range(5):
            reply = client.call("/query", cre_query(user_id=hostile))
            assert reply["code"] == "0", reply  # no match: the engine answered
        took = time.perf_counter() - started
    finally:
        stop.set()
        poller.join(TIMEOUT)
    assert took < 2.0, f"5 queries with a hostile user_id took {took:.1f} s"
    assert health_times and max(health_times) < 1.0, health_times
    # the near miss: the same pattern still matches what it should
    assert client.call("/query", cre_query(user_id="a" * 40))["code"] == "-3"


@pytest.mark.parametrize("regex, value, matched", [
    ("u1", "xu1y", True),  # a search: the pattern may match anywhere in the value
    ("^u1$", "xu1y", False),  # anchored: the whole value
    ("^u1$", "u1", True),
    ("^u[0-9]+$", "u12", True),  # a pattern RE2 accepts works unchanged
    ("^u[0-9]+$", "u12x", False),
])
def test_regex_is_a_search_and_anchors_make_it_whole(serve, regex, value, matched):
    client = serve()
    load(client, f"""\
name: anchors
rules:
  - when: {{endpoint: cre.query, match: {{user_id: {{regex: {json.dumps(regex)}}}}}}}
    then: {{code: "-3", message: matched}}
""")
    assert (client.call("/query", cre_query(user_id=value))["code"] == "-3") is matched
    count = find(client, {"endpoint": "cre.query", "match": {"user_id": {"regex": regex}}}, "/__admin/requests/count")
    assert count.json() == {"count": int(matched)}


def test_find_returns_matches_and_count_counts_them(serve):
    client = serve()
    client.call("/query", cre_query(user_id="u1"))
    client.call("/query", cre_query(user_id="u1"))
    client.call("/query", cre_query(user_id="u2"))
    client.call("/dm/service", dm_recommend(uid="u1"))
    pattern = {"endpoint": "cre.query", "match": {"user_id": "u1"}}
    resp = find(client, pattern)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    found = resp.json()
    assert found["count"] == 2 and [e["body"]["user_id"] for e in found["entries"]] == ["u1", "u1"]
    assert "near_misses" not in found
    assert find(client, pattern, "/__admin/requests/count").json() == {"count": 2}
    # operators of the same language; user is the journal's own field, across dialects
    assert find(client, {"match": {"user": "u1"}}, "/__admin/requests/count").json() == {"count": 3}
    assert find(client, {"endpoint": ["cre.query", "dm.service"], "match": {"user": {"in": ["u2"]}}},
                "/__admin/requests/count").json() == {"count": 1}
    assert find(client, {"match": {"service_type": {"gte": 3}}}, "/__admin/requests/count").json() == {"count": 1}
    assert find(client, {"match": {"service_type": {"gt": 3}}}, "/__admin/requests/count").json() == {"count": 0}
    assert find(client, {"match": {"pool_id": {"present": False}}, "endpoint": "cre.query"},
                "/__admin/requests/count").json() == {"count": 3}
    assert find(client, {}, "/__admin/requests/count").json() == {"count": 4}
    # the same language filters GET /__admin/journal
    where = client.journal(where=json.dumps(pattern), limit=1)
    assert len(where) == 1 and where[0]["body"]["user_id"] == "u1" and where[0]["seq"] == 2


def test_find_with_no_match_shows_the_closest_entries_and_what_differs(serve):
    client = serve()
    client.call("/query", cre_query(user_id="u1"))
    client.call("/dm/service", dm_recommend(uid="u9"))
    found = find(client, {"endpoint": "cre.query", "match": {"user_id": "u2"}}).json()
    assert found["count"] == 0 and found["entries"] == []
    closest = found["near_misses"][0]
    assert closest["entry"]["body"]["user_id"] == "u1"
    assert closest["differences"] == [{"field": "user_id", "expected": "u2", "received": ["u1"]}]
    second = found["near_misses"][1]["differences"]
    assert [d["field"] for d in second] == ["endpoint", "user_id"]


@pytest.mark.parametrize("pattern, field, words", [
    ({"match": {"user_id": {"regex": "(a)\\1"}}}, "match.user_id.regex", ["RE2", "backreferences"]),
    ({"match": {"user_id": {"regex": "^(?!bot)"}}}, "match.user_id.regex", ["RE2", "lookaround"]),
    ({"endpoint": "cre.qury"}, "endpoint", ["cre.qury"]),
    ({"match": {"n": {"gt": "3"}}}, "match.n.gt", ["number"]),
    ({"match": {"n": {"like": "3"}}}, "match.n", ["like"]),
    ({"times": 1}, "times", ["not a request condition"]),
    (["endpoint"], "pattern", ["JSON object"]),
    ({"headers": {"X-Trace": {"regex": "(a)\\1"}}}, "headers.X-Trace.regex", ["RE2", "invalid escape sequence: \\1"]),
])
def test_a_bad_pattern_is_a_400_naming_the_field(serve, pattern, field, words):
    client = serve()
    for path in ("/__admin/requests/find", "/__admin/requests/count"):
        resp = find(client, pattern, path)
        assert resp.status_code == 400 and resp.headers["Content-Type"].startswith("application/json"), resp.text
        body = resp.json()
        assert body["field"] == field, body
        for word in words:
            assert word in body["message"], body
    resp = client.session.get(client.url + "/__admin/journal", params={"where": json.dumps(pattern)}, timeout=TIMEOUT)
    assert resp.status_code == 400 and resp.json()["field"] == field


def test_a_body_that_is_not_json_or_too_large_is_a_400(serve):
    client = serve({"max_body_bytes": 64})
    resp = client.post("/__admin/requests/count", data=b"{endpoint:")
    assert resp.status_code == 400 and "not JSON" in resp.json()["message"]
    at_limit = json.dumps({"match": {"user_id": "x" * (64 - 26)}}).encode()
    assert len(at_limit) == 64
    assert client.post("/__admin/requests/count", data=at_limit).status_code == 200
    over = json.dumps({"match": {"user_id": "x" * (64 - 25)}}).encode()
    resp = client.post("/__admin/requests/count", data=over)
    assert resp.status_code == 400 and "at most 64 bytes" in resp.json()["message"]


@pytest.mark.parametrize("headers, status", [
    ({}, 200),  # a client that is not a browser
    ({"Origin": "{own}"}, 200),  # the dashboard's own page
    ({"Sec-Fetch-Site": "same-origin"}, 200),
    ({"Origin": "{own}.evil.example"}, 403),  # the allowed origin as a prefix
    ({"Origin": "http://evil.example"}, 403),
    ({"Sec-Fetch-Site": "cross-site"}, 403),
    ({"Host": "evil.example"}, 403),  # DNS rebinding
])
def test_find_and_count_are_refused_cross_site_like_the_writes(serve, headers, status):
    """They change nothing, but are POSTs a foreign page has no use for: the guard treats them as writes."""
    client = serve()
    headers = {k: v.replace("{own}", client.url) for k, v in headers.items()}
    for path in ("/__admin/requests/find", "/__admin/requests/count"):
        resp = find(client, {}, path, headers=headers)
        assert resp.status_code == status, (path, headers, resp.text)


def test_the_handle_asserts_in_the_same_language():
    from mockcre.testing import MockcreServer

    with MockcreServer(allow_violations=True) as mock:
        requests.post(mock.url + "/query", json=cre_query(user_id="u1"), timeout=TIMEOUT)
        mock.assert_called("cre.query", user_id={"regex": "^u"})
        mock.assert_called("cre.query", user_id={"regex": "1"})  # a search
        mock.assert_not_called("cre.query", user_id={"regex": "^1"})
        mock.assert_not_called("dm.service")
        with pytest.raises(AssertionError) as failed:
            mock.assert_not_called("cre.query", user_id="u1")
        assert "assert_not_called('cre.query', user_id='u1'): expected exactly 0 matching requests, got 1." \
            in str(failed.value)
        with pytest.raises(AssertionError) as failed:
            mock.assert_called("cre.query", user_id={"regex": "^u2$"})
        assert "<<<<< differs" in str(failed.value)



EXACT_PATTERN_ERRORS = [
    (["e"] * 20, "pattern: expected a JSON object like a scenario's when, got " + json.dumps(["e"] * 20)[:60]),
    ({"times": 1}, "times: not a request condition; a pattern takes endpoint, kind, match, headers"),
    ({"match": {"user_id": {"regex": "(a)\\1"}}},
     "match.user_id.regex: regex does not compile in RE2 (invalid escape sequence: \\1); mockcre matches with RE2, "
     "which has no backreferences or lookaround, so that no pattern can make matching take exponential time"),
]


@pytest.mark.parametrize("pattern, message", EXACT_PATTERN_ERRORS)
def test_a_bad_patterns_message_whole(serve, pattern, message):
    resp = find(serve(), pattern)
    assert resp.status_code == 400
    assert resp.json()["message"] == message


@pytest.fixture
def journal(serve):
    """A mock that has answered five requests, each giving the language something to tell apart."""
    client = serve()
    client.call("/query", cre_query(user_id="u1", flag=True, nothing=None, weight=3.0, meta={"名": "值"}),
                headers={"X-Trace": "abc"})
    client.call("/upload", cre_upload("2", [cre_action("u7", "102", ["i1", "i2"])]))
    assert client.post("/query", data=b'{"seq_no": "1"').json()["code"] == "-1"  # unreadable, refused
    client.call("/dm/service", dm_recommend(uid="u9", data=[{"xuid": "zz"}]))  # dm nests no records
    client.call("/query", cre_query(user_id="u3"))
    return client


def count(client, pattern) -> int:
    resp = find(client, pattern, "/__admin/requests/count")
    assert resp.status_code == 200, resp.text
    return resp.json()["count"]


@pytest.mark.parametrize("pattern, expected", [
    # the journal's own fields: the reply's code, the kind
    ({"match": {"code": "-1"}}, 1),
    ({"match": {"item": "i2"}}, 1),  # any item id the body names
    ({"match": {"dialect": "dm"}}, 1),
    ({"match": {"seq": 5}}, 1),
    ({"match": {"code": "0"}}, 3),  # dm's -3 "empty result" is not
    ({"kind": "action"}, 1),
    ({"kind": ["query", "action"]}, 3),  # the unreadable body has no kind
    ({"endpoint": ["cre.upload", "any"]}, 5),  # "any" in a list
    # headers: any case on either side, operators too
    ({"headers": {"x-trace": "abc"}}, 1),
    ({"headers": {"X-TRACE": {"regex": "^ab"}}}, 1),
    ({"headers": {"X-Trace": "abd"}}, 0),
    # paths: a name met on a list means each element; an index is exact, one past the end finds nothing
    ({"match": {"data.uid": "u7"}}, 1),
    ({"match": {"data[0].item_action[1].item_id": "i2"}}, 1),
    ({"match": {"data[1].uid": "u7"}}, 0),
    ({"match": {"data[0].item_action[2].item_id": {"present": True}}}, 0),
    ({"match": {"user_id[0]": "u"}}, 0),  # text is no list: no character by index
    # inside the records the endpoint's dialect nests: a cre upload's data[*], not a dm body's
    ({"match": {"uid": "u7"}}, 1),
    ({"match": {"item_id": "i2"}}, 1),
    ({"endpoint": "dm.service", "match": {"xuid": "zz"}}, 0),
    ({"endpoint": "dm.service", "match": {"data[*].xuid": "zz"}}, 1),
    # values compared as JSON spells them
    ({"match": {"flag": "true"}}, 1),
    ({"match": {"flag": True}}, 1),
    ({"match": {"flag": "True"}}, 0),
    ({"match": {"nothing": "null"}}, 1),
    ({"match": {"weight": "3"}}, 1),
    ({"match": {"meta": {"equals": '{"名": "值"}'}}}, 1),
    ({"match": {"meta": {"regex": "值"}}}, 1),
    # a comparison holds for numbers only: text is not zero
    ({"match": {"user_id": {"gte": 0}}}, 0),
    ({"match": {"service_type": {"gte": 0}}}, 1),
    # present with another operator: both must hold
    ({"match": {"user_id": {"present": True, "regex": "^u"}}}, 2),
    ({"match": {"user_id": {"present": True, "regex": "^x"}}}, 0),
    ({"match": {"user_id": {"present": False}}, "endpoint": "cre.query"}, 1),  # the unreadable one
])
def test_each_part_of_the_language_over_http(journal, pattern, expected):
    assert count(journal, pattern) == expected, pattern


def test_near_misses_show_a_header_that_differs_and_put_the_newest_first_among_equals(journal):
    found = find(journal, {"endpoint": "cre.query", "match": {"user_id": "u2"}, "headers": {"X-Trace": "abd"}}).json()
    near = [(m["entry"]["seq"], m["differences"]) for m in found["near_misses"]]
    assert near[:3] == [  # two differences each, newest first; the unreadable query has no user_id
        (5, [{"field": "user_id", "expected": "u2", "received": ["u3"]},
             {"field": "headers.X-Trace", "expected": "abd", "received": []}]),
        (3, [{"field": "user_id", "expected": "u2", "received": []},
             {"field": "headers.X-Trace", "expected": "abd", "received": []}]),
        (1, [{"field": "user_id", "expected": "u2", "received": ["u1"]},
             {"field": "headers.X-Trace", "expected": "abd", "received": ["abc"]}]),
    ]


def test_a_scenario_looks_inside_the_records_of_its_endpoints_dialect(serve):
    client = serve()
    load(client, "name: nested\nrules:\n  - when:\n      match: {rule_id: r7}\n    then: {code: '-3', message: no r7}\n")
    assert client.call("/upload", cre_upload("2", [cre_action("u7", "102", ["i1"], rule_id="r7")]))["code"] == "-3"
    assert client.call("/upload", cre_upload("2", [cre_action("u7", "102", ["i1"], rule_id="r8")]))["code"] == "0"
    client.call("/dm/service", dm_recommend(uid="u0", data=[{"rule_id": "r7"}]))
    assert client.last_entry()["scenario"] == []  # dm nests no records: its data[*] is not looked in


def test_the_handle_takes_python_regexes_and_predicates():
    from mockcre.testing import MockcreServer

    with MockcreServer(allow_violations=True) as mock:
        requests.post(mock.url + "/query", json=cre_query(user_id="u1", meta={"名": "值"}), timeout=TIMEOUT)
        mock.assert_called("cre.query", user_id=re.compile("^u1$"))
        mock.assert_not_called("cre.query", user_id=re.compile("^u2$"))
        mock.assert_not_called("cre.query", meta=re.compile("值"))  # a compiled regex reads text only, not objects
        mock.assert_called("cre.query", user_id=lambda value: value.startswith("u"))
        mock.assert_not_called("cre.query", user_id=lambda value: value / 0)  # a predicate that fails is no match
        requests.post(mock.url + "/dm/service", json=dm_recommend(uid="u2", weight=3.0), timeout=TIMEOUT)
        mock.assert_called("dm.service", weight=Decimal("3"))  # a Python value is compared as its text


def test_an_entry_without_a_code_is_no_match_for_one(serve):
    """A fault answers nothing: its entry has no reply code, and asking for codes still works."""
    client = serve()
    load(client, "name: drop\nrules:\n  - when: {match: {user_id: gone}}\n    then: {fault: close}\n")
    with pytest.raises(requests.ConnectionError):
        client.call("/query", cre_query(user_id="gone"))
    client.call("/query", cre_query(user_id="u1"))
    assert count(client, {"match": {"code": "0"}}) == 1
    assert count(client, {"match": {"code": {"present": False}}}) == 1
