"""Serving over real HTTP (issue 3): bad input, auth, engine failures and warnings.

Every protocol error is HTTP 200 with the dialect's own envelope and code -1 (cre "-1"), never an
HTML page, a 500 or a traceback; the message names each problem by field path. Warnings never
change the answer and stay with the request in the journal.
"""

from __future__ import annotations

import gzip
import json
import re
import subprocess
import sys
import time

import pytest
import requests
from hypothesis import given
from hypothesis import strategies as st
from werkzeug.datastructures import EnvironHeaders

import mockcre.faces.app as app_module

from httpkit import (CRE_TOKEN, DM_BID, DM_TOKEN, TIMEOUT, Client, client, cre_action, cre_item, cre_query,  # noqa: F401
                     cre_upload, dm_action, dm_item, dm_recommend, md5, request_id, serve, start, stop_soon)

CRE_PATHS = ("/upload", "/cre_test_upload", "/query", "/test-query")
DM_PATHS = ("/dm/data", "/dm/service", "/")


def dialect_of(path: str) -> str:
    return "cre" if path in CRE_PATHS else "dm"


def assert_envelope(resp: requests.Response, dialect: str, code: int = -1) -> dict:
    """HTTP 200, a JSON body, the dialect's error envelope with ``code``; returns the reply."""
    assert resp.status_code == 200, (resp.status_code, resp.text[:300])
    assert resp.headers["Content-Type"].startswith("application/json"), resp.headers["Content-Type"]
    assert "Traceback" not in resp.text and "<html" not in resp.text.lower()
    reply = resp.json()
    if dialect == "cre":
        assert set(reply) <= {"seq_no", "code", "message"} and {"code", "message"} <= set(reply), reply
        assert reply["code"] == str(code), reply
        assert isinstance(reply["message"], str) and reply["message"], reply
    else:
        assert set(reply) == {"request_id", "code", "msg"}, reply
        assert reply["code"] == code, reply
        assert isinstance(reply["msg"], str) and reply["msg"], reply
    return reply


def message(reply: dict) -> str:
    return reply.get("message") or reply.get("msg")


@pytest.fixture(scope="module")
def shared():
    """One lenient server for the stateless bad-input cases of this module."""
    server = start()
    yield Client(server.url)
    stop_soon(server)


# -- bad bodies ------------------------------------------------------------------------------

JSON = {"Content-Type": "application/json"}
BAD_BODIES = {
    # name: (raw body, headers, what the message must say)
    "not-json": (b"{not json", JSON, "body is not valid JSON at line 1 column 2"),
    "empty": (b"", JSON, "body is empty"),
    "whitespace": (b"  \n ", JSON, "body is empty"),
    "form-encoded": (b"uid=u1&item_id=a", {"Content-Type": "application/x-www-form-urlencoded"},
                     "Content-Type is application/x-www-form-urlencoded"),
    "gzip-without-header": (gzip.compress(b'{"a": "1"}'), JSON, "no Content-Encoding: gzip header"),
    "gzip-header-not-gzip": (b'{"a": "1"}', {**JSON, "Content-Encoding": "gzip"}, "does not decompress"),
    "array": (b'[{"a": "1"}]', JSON, "expected a JSON object"),
    "number": (b"3", JSON, "expected a JSON object"),
    "string": (b'"hello"', JSON, "expected a JSON object"),
    "null": (b"null", JSON, "expected a JSON object"),
    "nan": (b'{"a": NaN}', JSON, "NaN is not valid JSON"),
    "infinity": (b'{"a": -Infinity}', JSON, "Infinity is not valid JSON"),
    "not-utf8": (b'{"a": "\xff\xfe"}', JSON, "not UTF-8"),
    "too-deep": (b'{"a": ' * 100 + b"1" + b"}" * 100, JSON, "64 levels"),
}


@pytest.mark.parametrize("path", ["/upload", "/query", "/dm/data", "/dm/service", "/"])
@pytest.mark.parametrize("case", sorted(BAD_BODIES))
def test_bad_body_is_a_format_error_envelope(shared: Client, path, case):
    raw, headers, expected = BAD_BODIES[case]
    resp = shared.post(path, data=raw, headers=headers)
    reply = assert_envelope(resp, dialect_of(path))
    assert reply.get("seq_no") is None and reply.get("request_id") is None  # nothing readable to echo
    assert expected in message(reply), message(reply)
    entry = shared.last_entry()
    assert any(v["severity"] == "error" for v in entry["violations"])
    assert entry["reply"] == reply


