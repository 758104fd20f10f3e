"""Every security- and contract-relevant guard at its boundary and against its near miss, over real HTTP.

A guard tested only with a plainly good and a plainly bad value survives the mutations that matter:
``startswith`` for ``==``, ``<`` for ``<=``, ``search`` for ``fullmatch``. Each test here sends the value
that sits next to the boundary (an allowed origin as the prefix of the one sent, a body one byte over
the limit, an 8-character secret) to a real server, the way a client or a browser page would.
"""

from __future__ import annotations

import gzip
import json
import socket
import ssl
import zlib

import pytest
import requests

from httpkit import (TIMEOUT, Client, cre_item, cre_query, cre_upload, dm_item, fixed_clock, free_port,
                     start, stop_soon)
from mockcre.pipeline.config import parse_origin
from mockcre.faces.proxy import create_proxy_app
from mockcre.faces.server import ThreadedServer
from servekit import ServeProcess, started_servers

JSON = {"Content-Type": "application/json"}


def exactly(body: dict, size: int) -> bytes:
    """``body`` as JSON padded with trailing spaces to exactly ``size`` bytes (spaces are valid JSON)."""
    text = json.dumps(body).encode()
    assert len(text) <= size, (len(text), size)
    return text + b" " * (size - len(text))


def rules(entry: dict) -> list[str]:
    return [v["rule"] for v in entry["violations"]]


@pytest.fixture
def server():
    """Factory: ``server(config)`` is a started in-process mockcre app and a client on it."""
    started = []

    def make(config: dict | None = None) -> Client:
        running = start(config)
        client = Client(running.url)
        client.server = running
        client.port = int(running.url.rsplit(":", 1)[1])
        started.append(client)
        return client

    yield make
    for client in started:
        client.session.close()
        stop_soon(client.server)


# -- the admin API's Host allow-list (DNS rebinding) -------------------------------------------------------------

@pytest.mark.parametrize("host, allowed", [
    ("127.0.0.1", True), ("localhost", True), ("mock.example", True), ("MOCK.example:9000", True),
    ("evil.mock.example", False),     # the allowed name as a suffix
    ("mock.example.evil", False),     # the allowed name as a prefix
    ("mock.exampl", False),           # one character short
    ("127.0.0.1.evil.example", False),
    ("evil127.0.0.1", False),
    ("localhost.evil", False),
    ("", False),
])
def test_the_admin_host_allow_list_matches_whole_names_only(server, host, allowed):
    client = server({"allowed_hosts": ["mock.example"]})
    reply = client.session.get(client.url + "/__admin/health", headers={"Host": host}, timeout=TIMEOUT)
    assert reply.status_code == (200 if allowed else 403), (host, reply.text)
    if not allowed:
        assert "DNS rebinding" in reply.json()["message"]


def test_allowed_host_from_the_command_line_is_no_suffix_rule(tmp_path):
    with started_servers(ServeProcess, tmp_path) as serve:
        running = serve("--allowed-host", "mock.example")
        for host, status in [("mock.example", 200), ("api.mock.example", 403), ("mock.example.evil", 403),
                             (f"127.0.0.1:{running.port}", 200)]:
            assert running.request("GET", "/__admin/health", headers={"Host": host})[0] == status, host


# -- cross-site writes to the admin API -----------------------------------------------------------------------

def test_an_admin_write_needs_exactly_the_servers_own_origin(server):
    client = server()
    own = f"http://127.0.0.1:{client.port}"

    def clear(origin: str) -> int:
        return client.session.delete(client.url + "/__admin/journal", headers={"Origin": origin},
                                     timeout=TIMEOUT).status_code

    assert clear(own) == 200
    assert clear(own.upper().replace("HTTP", "http")) == 200  # host names are case-blind
    for near in (own + ".evil.example", f"http://evil127.0.0.1:{client.port}", own + "1", own[:-1],
                 f"https://127.0.0.1:{client.port}", f"http://localhost:{client.port}", "null"):
        assert clear(near) == 403, near
    # reads are not refused: a page on another origin cannot read the reply anyway
    assert client.session.get(client.url + "/__admin/journal", headers={"Origin": own + ".evil.example"},
                              timeout=TIMEOUT).status_code == 200


