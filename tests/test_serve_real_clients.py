"""Real clients (issue 14): what integrators' code actually sends, over real HTTP, in both modes.

Lenient mode (the default) accepts what the real service would and warns, naming the rule and the
fix; strict mode answers -1 naming the same thing. Transport first: Content-Type, charset,
Content-Encoding, Content-Length.
"""

from __future__ import annotations

import gzip
import json
import socket
import subprocess
import zlib

import pytest

from mockcre.common.domain import PATHS

from httpkit import TIMEOUT, Client, cre_item, cre_upload, dm_item, serve, start, stop_soon  # noqa: F401

QUERY = {"seq_no": "7", "token": "t", "proj_id": "1", "scn_id": "2", "uid_type": "5", "user_id": ""}
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def lenient():
    server = start()
    yield Client(server.url)
    stop_soon(server)


@pytest.fixture(scope="module")
def strict():
    server = start({"strict": True})
    yield Client(server.url)
    stop_soon(server)


def rules(client: Client) -> list[tuple[str, str]]:
    return [(v["rule"], v["severity"]) for v in client.last_entry()["violations"]]


# -- Content-Type -----------------------------------------------------------------------------

def test_curl_default_form_content_type_with_json_is_accepted(lenient: Client, tmp_path):
    """``curl -d '{...}'`` sends application/x-www-form-urlencoded: the real service reads the JSON anyway."""
    curl = subprocess.run(["curl", "-sS", "--max-time", str(TIMEOUT), "-X", "POST", lenient.url + "/query",
                           "-d", json.dumps(QUERY)], capture_output=True, text=True, timeout=TIMEOUT + 5)
    assert curl.returncode == 0, curl.stderr
    reply = json.loads(curl.stdout)
    assert reply["code"] == "0" and reply["seq_no"] == "7", reply
    assert rules(lenient) == [("http.content-type", "warning")]
    warning = lenient.last_entry()["violations"][0]["message"]
    assert "application/x-www-form-urlencoded" in warning and "Content-Type: application/json" in warning


def test_real_form_body_is_refused_saying_send_json(lenient: Client):
    reply = lenient.post("/query", data=b"a=1&b=2", headers=FORM).json()
    assert reply["code"] == "-1" and reply["seq_no"] is None
    assert "send the JSON object itself as the POST body" in reply["message"]


@pytest.mark.parametrize("ctype", ["application/x-www-form-urlencoded", "text/plain", "application/octet-stream"])
def test_strict_refuses_any_content_type_but_json(strict: Client, ctype):
    reply = strict.post("/query", data=json.dumps(QUERY).encode(), headers={"Content-Type": ctype}).json()
    assert reply["code"] == "-1" and reply["seq_no"] == "7", reply
    assert f"Content-Type is {ctype}" in reply["message"] and "strict mode refuses it" in reply["message"]
    assert ("http.content-type", "error") in rules(strict)


@pytest.mark.parametrize("ctype", ["application/json", "application/json; charset=utf-8", "application/vnd.cre+json"])
def test_strict_takes_json_content_types(strict: Client, ctype):
    reply = strict.post("/query", data=json.dumps(QUERY).encode(), headers={"Content-Type": ctype}).json()
    assert reply["code"] == "0", reply


# -- charset ----------------------------------------------------------------------------------

GBK_BODY = {**QUERY, "geo": {"city": "深圳"}}


@pytest.mark.parametrize("charset, vender", [("GBK", "腾讯"), ("gb18030", "腾讯"), ("big5", "騰訊")])
def test_declared_charset_is_decoded(lenient: Client, charset, vender):
    upload = cre_upload("1", [cre_item("c-" + charset, vender=vender)], seq_no="5")
    raw = json.dumps(upload, ensure_ascii=False).encode(charset)
    resp = lenient.post("/cre_test_upload", data=raw, headers={"Content-Type": f"application/json; charset={charset}"})
    assert resp.json()["code"] == "0", resp.json()
    assert rules(lenient) == [("http.charset", "warning")]
    assert lenient.last_entry()["body"]["data"][0]["vender"] == vender  # read as declared, not mojibake


