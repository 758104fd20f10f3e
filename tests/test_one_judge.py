"""One judge: ``mockcre proxy`` in front of ``mockcre serve`` finds exactly what serve finds.

Every body of the table goes through a real proxy to a real serve over HTTP; the proxy's journal
entry and the serve's entry for the same request must each hold exactly the violations (path, rule,
severity) expected for that body. Before the proxy called the same judge as serve, an over-limit batch drew a
``limit.batch-records`` error from serve and nothing from the proxy.
"""

from __future__ import annotations

import gzip
import json

import pytest
import requests

from httpkit import (TIMEOUT, cre_action, cre_item, cre_query, cre_upload, dm_action, dm_item, dm_recommend, fixed_clock,
                     start, stop_soon)
from mockcre.faces.proxy import create_proxy_app
from mockcre.faces.server import ThreadedServer

LIMITS = {"clock": fixed_clock(), "max_batch_records": 3}
JSON = {"Content-Type": "application/json"}


def _body(value) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


TABLE = [  # (name, path, body bytes, headers)
    ("valid cre item upload", "/upload", _body(cre_upload("1", [cre_item("a")])), JSON),
    ("valid cre action upload", "/upload", _body(cre_upload("2", [cre_action("u1", "102", ["a"])])), JSON),
    ("valid cre query", "/query", _body(cre_query("u1")), JSON),
    ("valid dm item", "/dm/data", _body(dm_item("a")), JSON),
    ("valid dm action", "/dm/data", _body(dm_action("u1", 2, ["a"])), JSON),
    ("valid dm recommendation", "/dm/service", _body(dm_recommend("u1")), JSON),
    ("dm report to the root, routed by body", "/", _body(dm_item("b")), JSON),
    ("missing required field", "/upload", _body(cre_upload("1", [{k: v for k, v in cre_item("a").items()
                                                                   if k != "item_id"}])), JSON),
    ("wrong type", "/dm/data", _body(dm_item("a", publish="yes")), JSON),
    ("semantic rule: pool 0 reported", "/upload", _body(cre_upload("1", [cre_item("a", pool_id="0")])), JSON),
    ("unknown action code", "/upload", _body(cre_upload("2", [cre_action("u1", "999", ["a"])])), JSON),
    ("wrong kind for the endpoint", "/dm/service", _body(dm_item("a")), JSON),
    ("data_type missing", "/upload", _body({"version": "1", "token": "t", "data": []}), JSON),
    ("not JSON", "/query", b"{not json", JSON),
    ("a JSON array", "/query", b"[]", JSON),
    ("over-limit batch", "/upload", _body(cre_upload("1", [cre_item(str(i)) for i in range(4)])), JSON),
    ("wrong Content-Type", "/query", _body(cre_query("u2")), {"Content-Type": "text/plain"}),
    ("form Content-Type", "/query", b"a=1&b=2", {"Content-Type": "application/x-www-form-urlencoded"}),
    ("gzip body", "/dm/data", gzip.compress(_body(dm_item("z"))), {**JSON, "Content-Encoding": "gzip"}),
    ("gzip bytes without the header", "/dm/data", gzip.compress(_body(dm_item("y"))), JSON),
    ("broken gzip", "/dm/data", b"\x1f\x8b not really", {**JSON, "Content-Encoding": "gzip"}),
]

NO_VIOLATION = set()
EXPECTED = {  # name -> the violations (path, rule, severity) both serve and the proxy must find, no more, no less
    "valid cre item upload": NO_VIOLATION,
    "valid cre action upload": NO_VIOLATION,
    "valid cre query": NO_VIOLATION,
    "valid dm item": NO_VIOLATION,
    "valid dm action": NO_VIOLATION,
    "valid dm recommendation": NO_VIOLATION,
    "dm report to the root, routed by body": NO_VIOLATION,
    "missing required field": {("/data/0/item_id", "schema.required", "error")},
    "wrong type": {("/publish", "schema.enum", "error")},
    "semantic rule: pool 0 reported": {("/data/0/pool_id", "item-pool-zero", "error")},
    "unknown action code": {("/data/0/action_id", "schema.enum", "error")},
    "wrong kind for the endpoint": {("/data_type", "endpoint-kind", "error")},
    "data_type missing": {("/data_type", "endpoint-kind", "error")},
    "not JSON": {("", "json.syntax", "error")},
    "a JSON array": {("", "schema.type", "error")},
    "over-limit batch": {("/data", "limit.batch-records", "error")},
    "wrong Content-Type": {("", "http.content-type", "warning")},
    "form Content-Type": {("", "http.content-type", "error")},
    "gzip body": NO_VIOLATION,
    "gzip bytes without the header": {("", "http.encoding", "error")},
    "broken gzip": {("", "http.encoding", "error")},
}


@pytest.fixture(scope="module")
def proxied():
    """A serve with small limits, and a proxy with the same limits in front of it."""
    serve = start(LIMITS)
    proxy = ThreadedServer(create_proxy_app(serve.url, dict(LIMITS), timeout=TIMEOUT)).start()
    yield serve, proxy
    stop_soon(proxy)
    stop_soon(serve)


def _found(entry: dict) -> set:
    return {(v["path"], v["rule"], v["severity"]) for v in entry["violations"]}


def _last(server) -> dict:
    return requests.get(f"{server.url}/__admin/journal", params={"limit": 1}, timeout=TIMEOUT).json()["entries"][-1]


def test_every_body_of_the_table_has_its_expected_violations():
    assert [row[0] for row in TABLE] == list(EXPECTED)


@pytest.mark.parametrize("name, path, body, headers", TABLE, ids=[row[0] for row in TABLE])
def test_the_proxy_finds_what_serve_finds(proxied, name, path, body, headers):
    """Both against the expected violations: compared only with each other, a judge that dropped every
    violation would pass."""
    serve, proxy = proxied
    reply = requests.post(proxy.url + path, data=body, headers=headers, timeout=TIMEOUT)
    assert reply.status_code == 200, reply.text
    at_proxy, at_serve = _last(proxy), _last(serve)
    assert at_proxy["endpoint"] == at_serve["endpoint"] and at_proxy["kind"] == at_serve["kind"]
    assert _found(at_serve) == EXPECTED[name]
    assert _found(at_proxy) == EXPECTED[name]