NOT_JSON_HINTS = {
    # name: (raw body sent as application/json, the hint the message must end with; None: no hint)
    "form-fields": (b"seq_no=1&token=t&data_type=1", "this is a form body (field=value&...), not JSON: send the JSON "
                    "object itself as the POST body"),
    "one-form-field": (b"token=t", "this is a form body"),
    "json-lines": (b'{"seq_no": "1"}\n{"seq_no": "2"}\n', "these are 2 JSON values, one per line (JSON lines)"),
    # near misses: garbage that is neither, and JSON lines whose last line is cut off
    "plain-text": (b"hello world", None),
    "lines-one-broken": (b'{"seq_no": "1"}\n{"seq_no": ', None),
}


@pytest.mark.parametrize("case", sorted(NOT_JSON_HINTS))
def test_a_non_json_body_gets_the_same_hint_from_the_server_and_validate(shared: Client, case, tmp_path):
    """The server and ``mockcre validate`` judge a body with one parser, so a user sees the same advice."""
    raw, hint = NOT_JSON_HINTS[case]
    reply = assert_envelope(shared.post("/upload", data=raw, headers=JSON), "cre")
    body_file = tmp_path / "body.json"
    body_file.write_bytes(raw)
    done = subprocess.run([sys.executable, "-m", "mockcre", "validate", str(body_file)], capture_output=True,
                          timeout=60)
    assert done.returncode == 1
    if hint is None:
        assert "form body" not in reply["message"] and "JSON lines" not in reply["message"]
    else:
        assert hint in reply["message"]
    judged = shared.last_entry()["violations"][0]["message"]
    assert judged in reply["message"] and f"/  {judged}  [json.syntax]" in done.stdout.decode(), done.stdout.decode()


def test_multipart_form_is_refused(shared: Client):
    resp = shared.post("/upload", files={"body": ("body.json", json.dumps(cre_upload("1", [cre_item("a")])))})
    reply = assert_envelope(resp, "cre")
    assert "Content-Type is multipart/form-data" in reply["message"]


def test_duplicate_keys_are_refused_with_echo(shared: Client):
    raw = b'{"seq_no": "9", "version": "1", "data_type": "1", "data_type": "1", "token": "t", "data": []}'
    reply = assert_envelope(shared.post("/upload", data=raw, headers=JSON), "cre")
    assert reply["seq_no"] == "9"
    assert "'data_type' appears 2 times" in reply["message"]
    body = dm_recommend()
    raw = json.dumps(body)[:-1].encode() + b', "uid": "again"}'
    reply = assert_envelope(shared.post("/dm/service", data=raw, headers=JSON), "dm")
    assert reply["request_id"] == body["request_id"]
    assert "'uid' appears 2 times" in reply["msg"]


def test_wrong_content_type_with_json_is_accepted_with_warning(client: Client):
    body = cre_upload("1", [cre_item("ct")], seq_no="77")
    resp = client.post("/upload", data=json.dumps(body).encode(), headers={"Content-Type": "text/plain"})
    assert resp.status_code == 200
    assert resp.json() == {"seq_no": "77", "code": "0", "message": "success"}
    entry = client.last_entry()
    assert [(v["rule"], v["severity"]) for v in entry["violations"]] == [("http.content-type", "warning")]
    assert "text/plain" in entry["violations"][0]["message"]
    assert client.cre_ids() == ["ct"]  # and it was stored
    item = dm_item("ct2")
    resp = client.post("/dm/data", data=json.dumps(item).encode(), headers={"Content-Type": "text/plain; charset=utf-8"})
    assert resp.json() == {"request_id": item["request_id"], "code": 0, "msg": "true"}
    assert client.dm_ids() == ["ct2"]


def test_no_content_type_with_json_is_accepted(client: Client):
    item = dm_item("nc")
    raw = json.dumps(item).encode()
    resp = requests.post(client.url + "/dm/data", data=raw, timeout=TIMEOUT)  # requests sends no Content-Type
    assert "Content-Type" not in resp.request.headers
    assert resp.json() == {"request_id": item["request_id"], "code": 0, "msg": "true"}