def test_strict_refuses_a_non_utf8_charset(strict: Client):
    raw = json.dumps(GBK_BODY, ensure_ascii=False).encode("gbk")
    reply = strict.post("/query", data=raw, headers={"Content-Type": "application/json; charset=GBK"}).json()
    assert reply["code"] == "-1" and "charset gbk" in reply["message"] and "send UTF-8" in reply["message"]


def test_undeclared_non_utf8_says_send_utf8_or_declare(lenient: Client):
    raw = json.dumps(GBK_BODY, ensure_ascii=False).encode("gbk")
    reply = lenient.post("/query", data=raw, headers={"Content-Type": "application/json"}).json()
    assert reply["code"] == "-1"
    assert "not UTF-8" in reply["message"] and "send UTF-8, or declare the body's charset" in reply["message"]


def test_unknown_charset_is_named(lenient: Client):
    raw = json.dumps(GBK_BODY, ensure_ascii=False).encode("gbk")
    reply = lenient.post("/query", data=raw, headers={"Content-Type": "application/json; charset=klingon"}).json()
    assert reply["code"] == "-1" and "charset=klingon" in reply["message"]


# -- Content-Encoding -------------------------------------------------------------------------

def test_x_gzip_is_gzip(lenient: Client):
    raw = gzip.compress(json.dumps(QUERY).encode())
    reply = lenient.post("/query", data=raw, headers={"Content-Type": "application/json", "Content-Encoding": "x-gzip"}).json()
    assert reply["code"] == "0", reply


def test_stacked_codings_are_undone_last_first(lenient: Client):
    raw = zlib.compress(gzip.compress(json.dumps(QUERY).encode()))  # gzip applied first, then deflate
    reply = lenient.post("/query", data=raw, headers={"Content-Type": "application/json",
                                                      "Content-Encoding": "gzip, deflate"}).json()
    assert reply["code"] == "0", reply
    raw = gzip.compress(gzip.compress(json.dumps(QUERY).encode()))
    reply = lenient.post("/query", data=raw, headers={"Content-Type": "application/json",
                                                      "Content-Encoding": "gzip, gzip"}).json()
    assert reply["code"] == "0", reply


@pytest.mark.parametrize("client_name", ["lenient", "strict"])
def test_unsupported_coding_is_named(request, client_name):
    client = request.getfixturevalue(client_name)
    reply = client.post("/query", data=json.dumps(QUERY).encode(),
                        headers={"Content-Type": "application/json", "Content-Encoding": "br"}).json()
    assert reply["code"] == "-1"
    assert "Content-Encoding br is not supported; send gzip, deflate or none" in reply["message"]


