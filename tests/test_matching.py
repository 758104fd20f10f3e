"""The one request-matching language, as clients meet it: scenario rules, the test handle, and
``POST /__admin/requests/find`` / ``count`` and ``GET /__admin/journal?where=`` over real HTTP."""

from __future__ import annotations

import json
import threading
import time

import pytest
import requests

from httpkit import TIMEOUT, cre_query, dm_recommend, serve  # noqa: F401  (serve is a fixture)

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