@pytest.mark.parametrize("site, status", [("same-origin", 200), ("none", 200), ("NONE", 200),
                                          ("same-site", 403), ("cross-site", 403), ("", 403)])
def test_each_sec_fetch_site_value_on_an_admin_write(server, site, status):
    client = server()
    reply = client.session.post(client.url + "/__admin/reset", headers={"Sec-Fetch-Site": site}, timeout=TIMEOUT)
    assert reply.status_code == status, (site, reply.text)
    if status == 403:
        assert f"Sec-Fetch-Site: {site}" in reply.json()["message"]


# -- CORS allow-list on the API ---------------------------------------------------------------------------------

ALLOWED_ORIGIN = "http://127.0.0.1:8088"


@pytest.mark.parametrize("origin, allowed", [
    (ALLOWED_ORIGIN, True), ("HTTP://127.0.0.1:8088", True),
    ("http://127.0.0.1:8088.evil.example", False), ("http://evil127.0.0.1:8088", False),
    ("http://127.0.0.1:808", False), ("http://127.0.0.1:80881", False), ("https://127.0.0.1:8088", False),
])
def test_the_cors_allow_list_matches_whole_origins_only(server, origin, allowed):
    client = server({"cors_origins": [ALLOWED_ORIGIN]})
    preflight = client.session.options(client.url + "/query", timeout=TIMEOUT, headers={
        "Origin": origin, "Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"})
    assert preflight.status_code == (204 if allowed else 403), origin
    post = client.post("/query", cre_query("u1"), headers={"Origin": origin})
    assert post.status_code == 200
    assert post.headers.get("Access-Control-Allow-Origin") == (origin if allowed else None), origin
    assert post.headers["Vary"] == "Origin"


def test_an_allowed_preflight_grants_exactly_what_the_page_asks(server):
    client = server({"cors_origins": [ALLOWED_ORIGIN]})
    asked = {"Origin": ALLOWED_ORIGIN, "Access-Control-Request-Method": "POST",
             "Access-Control-Request-Headers": "content-type, x-trace"}
    plain = client.session.options(client.url + "/upload", headers=asked, timeout=TIMEOUT)
    assert plain.status_code == 204 and plain.reason == "No Content"
    assert {k: v for k, v in plain.headers.items() if k.startswith("Access-Control-") or k == "Vary"} == {
        "Access-Control-Allow-Origin": ALLOWED_ORIGIN, "Vary": "Origin", "Access-Control-Allow-Methods": "POST",
        "Access-Control-Max-Age": "600", "Access-Control-Allow-Headers": "content-type, x-trace"}
    private = client.session.options(client.url + "/upload", timeout=TIMEOUT, headers={
        "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Private-Network": "true"})
    assert private.headers["Access-Control-Allow-Private-Network"] == "true"
    assert "Access-Control-Allow-Headers" not in private.headers
    for near in ("TRUE", "false"):
        other = client.session.options(client.url + "/upload", timeout=TIMEOUT, headers={
            "Origin": ALLOWED_ORIGIN, "Access-Control-Request-Private-Network": near})
        assert "Access-Control-Allow-Private-Network" not in other.headers, near


def test_a_refused_preflight_says_why_in_json(server):
    client = server({"cors_origins": [ALLOWED_ORIGIN]})
    near = ALLOWED_ORIGIN + ".evil.example"
    reply = client.session.options(client.url + "/query", headers={"Origin": near}, timeout=TIMEOUT)
    assert (reply.status_code, reply.reason) == (403, "Forbidden")
    assert reply.headers["Content-Type"] == "application/json"
    assert int(reply.headers["Content-Length"]) == len(reply.content)
    assert reply.json() == {"error": "Forbidden", "status": 403, "message": f"origin {near} may not call this API: "
                            "the server allows only the origins given with --cors-origin (cors_origins)"}
    assert "Access-Control-Allow-Origin" not in reply.headers


@pytest.mark.parametrize("path", ["/__admin/health", "/__admin/", "/not-an-endpoint"])
def test_no_cors_headers_outside_the_api(server, path):
    client = server()
    reply = client.session.get(client.url + path, headers={"Origin": ALLOWED_ORIGIN}, timeout=TIMEOUT)
    assert not [k for k in reply.headers if k.lower().startswith("access-control-")], reply.headers