def test_gzip_with_content_encoding_is_accepted(client: Client):
    body = cre_upload("1", [cre_item("zipped")], seq_no="3")
    raw = gzip.compress(json.dumps(body).encode())
    resp = client.post("/upload", data=raw, headers={**JSON, "Content-Encoding": "gzip"})
    assert resp.status_code == 200
    assert resp.json() == {"seq_no": "3", "code": "0", "message": "success"}
    assert client.cre_ids() == ["zipped"]
    rec = dm_recommend()
    client.dm_item("dz")
    resp = client.post("/dm/service", data=gzip.compress(json.dumps(rec).encode()),
                       headers={**JSON, "Content-Encoding": "gzip"})
    assert resp.json()["code"] == 0 and [e["item"] for e in resp.json()["data"]] == ["dz"]


# -- size limits -----------------------------------------------------------------------------

def test_body_over_configured_limit(serve):
    client = serve({"max_body_bytes": 10_000})
    body = cre_upload("1", [cre_item("big", describe="x" * 49_850)], seq_no="5")
    raw = json.dumps(body).encode()
    assert 50_000 <= len(raw) < 51_000
    reply = assert_envelope(client.post("/upload", data=raw, headers=JSON), "cre")
    assert "exceeds the limit of 10,000 bytes" in reply["message"]
    assert client.cre_query()["rec"] == {"0": []}  # nothing stored
    small = cre_upload("1", [cre_item("small")])
    assert client.call("/upload", small)["code"] == "0"  # under the limit: fine


def test_gzip_bomb_is_refused_by_the_limit(serve):
    client = serve({"max_body_bytes": 10_000})
    raw = gzip.compress(b'{"a": "' + b"0" * 5_000_000 + b'"}')
    assert len(raw) < 10_000
    reply = assert_envelope(client.post("/dm/data", data=raw, headers={**JSON, "Content-Encoding": "gzip"}), "dm")
    assert "exceeds the limit of 10,000 bytes" in reply["msg"]


def test_default_limit_refuses_50_mb_quickly(shared: Client):
    raw = b'{"describe": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    started = time.monotonic()
    resp = shared.post("/dm/data", data=raw, headers=JSON)
    elapsed = time.monotonic() - started
    reply = assert_envelope(resp, "dm")
    assert "exceeds the limit of 8,388,608 bytes" in reply["msg"]
    assert elapsed < 5, elapsed


# -- the wrong body for the endpoint ---------------------------------------------------------

def test_dm_action_sent_to_service(shared: Client):
    body = dm_action("u", 2, ["a"])
    reply = assert_envelope(shared.post("/dm/service", body), "dm")
    assert reply["request_id"] == body["request_id"]
    assert reply["msg"].startswith("format error")
    assert "data_type: a recommendation request has no data_type" in reply["msg"]


def test_dm_data_without_data_type(shared: Client):
    body = dm_item("a")
    del body["data_type"]
    reply = assert_envelope(shared.post("/dm/data", body), "dm")
    assert reply["request_id"] == body["request_id"]
    assert "data_type: expected 1 (item, 物料) or 2 (action, 行为); it is missing" in reply["msg"]


@pytest.mark.parametrize("path", ["/upload", "/cre_test_upload"])
def test_cre_upload_without_data_type(shared: Client, path):
    body = cre_upload("1", [cre_item("a")], seq_no="41")
    del body["data_type"]
    reply = assert_envelope(shared.post(path, body), "cre")
    assert reply["seq_no"] == "41"
    assert 'data_type: expected "1" (item, 物料) or "2" (action, 行为); it is missing' in reply["message"]


def test_cre_upload_with_unknown_data_type(shared: Client):
    reply = assert_envelope(shared.post("/upload", cre_upload("3", [cre_item("a")], seq_no="43")), "cre")
    assert reply["seq_no"] == "43"
    assert "data_type" in reply["message"] and "'3'" in reply["message"]


def test_cre_item_records_sent_as_actions(shared: Client):
    reply = assert_envelope(shared.post("/upload", cre_upload("2", [cre_item("a")], seq_no="44")), "cre")
    assert reply["seq_no"] == "44"
    # the root cause alone, not the action schema's complaints about item records
    assert "data[0]: data_type says action, but the record carries item fields (pool_id)" in reply["message"]
    assert "data[0].uid" not in reply["message"]


# -- unknown paths and methods ---------------------------------------------------------------