def post_cut_short(url: str, body: bytes) -> dict:
    """POST ``body`` declaring 40 bytes more than it has, then close the sending side: the rest never comes."""
    host, port = url.removeprefix("http://").split(":")
    head = (f"POST /cre_test_upload HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body) + 40}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    reply = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert reply["code"] == "-1", reply
    assert f"{len(body):,} bytes arrived but Content-Length says {len(body) + 40:,}" in reply["message"]
    return reply


def test_body_shorter_than_content_length_is_refused_and_not_stored(lenient: Client):
    post_cut_short(lenient.url, json.dumps(cre_upload("1", [cre_item("cut")])).encode())
    assert "cut" not in lenient.cre_ids(path="/test-query")


# -- null for an optional field ---------------------------------------------------------------

NULL_ITEM = {"url": None, "expire_time": None, "vender": None, "geo": None, "extend": None}
NULL_PATHS = ["/data/0/expire_time", "/data/0/extend", "/data/0/geo", "/data/0/url", "/data/0/vender"]


def test_null_optional_fields_are_absent_in_lenient_mode(lenient: Client):
    upload = cre_upload("1", [cre_item("nul", **NULL_ITEM)], seq_no="3")
    assert lenient.post("/cre_test_upload", upload).json() == {"seq_no": "3", "code": "0", "message": "success"}
    found = lenient.last_entry()["violations"]
    assert sorted(v["path"] for v in found) == NULL_PATHS
    assert {(v["rule"], v["severity"]) for v in found} == {("lenient.null-field", "warning")}
    assert "omit the field instead of sending null" in found[0]["message"]
    assert "nul" in lenient.cre_ids(path="/test-query")  # stored and unexpired: expire_time null read as the default


def test_null_at_any_depth(lenient: Client):
    query = {**QUERY, "geo": {"city": None, "country": "CHN"}, "extend": {"k": None}, "request_num": None}
    assert lenient.post("/query", query).json()["code"] == "0"
    assert sorted(v["path"] for v in lenient.last_entry()["violations"]) == ["/extend/k", "/geo/city", "/request_num"]
    action = {"uid_type": "5", "uid": "u1", "oper_time": "1700000000", "source": "1", "action_id": "101",
              "item_action": [{"item_id": "a", "trace_id": None, "item_info": {"price": None}}]}
    upload = {"version": "1", "seq_no": "4", "data_type": "2", "token": "t", "data": [action]}
    assert lenient.post("/upload", upload).json()["code"] == "0"
    assert sorted(v["path"] for v in lenient.last_entry()["violations"]) == [
        "/data/0/item_action/0/item_info/price", "/data/0/item_action/0/trace_id"]


def test_null_optional_fields_are_errors_in_strict_mode(strict: Client):
    upload = cre_upload("1", [cre_item("nul", **NULL_ITEM)], seq_no="3")
    reply = strict.post("/cre_test_upload", upload).json()
    assert reply["code"] == "-1" and reply["seq_no"] == "3"
    assert "5 problems" in reply["message"] and "data[0].geo: null is not a value of this optional field" in reply["message"]
    assert "expected a string; got null" not in reply["message"]


@pytest.mark.parametrize("client_name", ["lenient", "strict"])
def test_null_required_field_says_required_and_null(request, client_name):
    client = request.getfixturevalue(client_name)
    reply = client.post("/query", {**QUERY, "scn_id": None}).json()
    assert reply["code"] == "-1" and reply["seq_no"] == "7"
    assert "scn_id: required field is null; send a value" in reply["message"]


# -- country codes ----------------------------------------------------------------------------

@pytest.mark.parametrize("sent, code", [("China", "CHN"), ("中国", "CHN"), ("CN", "CHN"), ("韩国", "KOR"),
                                        ("United States", "USA")])
def test_country_name_or_alpha2_suggests_the_code(lenient: Client, strict: Client, sent, code):
    query = {**QUERY, "geo": {"country": sent, "city": "深圳"}}
    assert lenient.post("/query", query).json()["code"] == "0"
    [warning] = lenient.last_entry()["violations"]
    assert (warning["path"], warning["rule"], warning["severity"]) == ("/geo/country", "lenient.country-code", "warning")
    assert f'send "{code}"' in warning["message"]
    reply = strict.post("/query", query).json()
    assert reply["code"] == "-1" and f'geo.country' in reply["message"] and f'send "{code}"' in reply["message"]


def test_unassigned_alpha3_warns(lenient: Client):
    assert lenient.post("/query", {**QUERY, "geo": {"country": "XYZ"}}).json()["code"] == "0"
    [warning] = lenient.last_entry()["violations"]
    assert warning["rule"] == "lenient.country-code" and "look the code up in ISO 3166-1" in warning["message"]
    assert lenient.post("/query", {**QUERY, "geo": {"country": "CHN"}}).json()["code"] == "0"
    assert lenient.last_entry()["violations"] == []


def test_flat_country_is_checked_too(lenient: Client, strict: Client):
    body = dm_item("flat", country="China")
    assert lenient.post("/dm/data", body).json()["code"] == 0
    found = {v["rule"]: v for v in lenient.last_entry()["violations"]}
    assert found["country-code"]["severity"] == "warning" and 'send "CHN"' in found["country-code"]["message"]
    assert "geo.country" in found["lenient.unknown-field"]["message"]
    reply = strict.post("/dm/data", dm_item("flat", country="China")).json()
    assert reply["code"] == -1 and 'send "CHN"' in reply["msg"]


def test_schema_country_list_is_iso_3166():
    import pycountry

    from mockcre.common.resources import load_schema

    assert set(load_schema("common")["$defs"]["country"]["enum"]) == {c.alpha_3 for c in pycountry.countries}


# -- scenarios: then.code as text, bundled ones by bare name ----------------------------------

CODE_AS_TEXT = """\
name: text-codes
rules:
  - when: {endpoint: cre.query, match: {user_id: busy}}
    then: {code: "-3", message: "no result"}
  - when: {endpoint: dm.service, match: {uid: busy}}
    then: {code: "-2", msg: "busy"}
"""


def test_then_code_as_text_answers_in_each_dialects_type(serve):
    client = serve()
    resp = client.session.post(client.url + "/__admin/scenarios", data=CODE_AS_TEXT.encode(), timeout=TIMEOUT)
    assert resp.status_code == 201, resp.text
    assert client.post("/query", {**QUERY, "user_id": "busy"}).json() == {"seq_no": "7", "code": "-3", "message": "no result"}
    body = {"MD5": "0" * 32, "request_id": "1700000000000_123", "bid": "b", "uid": "busy", "scene_id": "1",
            "pool_id": "p", "service_type": 3}
    assert client.post("/dm/service", body).json() == {"request_id": "1700000000000_123", "code": -2, "msg": "busy"}


def test_lint_rejects_a_code_that_is_no_number(tmp_path):
    from servekit import run_cli

    path = tmp_path / "bad.yaml"
    path.write_text(CODE_AS_TEXT.replace('"-3"', '"three"'), encoding="utf-8")
    done = run_cli("scenario", "lint", str(path))
    assert done.returncode == 1
    assert f'{path}:4:12: rules[0].then.code: expected an integer code, or a string holding one such as "-3"; got "three"' \
        in done.stdout, done.stdout


def test_bundled_scenarios_by_bare_name_everywhere(serve, tmp_path):
    from servekit import ServeProcess, run_cli

    done = run_cli("scenario", "lint", "shop", "errors.yaml")
    assert done.returncode == 0 and "2 files checked, 0 problems" in done.stdout, done.stdout + done.stderr
    client = serve({"scenarios": ["errors"]})
    assert client.post("/query", {**QUERY, "user_id": "error-3"}).json()["code"] == "-3"
    resp = client.session.post(client.url + "/__admin/scenarios", data=b"flaky", timeout=TIMEOUT)
    assert resp.status_code == 201 and resp.json()["name"] == "flaky", resp.text
    resp = client.session.post(client.url + "/__admin/scenarios", data=b"shpo", timeout=TIMEOUT)
    assert resp.status_code == 400 and "bundled: cold-start, errors, flaky, news-feed, shop, strict-auth" in resp.text
    resp = client.session.post(client.url + "/__admin/scenarios", data=b"a" * 5000, timeout=TIMEOUT)
    assert resp.status_code == 400, resp.text  # a name no file system takes is no scenario, not a 500
    with ServeProcess(tmp_path, "--scenario", "shop") as server:
        status, _, raw = server.request("POST", "/query", json.dumps({**QUERY, "user_id": "shopper001"}).encode(),
                                        {"Content-Type": "application/json"})
        reply = json.loads(raw)
        assert status == 200 and reply["code"] == "0" and reply["abtag"] == "9001", reply  # the shop's shoppers
        post_cut_short(server.url, json.dumps(cre_upload("1", [cre_item("cut")])).encode())  # the server reads short too
    done = run_cli("serve", "--port", "1", "--scenario", "shpo", timeout=30)
    assert done.returncode == 2 and "bundled: cold-start, errors, flaky, news-feed, shop, strict-auth" in done.stderr


def test_openapi_says_strict_refuses_other_content_types():
    from mockcre.tools.openapi import build

    paths = build()["paths"]
    for path in PATHS:
        assert "Strict mode refuses any Content-Type but application/json" in paths[path]["post"]["description"]


# -- a 2017 Java client: fastjson over commons-httpclient, POST / on the real dm hosts --------

JAVA_HEADERS = {"Content-Type": "application/json; charset=UTF-8", "User-Agent": "Jakarta Commons-HttpClient/3.1"}
DATA_HOST, SERVICE_HOST = "data.dm.qcloud.com:8088", "service.dm.qcloud.com:8088"


def java_item(n: int) -> dict:
    """Every integer as a string, MD5 "testmd5", a bare 13-digit request_id, flat and nested geo, null url."""
    return {"MD5": "testmd5", "request_id": str(1_500_000_000_000 + n), "data_type": "1", "bid": "b_java",
            "item_id": f"sku{n}", "publish": "1", "describe": "最新款黑色苹果7", "pool_id": "p1", "tags": "电器;科技;手机",
            "item_time": "1699000000", "expire_time": "1800000000", "free": "0", "score": str(9.5 - n), "price": "88.88",
            "platform": "1", "big_type": "电器", "url": None, "vender": "店铺", "latitude": "22.558220",
            "longitude": "114.084778", "city": "深圳",
            "geo": {"latitude": "22.558220", "longitude": "114.084778", "country": "China", "city": "深圳"}}


def java_action(n: int) -> dict:
    return {"MD5": "testmd5", "request_id": str(1_500_000_001_000 + n), "data_type": "2", "bid": "b_java", "uid_type": "3",
            "uid": "861234567890123", "item_id": "sku1", "scene_id": "1001", "action_type": str(n), "source": "tx",
            "trace_id": "trace-1", "action_time": "1699999000", "latitude": "22.558220", "longitude": "114.084778",
            "city": "深圳"}


JAVA_RECOMMEND = {"MD5": "testmd5", "service_type": "3", "request_id": "1500000002000", "bid": "b_java", "uid_type": "3",
                  "uid": "861234567890123", "scene_id": "1001", "request_num": "10", "pool_id": "p1", "cid": None,
                  "geo": {"latitude": "22.558220", "longitude": "114.084778", "country": "China", "city": "深圳"}}


def java_post(client: Client, host: str, body: dict) -> dict:
    raw = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")  # fastjson WriteMapNullValue
    resp = client.post("/", data=raw, headers={**JAVA_HEADERS, "Host": host})
    assert resp.status_code == 200
    return resp.json()


def java_ok(reply: dict) -> bool:
    """The client's own check: String.valueOf(json.get("code")).equals("0")."""
    return str(reply["code"]) == "0"


def test_java_client_is_served_in_lenient_mode(serve):
    client = serve()
    for n in (1, 2, 3):
        reply = java_post(client, DATA_HOST, java_item(n))
        assert java_ok(reply) and reply["request_id"] == str(1_500_000_000_000 + n), reply
    for n in (1, 2):
        assert java_ok(java_post(client, DATA_HOST, java_action(n)))
    reply = java_post(client, SERVICE_HOST, JAVA_RECOMMEND)
    assert java_ok(reply), reply
    items = [(e["item"], e["weight"]) for e in reply["data"]]  # data[].item, data[].weight as the client reads them
    assert {i for i, _ in items} == {"sku1", "sku2", "sku3"}
    assert all(isinstance(i, str) and isinstance(w, int) and 0 <= w <= 1_000_000 for i, w in items)
    assert items[0][0] == "sku1"  # exposed and clicked: ranked first
    entries = client.journal()
    assert [e["endpoint"] for e in entries] == ["dm.data"] * 5 + ["dm.service"]
    rules = {v["rule"] for e in entries for v in e["violations"]}
    assert {"lenient.coerced-type", "md5-shape", "request-id-shape", "lenient.unknown-field",
            "lenient.country-code", "lenient.null-field"} <= rules
    assert all(v["severity"] == "warning" for e in entries for v in e["violations"])
    report = client.session.get(client.url + "/__admin/report", timeout=TIMEOUT).json()
    assert (report["totals"]["items"], report["totals"]["actions"], report["totals"]["requests"]) == (3, 2, 1)
    assert report["findings"] == []  # the warnings make no finding of their own: a clean, accepted integration


@pytest.mark.parametrize("host, body, fragments", [
    (DATA_HOST, java_item(1), ['data_type: expected 1', "MD5: expected 32 hexadecimal digits", 'request_id: expected',
                               "latitude: not a field", "city: not a field", 'send "CHN"', "url: null is not a value"]),
    (DATA_HOST, java_action(1), ["action_type: expected one of", "uid_type: expected one of", "longitude: not a field"]),
    (SERVICE_HOST, JAVA_RECOMMEND, ["service_type: expected one of", "request_num: expected an integer",
                                    "cid: null is not a value"]),
], ids=["item", "action", "recommend"])
def test_java_client_is_refused_in_strict_mode(strict: Client, host, body, fragments):
    reply = java_post(strict, host, body)
    assert reply["code"] == -1 and not java_ok(reply) and reply["request_id"] == body["request_id"]
    for fragment in fragments:
        assert fragment in reply["msg"], (fragment, reply["msg"])