def test_the_proxy_drops_the_upstreams_cors_headers_for_its_own(tmp_path):
    """The upstream (any origin allowed) grants a near-miss origin; the proxy's allow-list must not."""
    upstream = start()
    proxy = ThreadedServer(create_proxy_app(upstream.url, {"clock": fixed_clock(), "cors_origins": [ALLOWED_ORIGIN]},
                                            timeout=TIMEOUT)).start()
    try:
        near = ALLOWED_ORIGIN + ".evil.example"
        direct = requests.post(upstream.url + "/query", json=cre_query("u1"), headers={"Origin": near}, timeout=TIMEOUT)
        assert direct.headers["Access-Control-Allow-Origin"] == near
        reply = requests.post(proxy.url + "/query", json=cre_query("u1"), headers={"Origin": near}, timeout=TIMEOUT)
        assert reply.status_code == 200 and reply.json()["code"] == "0"
        assert [k for k in reply.headers if k.lower().startswith("access-control-")] == []
        allowed = requests.post(proxy.url + "/query", json=cre_query("u1"), headers={"Origin": ALLOWED_ORIGIN},
                                timeout=TIMEOUT)
        assert [(k, v) for k, v in allowed.headers.items() if k.lower().startswith("access-control-")] == [
            ("Access-Control-Allow-Origin", ALLOWED_ORIGIN)]
    finally:
        stop_soon(proxy)
        stop_soon(upstream)


@pytest.mark.parametrize("given, origin", [("HTTP://Example.com:3000/", "http://example.com:3000"),
                                           (" https://a.example ", "https://a.example")])
def test_cors_origin_is_read_as_a_browser_sends_it(given, origin):
    assert parse_origin(given) == origin


@pytest.mark.parametrize("given", ["ftp://a.example", "http://", "http://a.example/app", "http://a.example/?x=1",
                                   "a.example:3000"])
def test_a_cors_origin_with_a_path_query_or_other_scheme_is_refused(given):
    with pytest.raises(ValueError, match=r"expected scheme://host\[:port\], e.g. http://localhost:3000"):
        parse_origin(given)

# -- secret masking in the journal ------------------------------------------------------------------------------

@pytest.mark.parametrize("secret, shown", [("abcdefg", "…"), ("abcdefgh", "…"), ("abcdefghi", "abcd…")])
def test_a_secret_of_eight_characters_or_fewer_is_masked_whole(server, secret, shown):
    client = server()
    client.post("/query", cre_query("u1", token=secret), headers={"X-Api-Key": secret})
    raw = client.session.get(client.url + "/__admin/journal", timeout=TIMEOUT).text
    entry = client.last_entry()
    assert entry["body"]["token"] == shown
    assert entry["headers"]["X-Api-Key"] == shown
    assert secret not in raw
    assert secret[:5] not in raw  # never more than four characters of it


# -- short bodies --------------------------------------------------------------------------------------------