@pytest.mark.parametrize("method, path, status", [
    ("POST", "/nope", 404),
    ("GET", "/nope", 404),
    ("POST", "/dm/data/extra", 404),
    ("GET", "/query", 405),
    ("GET", "/upload", 405),
    ("PUT", "/dm/service", 405),
    ("DELETE", "/", 405),
])
def test_unknown_path_and_wrong_method_are_json(shared: Client, method, path, status):
    resp = requests.request(method, shared.url + path, timeout=TIMEOUT)
    assert resp.status_code == status
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["status"] == status
    assert "<html" not in resp.text.lower()


@pytest.mark.parametrize("method, path", [("GET", "/query"), ("PUT", "/dm/service")])
def test_wrong_method_names_the_allowed_one(shared: Client, method, path):
    """RFC 9110 §15.5.6: a 405 response MUST carry an Allow header listing the methods the resource takes."""
    resp = requests.request(method, shared.url + path, timeout=TIMEOUT)
    assert resp.status_code == 405
    assert "POST" in resp.headers.get("Allow", ""), dict(resp.headers)


# -- error messages: every problem, by field path --------------------------------------------

def test_cre_message_lists_every_error_with_its_path(shared: Client):
    body = cre_upload("2", [cre_action("u1", "102", ["a"]), cre_action("u2", "999", ["b"])], seq_no="42")
    del body["data"][0]["uid"]
    body["data"][1]["oper_time"] = "abc"
    reply = assert_envelope(shared.post("/upload", body), "cre")
    assert reply["seq_no"] == "42"
    text = reply["message"]
    assert "3 problems" in text
    assert "data[0].uid: required field is missing" in text
    assert 'data[1].oper_time: expected a 10-digit UTC timestamp in seconds, e.g. "1483200000"; got "abc"' in text
    assert 'data[1].action_id: expected an action id from "101" (exposure) to "128" (replay); got "999"' in text
    paths = sorted(v["path"] for v in shared.last_entry()["violations"] if v["severity"] == "error")
    assert paths == ["/data/0/uid", "/data/1/action_id", "/data/1/oper_time"]


def test_dm_message_lists_every_error_with_its_path(shared: Client):
    body = dm_recommend(service_type=9, request_num=0)
    del body["bid"]
    reply = assert_envelope(shared.post("/dm/service", body), "dm")
    assert reply["request_id"] == body["request_id"]
    text = reply["msg"]
    assert "3 problems" in text
    for field in ("bid", "service_type", "request_num"):
        assert f"{field}:" in text, text
    paths = sorted(v["path"] for v in shared.last_entry()["violations"] if v["severity"] == "error")
    assert paths == ["/bid", "/request_num", "/service_type"]


def test_cre_query_errors_echo_seq_no(shared: Client):
    body = cre_query(seq_no="abc-123")
    del body["proj_id"]
    reply = assert_envelope(shared.post("/query", body), "cre")
    assert reply == {"seq_no": "abc-123", "code": "-1", "message": reply["message"]}
    assert "proj_id: required field is missing" in reply["message"]


def test_many_errors_are_all_counted(shared: Client):
    records = [cre_action(f"u{i}", "102", ["a"]) for i in range(30)]
    for r in records:
        del r["uid"]
    reply = assert_envelope(shared.post("/upload", cre_upload("2", records)), "cre")
    text = reply["message"]
    assert "30 problems" in text
    listed = [i for i in range(30) if f"data[{i}].uid: required field is missing" in text]
    more = re.search(r"and (\d+) more", text)
    assert listed == list(range(len(listed)))  # in record order
    assert len(listed) + (int(more.group(1)) if more else 0) == 30, text
    errors = [v for v in shared.last_entry()["violations"] if v["severity"] == "error"]
    assert sorted(v["path"] for v in errors) == sorted(f"/data/{i}/uid" for i in range(30))  # the journal keeps all


def test_strict_mode_refuses_what_lenient_warns(serve):
    lenient, strict = serve(), serve({"strict": True})
    body = dm_recommend(request_num="50")  # a string where the table says integer
    assert lenient.call("/dm/service", body)["code"] == -3  # accepted (empty store)
    reply = assert_envelope(strict.post("/dm/service", body), "dm")
    assert "request_num" in reply["msg"] and reply["request_id"] == body["request_id"]


# -- an engine failure -----------------------------------------------------------------------

def test_engine_exception_is_a_system_error_envelope(client: Client, monkeypatch):
    import mockcre.pipeline.service

    def broken(*args, **kwargs):
        raise RuntimeError("kaboom-internal-detail")

    client.cre_items(cre_item("a"))
    client.dm_item("a")
    monkeypatch.setattr(mockcre.pipeline.service, "rank", broken)
    resp = client.post("/query", cre_query(seq_no="s-1"))
    reply = assert_envelope(resp, "cre", code=-2)
    assert reply["seq_no"] == "s-1"
    assert "kaboom" not in resp.text and "RuntimeError" not in resp.text
    body = dm_recommend()
    resp = client.post("/dm/service", body)
    reply = assert_envelope(resp, "dm", code=-2)
    assert reply["request_id"] == body["request_id"]
    assert "kaboom" not in resp.text and "RuntimeError" not in resp.text
    assert client.last_entry()["reply"] == reply
    monkeypatch.undo()
    assert client.cre_ids() == ["a"]  # the server keeps serving


@pytest.mark.parametrize("path, dialect, endpoint", [("/query", "cre", "cre.query"), ("/", "dm", "dm.root")])
def test_a_judge_that_fails_is_a_system_error_envelope_too(client: Client, monkeypatch, path, dialect, endpoint):
    """Before the judge has said anything there is no judgement: the answer and the journal entry still are."""
    import mockcre.pipeline.service

    def broken(*args, **kwargs):
        raise RuntimeError("kaboom-in-the-judge")

    monkeypatch.setattr(mockcre.pipeline.service, "decode_transport", broken)
    resp = client.post(path, cre_query() if dialect == "cre" else dm_recommend())
    assert_envelope(resp, dialect, code=-2)
    assert "kaboom" not in resp.text
    entry = client.last_entry()
    assert entry["endpoint"] == endpoint and entry["reply"] == resp.json() and entry["body"] is None


def test_store_exception_on_upload_is_a_system_error_envelope(client: Client, monkeypatch):
    import mockcre.model.store

    def broken(self, item):
        raise KeyError("secret-key-name")

    monkeypatch.setattr(mockcre.model.store.Partition, "upsert", broken)
    resp = client.post("/upload", cre_upload("1", [cre_item("a")], seq_no="8"))
    reply = assert_envelope(resp, "cre", code=-2)
    assert reply["seq_no"] == "8"
    assert "secret-key-name" not in resp.text and "KeyError" not in resp.text


# -- warnings --------------------------------------------------------------------------------

def test_warnings_do_not_change_the_answer_and_are_journaled(client: Client):
    client.cre_items(cre_item("a"), cre_item("b"))
    client.cre_actions(cre_action("u1", "102", ["b"]))
    clean = client.cre_query(user_id="u1")
    assert client.last_entry()["violations"] == []
    warned_body = cre_query(user_id="u1", uid_type="6", extra_field="x")  # "6" in a query; an unknown field
    warned = client.call("/query", warned_body)
    assert {k: v for k, v in warned.items() if k != "trace_id"} == {k: v for k, v in clean.items() if k != "trace_id"}
    entry = client.last_entry()
    assert entry["reply"] == warned
    assert entry["violations"] and all(v["severity"] == "warning" for v in entry["violations"])
    assert {"lenient.unknown-field", "uid-type-6-in-query"} <= {v["rule"] for v in entry["violations"]}
    assert {"/extra_field", "/uid_type"} <= {v["path"] for v in entry["violations"]}
    flagged = client.journal(has_violations=1)
    assert [e["seq"] for e in flagged] == [entry["seq"]]


def test_dm_warnings_do_not_change_the_answer(client: Client):
    client.dm_item("a")
    client.dm_item("b", tags="x,y")  # tags joined by ',' (warning tags-separator)
    assert client.last_entry()["violations"][0]["rule"] == "tags-separator"
    rid = request_id()
    clean = client.call("/dm/service", dm_recommend(request_id=rid))
    warned = client.call("/dm/service", dm_recommend(request_id=rid, request_num="50", service_type="3"))
    assert warned == clean and clean["code"] == 0
    rules = [v["rule"] for v in client.last_entry()["violations"]]
    assert rules.count("lenient.coerced-type") == 2


def test_journal_keeps_violations_and_replies_in_order(client: Client):
    client.post("/upload", data=b"nope", headers=JSON)
    client.cre_items(cre_item("a"))
    entries = client.journal()
    assert [e["endpoint"] for e in entries] == ["cre.upload", "cre.upload"]
    assert entries[0]["violations"][0]["rule"] == "json.syntax"
    assert entries[0]["reply"]["code"] == "-1"
    assert entries[1]["violations"] == [] and entries[1]["reply"]["code"] == "0"
    assert entries[0]["seq"] < entries[1]["seq"]