def raw_post(port: int, path: str, body: bytes, content_length: int, extra: str = "") -> tuple[int, bytes]:
    """POST ``body`` under a ``Content-Length`` of our choosing, then close our side: (status, reply body)."""
    head = (f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {content_length}\r\nConnection: close\r\n{extra}\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as sock:
        sock.sendall(head + body)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    reply = b"".join(chunks)
    status = int(reply.split(b" ", 2)[1])
    return status, reply.partition(b"\r\n\r\n")[2]


@pytest.mark.parametrize("declared, cut_off", [("exact", False), ("one more", True), (1000, True), (1001, True),
                                               (50_000, True)])
def test_a_body_one_byte_short_of_its_content_length_is_refused(server, declared, cut_off):
    """Also when the Content-Length is over the body limit (1,000): the server reads no further than the
    limit, yet a body that ends before it is still a cut-off one."""
    client = server({"max_body_bytes": 1000})
    body = json.dumps(cre_query("u1")).encode()
    declared = {"exact": len(body), "one more": len(body) + 1}.get(declared, declared)
    status, reply = raw_post(client.port, "/query", body, declared)
    assert status == 200
    assert (json.loads(reply)["code"] == "-1") is cut_off, reply
    assert rules(client.last_entry()) == (["http.content-length"] if cut_off else [])
    if cut_off:
        assert f"{len(body):,} bytes arrived but Content-Length says {declared:,}" in \
            json.loads(reply)["message"]


# -- charsets ---------------------------------------------------------------------------------------------------

def test_bytes_not_valid_in_the_declared_charset_are_refused_naming_the_byte(server):
    client = server()
    body = json.dumps(cre_query("用户"), ensure_ascii=False)
    good = client.post("/query", data=body.encode("gbk"), headers={"Content-Type": "application/json; charset=gbk"})
    assert good.json()["code"] == "0"
    assert rules(client.last_entry()) == ["http.charset"]  # decoded as declared, with a warning
    assert client.last_entry()["body"]["user_id"] == "用户"
    broken = body.encode("gbk").replace("用户".encode("gbk"), b"\xff\xfe")  # 0xff is no GBK lead byte
    offset = broken.index(b"\xff")
    bad = client.post("/query", data=broken, headers={"Content-Type": "application/json; charset=GBK"})
    assert bad.json()["code"] == "-1"
    assert f"byte 0xff at offset {offset}" in bad.json()["message"]
    assert client.last_entry()["violations"][0]["severity"] == "error"
    unknown = client.post("/query", data=body.encode("utf-8"), headers={"Content-Type": "application/json; charset=klingon"})
    assert "charset=klingon" in unknown.json()["message"]
    # an ASCII body under any charset needs no decoding and draws no warning
    assert client.post("/query", cre_query("u1"), headers={"Content-Type": "application/json; charset=gbk"}).ok
    assert rules(client.last_entry()) == []


@pytest.mark.parametrize("charset", ["utf-8", "UTF8", '"utf-8"'])
def test_invalid_utf8_under_a_utf8_charset_is_refused(server, charset):
    client = server()
    good = json.dumps(cre_query("用户"), ensure_ascii=False).encode()
    assert client.post("/query", data=good, headers={"Content-Type": f"application/json; charset={charset}"}
                       ).json()["code"] == "0"
    assert rules(client.last_entry()) == []
    reply = client.post("/query", data=good.replace("用".encode(), b"\xe7\x94"),
                        headers={"Content-Type": f"application/json; charset={charset}"})
    assert reply.json()["code"] == "-1" and "not UTF-8" in reply.json()["message"]


# -- bodies that are not a JSON object, each told by its own exact violation ------------------------------------

QUERY = json.dumps(cre_query("u1"))[1:-1]  # the fields of a valid /query, to put around a broken value
UNREADABLE_BODIES = {  # what is sent: the json.* violations the journal keeps, as (pointer, message, severity, rule)
    "blank": (b"  ", [("", "body is empty; expected a JSON object", "error", "json.empty")]),
    "byte-order mark": ("\ufeff{%s}" % QUERY,
                        [("", "body starts with a UTF-8 byte-order mark; it was ignored", "warning", "json.bom")]),
    "not UTF-8": (b'{"a": "\xff"}', [("", "body is not UTF-8: byte 0xff at offset 7 cannot be decoded; send UTF-8, or "
                                      "declare the body's charset (Content-Type: application/json; charset=GBK)",
                                      "error", "json.encoding")]),
    "syntax": (b'{"a": }', [("", "body is not valid JSON at line 1 column 7: Expecting value", "error", "json.syntax")]),
    "NaN": (b'{"a": NaN}', [("", "body is not valid JSON: NaN is not valid JSON (the JSON standard has no NaN or "
                                 "Infinity)", "error", "json.syntax")]),
    # an overflowing number is quoted whole up to 20 characters, then cut with an ellipsis; one line is no "JSON lines"
    "overflow, 20 characters": (b'{"a": 1000000000000000e400}', [
        ("", "body is not valid JSON: the number 1000000000000000e400 overflows (no JSON consumer can hold it)",
         "error", "json.syntax")]),
    "overflow, 21 characters": (b'{"a": 10000000000000000e400}', [
        ("", "body is not valid JSON: the number 10000000000000000e40\u2026 overflows (no JSON consumer can hold it)",
         "error", "json.syntax")]),
    "JSON lines": (b'{"a": 1}\n{"a": 2}\n', [
        ("", "body is not valid JSON at line 2 column 1: Extra data; these are 2 JSON values, one per line (JSON lines): "
             "send one JSON object per request (mockcre validate reads a file named .jsonl line by line)",
         "error", "json.syntax")]),
    "lone surrogate": (b'{"a": "\\ud800"}', [
        ("", "body holds a lone UTF-16 surrogate escape (such as \\ud800): valid JSON syntax but not Unicode text, "
             "and no UTF-8 consumer can read it", "error", "json.encoding")]),
    "lone surrogate among 65 brackets": (b'[' + b'{}, ' * 64 + b'{"a": "\\udc00"}]', [
        ("", "body holds a lone UTF-16 surrogate escape (such as \\ud800): valid JSON syntax but not Unicode text, "
             "and no UTF-8 consumer can read it", "error", "json.encoding")]),
    "too deep for the parser": (b"[" * 100_000, [
        ("", "body nests too deep to parse; at most 64 levels are accepted", "error", "json.depth")]),
    "65 levels": (b"[" * 65 + b"]" * 65, [("", "body nests deeper than 64 levels", "error", "json.depth")]),
    "a repeated key": ('{%s, "user_id": "u2", "user_id": "u3"}' % QUERY, [
        ("/user_id", "key 'user_id' appears 3 times in the same object; JSON parsers disagree on which value wins "
                     "(here: the last)", "error", "json.duplicate-key")]),
    "one byte over the limit": (b"[" + b" " * 999 + b"]", [
        ("", "body exceeds the limit of 1,000 bytes (mockcre serve --max-body-bytes)", "error", "limit.body-size")]),
}


@pytest.mark.parametrize("case", UNREADABLE_BODIES)
def test_each_unreadable_body_is_told_by_its_exact_violation(server, case):
    """The journal keeps each violation whole, and a refusal's -1 message carries the error's text."""
    sent, expected = UNREADABLE_BODIES[case]
    client = server({"max_body_bytes": 1000} if case == "one byte over the limit" else None)
    reply = client.post("/query", data=sent.encode() if isinstance(sent, str) else sent, headers=JSON).json()
    kept = [(v["path"], v["message"], v["severity"], v["rule"]) for v in client.last_entry()["violations"]
            if v["rule"].startswith(("json.", "limit."))]
    assert kept == expected
    if expected[0][2] == "error":
        assert reply["code"] == "-1" and expected[0][1] in reply["message"], reply
    else:
        assert reply["code"] == "0", reply


def test_a_body_of_exactly_the_limit_is_read(server):
    client = server({"max_body_bytes": 1000})
    assert client.post("/query", data=exactly(cre_query("u1"), 1000), headers=JSON).json()["code"] == "0"


def nested(levels: int, leaf: str = '"x"') -> str:
    """``levels`` of alternating objects and lists around ``leaf``, the innermost an object, each object with
    a string holding one escaped quote (an odd count) and one ending in an escaped backslash (what the
    bracket count must see through). Each pass of the count takes away an object and a list, so 64 levels
    are read in 32 passes."""
    text = leaf
    for level in range(levels):
        text = (f'{{"q": "say \\"hi", "b": "C:\\\\", "a": {text}}}' if level % 2 == 0 else f"[{text}]")
    return text


@pytest.mark.parametrize("body, too_deep", [
    (f"[{nested(63)}, [], {{}}]", False),  # 64 levels and 66 brackets: more than 64 open, so the text is read
    ("[" * 64 + "]" * 64, False),  # 64 open in all: cannot be deeper than 64, nothing more to read
    (f"[{nested(64)}, [], {{}}]", True),
])
def test_the_depth_limit_is_read_off_the_brackets_without_walking_an_allowed_body(server, monkeypatch, body, too_deep):
    """64 levels pass and 65 do not; a body whose strings hold no bracket is judged from its text alone
    (walking it was half a large upload's time), even with escaped quotes and backslashes in its strings."""
    from mockcre.contracts import jsonbody

    walked = []
    walk = jsonbody._walk_too_deep
    monkeypatch.setattr(jsonbody, "_walk_too_deep", lambda body: walked.append(1) or walk(body))
    client = server()
    client.post("/query", data=body.encode(), headers=JSON)
    assert ("json.depth" in rules(client.last_entry())) is too_deep
    assert walked == ([1] if too_deep else [])


# -- content codings --------------------------------------------------------------------------------------------

def deflate(data: bytes) -> bytes:
    return zlib.compress(data)


@pytest.mark.parametrize("encoding, encode, accepted", [
    ("gzip", gzip.compress, True),
    ("x-gzip", gzip.compress, True),
    ("deflate", deflate, True),
    ("identity", lambda b: b, True),
    ("deflate, gzip", lambda b: gzip.compress(deflate(b)), True),    # applied in the order listed
    ("gzip, deflate", lambda b: gzip.compress(deflate(b)), False),   # the same bytes, the order misstated
    ("gzip, identity", gzip.compress, True),
    ("br", lambda b: b, False),
    ("gzip", lambda b: gzip.compress(b)[:-8], False),                # cut short: all data, no CRC trailer
    ("gzip", lambda b: gzip.compress(b)[:-9], False),                # cut short inside the data
    ("deflate", gzip.compress, False),                               # gzip bytes called deflate
])
def test_content_codings_stacked_unknown_and_broken(server, encoding, encode, accepted):
    client = server()
    body = json.dumps(dm_item("z")).encode()
    reply = client.post("/dm/data", data=encode(body), headers={**JSON, "Content-Encoding": encoding})
    assert reply.status_code == 200
    assert (reply.json()["code"] == 0) is accepted, (encoding, reply.json())
    assert rules(client.last_entry()) == ([] if accepted else ["http.encoding"])


def test_a_compressed_body_counts_its_decompressed_size_to_the_byte(server):
    client = server({"max_body_bytes": 2000})
    at_limit = exactly(cre_upload("1", [cre_item("a")]), 2000)
    assert client.post("/upload", data=gzip.compress(at_limit), headers={**JSON, "Content-Encoding": "gzip"}
                       ).json()["code"] == "0"
    over = client.post("/upload", data=gzip.compress(at_limit + b" "), headers={**JSON, "Content-Encoding": "gzip"})
    assert over.json()["code"] == "-1"
    assert rules(client.last_entry()) == ["limit.body-size"]


# -- limits on the proxy ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def proxied():
    """A serve with large limits behind a proxy with small ones: whatever is refused, the proxy refused."""
    upstream = start()
    proxy = ThreadedServer(create_proxy_app(upstream.url, {"clock": fixed_clock(), "max_body_bytes": 2000,
                                                           "max_batch_records": 3}, timeout=TIMEOUT)).start()
    yield Client(proxy.url)
    stop_soon(proxy)
    stop_soon(upstream)


def test_the_proxy_body_limit_at_the_byte(proxied):
    at_limit = exactly(cre_upload("1", [cre_item("a")]), 2000)
    assert proxied.post("/upload", data=at_limit, headers=JSON).json()["code"] == "0"
    assert proxied.last_entry()["upstream"]["error"] is None
    over = proxied.post("/upload", data=at_limit + b" ", headers=JSON).json()
    assert over["code"] == "-1" and "2,000" in over["message"]
    assert "not forwarded" in proxied.last_entry()["upstream"]["error"]
    assert "limit.body-size" in rules(proxied.last_entry())


def test_the_proxy_batch_limit_at_the_record(proxied):
    assert proxied.post("/upload", cre_upload("1", [cre_item(i) for i in range(3)])).json()["code"] == "0"
    assert rules(proxied.last_entry()) == []
    proxied.post("/upload", cre_upload("1", [cre_item(i) for i in range(4)]))
    assert rules(proxied.last_entry()) == ["limit.batch-records"]


def test_proxy_max_batch_records_from_the_command_line(tmp_path):
    upstream = start()
    try:
        class Proxy(ServeProcess):
            command = "proxy"

        with started_servers(Proxy, tmp_path) as run:
            proxy = run("--upstream", upstream.url, "--max-batch-records", "2")
            for count, refused in [(2, False), (3, True)]:
                body = json.dumps(cre_upload("1", [cre_item(i) for i in range(count)])).encode()
                status, _, _ = proxy.request("POST", "/upload", body, JSON)
                assert status == 200
                entry = json.loads(proxy.request("GET", "/__admin/journal?limit=1")[2])["entries"][-1]
                assert (rules(entry) == ["limit.batch-records"]) is refused, (count, entry["violations"])
                if refused:
                    assert "limit is 2" in entry["violations"][0]["message"]
    finally:
        stop_soon(upstream)


def test_the_admin_scenario_upload_limit_at_the_byte(server):
    client = server({"max_body_bytes": 1000})
    scenario = b"name: padded\nrules:\n  - when: {endpoint: cre.query}\n    then: {recommend: [a]}\n"
    at_limit = scenario + b"#" * (1000 - len(scenario))
    assert client.session.post(client.url + "/__admin/scenarios", data=at_limit, timeout=TIMEOUT).status_code == 201
    over = client.session.post(client.url + "/__admin/scenarios", data=at_limit + b"#", timeout=TIMEOUT)
    assert over.status_code == 413 and "1,000" in over.json()["message"]


# -- matching operators -----------------------------------------------------------------------------------------

def test_a_regex_matches_anywhere_unless_anchored(server):
    client = server()
    yaml = b"""name: anchors
rules:
  - when: {endpoint: cre.query, match: {user_id: {regex: "^vip-"}}}
    then: {recommend: [anchored]}
  - when: {endpoint: cre.query, match: {user_id: {regex: "gold"}}}
    then: {recommend: [anywhere]}
"""
    assert client.session.post(client.url + "/__admin/scenarios", data=yaml, timeout=TIMEOUT).status_code == 201

    def ids(user: str) -> list[str]:
        return [e["id"] for e in client.cre_query(user_id=user)["rec"]["0"]]

    assert ids("vip-1") == ["anchored"]
    assert ids("x-vip-1") == []           # ^ anchors at the start
    assert ids("gold") == ["anywhere"]
    assert ids("the-gold-one") == ["anywhere"]  # unanchored: found inside
    assert ids("gol") == []


# -- the TLS minimum --------------------------------------------------------------------------------------------

def _handshake(port: int, version: ssl.TLSVersion) -> str:
    """The protocol a client limited to exactly ``version`` agrees with the server, or the error's text."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    if version < ssl.TLSVersion.TLSv1_2:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")  # OpenSSL 3 refuses to even offer TLS 1.1 at level 1
    context.minimum_version = context.maximum_version = version
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT) as raw, \
                context.wrap_socket(raw) as tls:
            return tls.version()
    except (ssl.SSLError, ConnectionError) as exc:
        return f"refused: {exc}"


def _can_offer_tls11() -> bool:
    """Whether this OpenSSL still lets a client send a TLS 1.1 ClientHello (some builds cannot at all)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    try:
        context.set_ciphers("DEFAULT:@SECLEVEL=0")
        context.minimum_version = context.maximum_version = ssl.TLSVersion.TLSv1_1
    except (ValueError, ssl.SSLError):
        return False
    return True


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
def test_serve_tls_takes_a_tls12_only_client_and_refuses_tls11(tmp_path):
    port = free_port()
    with started_servers(ServeProcess, tmp_path) as serve:
        serve("--tls-port", str(port), cwd=tmp_path)  # the CA file is written to the working folder
        assert _handshake(port, ssl.TLSVersion.TLSv1_2) == "TLSv1.2"
        assert _handshake(port, ssl.TLSVersion.TLSv1_3) == "TLSv1.3"
        if _can_offer_tls11():
            assert _handshake(port, ssl.TLSVersion.TLSv1_1).startswith("refused")


def test_the_server_context_names_tls12_as_the_minimum(tmp_path):
    """The setting itself, for machines whose OpenSSL can no longer make a TLS 1.1 client at all."""
    import ssl

    from mockcre.faces import tls
    with tls.serving_certificates(ca_out=str(tmp_path / "ca.pem")) as certs:
        assert certs.server_context().minimum_version == ssl.TLSVersion.TLSv1_2