# -- auth ------------------------------------------------------------------------------------

CRE_SECRET = "cre-secret-token-0123456789"


@pytest.fixture
def guarded(serve) -> Client:
    return serve({"accounts": [f"cre:{CRE_SECRET}", f"dm:{DM_BID}={DM_TOKEN}"]})


def test_cre_token_checked_with_accounts(guarded: Client):
    for path in ("/upload", "/cre_test_upload"):
        assert guarded.call(path, cre_upload("1", [cre_item("a")], token=CRE_SECRET))["code"] == "0"
        reply = assert_envelope(guarded.post(path, cre_upload("1", [cre_item("b")], token="someone-else", seq_no="6")), "cre")
        assert reply["seq_no"] == "6"
        assert "token" in reply["message"]
        assert CRE_SECRET not in reply["message"]
    reply = assert_envelope(guarded.post("/query", cre_query(token=CRE_TOKEN)), "cre")
    assert "token" in reply["message"]
    assert [e["id"] for e in guarded.call("/query", cre_query(token=CRE_SECRET))["rec"]["0"]] == ["a"]  # b was refused


def test_dm_md5_checked_with_accounts(guarded: Client):
    item = dm_item("a")
    assert item["MD5"] == md5(f"{DM_BID}&{item['request_id']}&{DM_TOKEN}")
    assert guarded.call("/dm/data", item)["code"] == 0
    upper = dm_item("b")
    upper["MD5"] = upper["MD5"].upper()
    assert guarded.call("/dm/data", upper)["code"] == 0
    wrong = dm_item("c", token="not-the-token")
    reply = assert_envelope(guarded.post("/dm/data", wrong), "dm")
    assert reply["request_id"] == wrong["request_id"]
    assert "md5(bid&request_id&TOKEN)" in reply["msg"]
    assert DM_TOKEN not in reply["msg"]
    replayed = dm_item("d")
    replayed["MD5"] = item["MD5"]  # a signature of another request_id
    assert assert_envelope(guarded.post("/dm/data", replayed), "dm")["code"] == -1
    rec = dm_recommend()
    assert sorted(e["item"] for e in guarded.call("/dm/service", rec)["data"]) == ["a", "b"]
    rec_wrong = dm_recommend(token="nope")
    assert assert_envelope(guarded.post("/dm/service", rec_wrong), "dm")["code"] == -1
    other_bid = dm_item("e", bid="unknown_bid", token=DM_TOKEN)
    reply = assert_envelope(guarded.post("/dm/data", other_bid), "dm")
    assert "bid" in reply["msg"]


def test_secrets_never_reach_the_journal(guarded: Client):
    guarded.call("/upload", cre_upload("1", [cre_item("a")], token=CRE_SECRET))
    guarded.call("/dm/data", dm_item("a"))
    guarded.post("/dm/data", dm_item("c", token="not-the-token"))
    text = json.dumps(guarded.journal(), ensure_ascii=False)
    assert CRE_SECRET not in text
    assert DM_TOKEN not in text


def test_without_accounts_anything_passes(client: Client):
    assert client.call("/upload", cre_upload("1", [cre_item("a")], token="whatever"))["code"] == "0"
    assert client.call("/query", cre_query(token="also-whatever"))["code"] == "0"
    assert client.call("/dm/data", dm_item("a", MD5="0" * 32))["code"] == 0
    reply = client.call("/dm/data", dm_item("b", MD5="随便填写"))  # "MD5 可以随便填写": accepted, with a warning
    assert reply["code"] == 0
    assert "md5-shape" in {v["rule"] for v in client.last_entry()["violations"]}
    assert sorted(client.dm_ids(MD5="x" * 32)) == ["a", "b"]


@given(st.dictionaries(st.sampled_from(["HTTP_HOST", "HTTP_X_API_KEY", "HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH", "CONTENT_TYPE",
                                        "CONTENT_LENGTH", "HTTP_ACCEPT_ENCODING", "REQUEST_METHOD", "PATH_INFO", "HTTP_"]),
                       st.sampled_from(["", "application/json", "12", "a_b"]), max_size=8))
def test_the_api_reads_headers_exactly_as_werkzeug_does(environ):
    assert app_module._headers(environ) == list(EnvironHeaders(environ).items())
