"""Issue 22: what an adversarial pass broke, attacked again over real HTTP on every face.

The faces: ``mockcre serve`` (a subprocess), the plain-HTTP door of ``serve --tls-port``, the test
handle ``mockcre.testing.MockcreServer`` and ``mockcre proxy`` in front of a serve. Replies are read
off the socket as bytes where what matters is what went onto the wire (an injected header line).
Everything talks to 127.0.0.1 and every wait is bounded.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import sys
import time

import pytest
import requests

from httpkit import TIMEOUT, dm_recommend, free_port
from servekit import ServeProcess, run_cli, started_servers

from mockcre.testing import MockcreServer

FACES = ("serve", "tls-plain", "handle", "proxy")

SPLITTING = """\
name: split
rules:
  - name: why
    when: {endpoint: dm.service}
    then:
      headers: {X-Why: "{{ request.request_id }}"}
      passthrough: true
"""


class Proxy(ServeProcess):
    command = "proxy"


@pytest.fixture
def start_face(tmp_path):
    """``start_face(face, scenario_text)`` -> the base URL of that face answering with the scenario."""
    with contextlib.ExitStack() as stack:
        serves = stack.enter_context(started_servers(ServeProcess, tmp_path))
        proxies = stack.enter_context(started_servers(Proxy, tmp_path))

        def start(face: str, scenario: str | None = None, *args: str) -> str:
            options = list(args)
            if scenario is not None:
                path = tmp_path / f"scenario-{len(list(tmp_path.glob('scenario-*')))}.yaml"
                path.write_text(scenario, encoding="utf-8")
                options = ["--scenario", str(path), *options]
            if face == "serve":
                return serves(*options).url
            if face == "tls-plain":
                return serves(*options, "--tls-port", str(free_port()), "--tls-ca-out", str(tmp_path / "ca.pem")).url
            if face == "proxy":
                upstream = serves(*options).url
                url = proxies("--upstream", upstream).url
                start.deciding[url] = upstream
                return url
            handle = MockcreServer(scenario=str(path) if scenario is not None else None, allow_violations=True)
            stack.enter_context(handle)
            return handle.url

        start.deciding = {}  # a proxy's URL -> the server whose scenarios decide (and journal why)
        yield start


def raw_exchange(url: str, path: str, body: bytes, content_type: str = "application/json") -> bytes:
    """The reply exactly as it came off the socket (the server closes after it)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=TIMEOUT) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {content_type}\r\n"
                     f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    return received


def head_and_body(reply: bytes) -> tuple[list[bytes], dict]:
    head, _, body = reply.partition(b"\r\n\r\n")
    return head.split(b"\r\n"), json.loads(body)


def journal(url: str) -> list[dict]:
    got = requests.get(url + "/__admin/journal", timeout=TIMEOUT)
    assert got.status_code == 200, got.text[:300]
    return got.json()["entries"]


# -- 1. no header can be injected through a template ----------------------------------------


@pytest.mark.parametrize("face", FACES)
def test_a_request_value_cannot_split_the_reply_or_inject_a_header(start_face, face):
    url = start_face(face, SPLITTING)
    attacks = {"CR LF": "r1\r\nSet-Cookie: injected=1\r\nContent-Type: text/html\r\n\r\n<script>alert(1)</script>",
               "LF": "r2\nX-Injected: 1", "CR": "r3\rX-Injected: 1", "NUL": "r4\x00", "non-ASCII": "r5中文"}
    for name, value in attacks.items():
        lines, reply = head_and_body(raw_exchange(url, "/dm/service", json.dumps(dm_recommend(request_id=value)).encode()))
        assert lines[0].startswith(b"HTTP/1.1 200"), (name, lines)
        assert not any(line.lower().startswith((b"set-cookie", b"x-injected", b"x-why")) for line in lines), (name, lines)
        assert not any(b"text/html" in line.lower() for line in lines), (name, lines)
        assert reply["code"] == -1 and reply["request_id"] == value, (name, reply)
        assert "reply header X-Why" in reply["msg"] and "request.request_id" in reply["msg"], reply["msg"]
    refused = [e["scenario"][0]["refused"] for e in journal(start_face.deciding.get(url, url)) if e["scenario"]]
    assert len(refused) == len(attacks) and all(r.startswith("reply header X-Why: holds ") for r in refused), refused
    assert "CR (U+000D)" in refused[0] and "U+4E2D" in refused[-1]


@pytest.mark.parametrize("face", FACES)
def test_a_tab_or_plain_text_in_a_templated_header_is_sent(start_face, face):
    """The near miss: TAB and printable ASCII are legal in a field value and go out as they came."""
    url = start_face(face, SPLITTING)
    for value in ("r1\tr2", "r-1 ~!@#$%^&*()"):
        reply = requests.post(url + "/dm/service", json=dm_recommend(request_id=value), timeout=TIMEOUT)
        assert reply.json()["code"] == -3, reply.text  # the engine answered: an empty store has nothing to rank
        assert reply.headers["X-Why"] == value


@pytest.mark.parametrize("status, header, expected", [
    (101, None, "rules[0].then.status: expected a value of at least 200"),
    (103, None, "rules[0].then.status: expected a value of at least 200"),
    (200, ("Content-Length", "3"), "header Content-Length frames the HTTP message"),
    (200, ("transfer-encoding", "chunked"), "header transfer-encoding frames the HTTP message"),
    (200, ("Connection", "close"), "header Connection frames the HTTP message"),
    (200, ("X Bad", "1"), "header name 'X Bad' is not an HTTP field name"),
    (200, ("X-Fixed", "a\u0085b"), "X-Fixed: the value holds control U+0085"),
])
def test_lint_and_every_load_refuse_interim_statuses_framing_headers_and_bad_names(start_face, tmp_path, status,
                                                                                 header, expected):
    headers = f"\n      headers: {json.dumps(dict([header]))}" if header else ""
    text = f"name: bad\nrules:\n  - when: {{endpoint: dm.service}}\n    then:\n      status: {status}{headers}\n      body: x\n"
    path = tmp_path / "bad.yaml"
    path.write_text(text, encoding="utf-8")
    linted = run_cli("scenario", "lint", str(path))
    assert linted.returncode == 1 and expected in linted.stdout, linted.stdout + linted.stderr
    url = start_face("serve")
    loaded = requests.post(url + "/__admin/scenarios", data=text.encode(), timeout=TIMEOUT)
    assert loaded.status_code == 400 and expected in loaded.text, loaded.text
    started = run_cli("serve", "--port", str(free_port()), "--scenario", str(path), timeout=30)
    assert started.returncode != 0 and expected in started.stderr + started.stdout


def test_status_200_and_an_ordinary_header_still_load(start_face):
    """The boundary of the refusals above: 200 and X-Custom with fixed text load and are sent."""
    url = start_face("serve", "name: ok\nrules:\n  - when: {endpoint: dm.service}\n    then:\n      status: 200\n"
                              "      headers: {X-Custom: \"fixed\\tvalue\"}\n      body: {code: 0}\n")
    reply = requests.post(url + "/dm/service", json=dm_recommend(), timeout=TIMEOUT)
    assert reply.status_code == 200 and reply.headers["X-Custom"] == "fixed\tvalue"


# -- 1 and 3. admin pages: CSP, no framing, confirmations, notices --------------------------

ADMIN_PAGES = ("/__admin/", "/__admin/store", "/__admin/report?format=html", "/__admin/journal", "/__admin/health",
               "/__admin/requests/999", "/__admin/nothing-here")


@pytest.mark.parametrize("face", FACES)
def test_every_admin_and_dashboard_page_forbids_inline_script_and_framing(start_face, face):
    url = start_face(face)
    for page in ADMIN_PAGES:
        got = requests.get(url + page, timeout=TIMEOUT)
        csp = got.headers.get("Content-Security-Policy", "")
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0], (page, csp)
        assert "frame-ancestors 'none'" in csp and got.headers.get("X-Frame-Options") == "DENY", page
        if "text/html" in got.headers.get("Content-Type", ""):
            assert "<script>" not in got.text and " on" not in got.text.split("<body")[1].split(">")[0], page
    script = requests.get(url + "/__admin/static/dashboard.js", timeout=TIMEOUT)
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]


@pytest.mark.parametrize("face", ("serve", "handle"))
def test_the_dashboard_shows_only_its_own_notices(start_face, face):
    url = start_face(face)
    forged = requests.get(url + "/__admin/?message=Call+555-0100+to+unlock&notice=forged", timeout=TIMEOUT)
    assert "555-0100" not in forged.text and 'class="message"' not in forged.text
    session = requests.Session()
    reset = session.post(url + "/__admin/ui/reset", allow_redirects=False, timeout=TIMEOUT)
    assert reset.status_code in (302, 303) and "notice=" in reset.headers["Location"]
    shown = session.get(url + reset.headers["Location"], timeout=TIMEOUT)
    assert "Store, journal and scenario states were reset." in shown.text


# -- 2. no scenario text can crash or hang the process --------------------------------------


def nested_scenario(depth: int, as_json: bool = False) -> bytes:
    """A loadable scenario whose lists and mappings nest ``depth`` levels (the raw body holds the deepest)."""
    inner = depth - 4  # the scenario, rules, the rule and its then are 4 levels
    body = "[" * inner + "]" * inner
    if as_json:
        return ('{"name": "deep", "rules": [{"when": {"endpoint": "dm.service"}, "then": {"body": %s}}]}' % body).encode()
    return f"name: deep\nrules:\n  - when: {{endpoint: dm.service}}\n    then: {{body: {body}}}\n".encode()


@pytest.mark.parametrize("face", FACES)
def test_scenario_depth_is_limited_before_anything_recursive_reads_it(start_face, face):
    url = start_face(face)
    for as_json in (False, True):
        at_limit = requests.post(url + "/__admin/scenarios", data=nested_scenario(64, as_json), timeout=TIMEOUT)
        assert at_limit.status_code == 201, at_limit.text
        over = requests.post(url + "/__admin/scenarios", data=nested_scenario(65, as_json), timeout=TIMEOUT)
        assert over.status_code == 400 and "deeper than 64 levels" in over.text, over.text
        # what crashed the worker: ~7,000 levels in 14 KB
        crash = requests.post(url + "/__admin/scenarios", data=nested_scenario(7_000, as_json), timeout=TIMEOUT)
        assert crash.status_code == 400 and crash.json()["problems"], crash.text
    assert requests.get(url + "/__admin/health", timeout=TIMEOUT).status_code == 200


def test_lint_and_serve_refuse_a_deep_file_with_a_problem_not_a_signal(tmp_path):
    deep = tmp_path / "deep.yaml"
    deep.write_bytes(nested_scenario(100_000))
    linted = run_cli("scenario", "lint", str(deep))
    assert linted.returncode == 1 and f"{deep}:4:" in linted.stdout, (linted.returncode, linted.stdout, linted.stderr)
    edge = tmp_path / "edge.json"
    edge.write_bytes(nested_scenario(65, as_json=True))
    linted = run_cli("scenario", "lint", str(edge))
    assert linted.returncode == 1 and "deeper than 64 levels" in linted.stdout
    started = run_cli("serve", "--port", str(free_port()), "--scenario", str(edge), timeout=30)
    assert started.returncode not in (0, -11, 139) and "deeper than 64 levels" in started.stdout + started.stderr


@pytest.mark.parametrize("face", ("serve", "handle"))
@pytest.mark.parametrize("tag, value", [("!!binary", "aGVsbG8="), ("!!timestamp", "2017-01-01"), ("!!set", "'{a, b}'")])
def test_non_json_yaml_tags_are_refused_naming_the_tag(start_face, face, tag, value):
    url = start_face(face)
    got = requests.post(url + "/__admin/scenarios", data=f"name: tagged\ndescription: {tag} {value}\n".encode(),
                        timeout=TIMEOUT)
    assert got.status_code == 400 and f"the tag {tag} is not allowed" in got.text, got.text
    plain = requests.post(url + "/__admin/scenarios", data=f"name: dated\ndescription: {value}\n".encode(), timeout=TIMEOUT)
    assert plain.status_code == 201, plain.text  # untagged, the same value is text, as JSON would have it


@pytest.mark.slow
def test_an_alias_bomb_is_refused_by_its_expansion_and_a_large_scenario_loads(start_face):
    url = start_face("serve")
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"] + [
        f"{n}: &{n} [{', '.join(['*' + p] * 10)}]" for p, n in zip("abcdefg", "bcdefgh")]
    bomb = requests.post(url + "/__admin/scenarios", data=("name: bomb\nx:\n  " + "\n  ".join(levels)).encode(),
                         timeout=TIMEOUT)
    assert bomb.status_code == 400 and "alias bomb" in bomb.text, bomb.text
    # the boundary: aliases that repeat the text's values fewer than 10 times load
    shared = requests.post(url + "/__admin/scenarios", data=b"name: shared\nrules:\n  - when: {endpoint: dm.service, match: {uid: a}}\n"
                           b"    then: &answer {code: -3, msg: none}\n  - when: {endpoint: cre.query}\n    then: *answer\n",
                           timeout=TIMEOUT)
    assert shared.status_code == 201, shared.text
    items = "".join(f"    - {{busi_id: b, test_id: \"1\", item_id: i{i}, pool_id: p1}}\n" for i in range(40_000))
    large = requests.post(url + "/__admin/scenarios", data=f"name: large\nfixtures:\n  into: [cre]\n  items:\n{items}".encode(),
                          timeout=120)
    assert large.status_code == 201, large.text[:500]


# -- 4. work and memory per request are bounded by its size ---------------------------------


@pytest.mark.parametrize("face", FACES)
def test_400000_duplicate_keys_are_answered_quickly_and_reported_once_per_key(start_face, face):
    url = start_face(face)
    body = b'{"seq_no": "1", "data_type": "1", "token": "t", "data": [], ' + b'"k": 1, ' * 400_000 + \
        b'"j": 1, ' * 3 + b'"version": "1"}'
    assert len(body) < 8 * 1024 * 1024  # under --max-body-bytes: it is parsed
    started = time.monotonic()
    reply = requests.post(url + "/upload", data=body, headers={"Content-Type": "application/json"}, timeout=30)
    took = time.monotonic() - started
    assert took < 3.0, took
    assert reply.json()["code"] == "-1" and "'k' appears 400,000 times" in reply.json()["message"]
    entries = journal(url)  # the proxy judges (and journals) what it forwards
    violations = entries[-1]["violations"]
    assert [v["message"].split(" appears")[0] for v in violations] == ["key 'k'", "key 'j'"], violations
    assert "'j' appears 3 times" in violations[1]["message"]


def test_duplicate_keys_count_towards_the_violation_cap(start_face):
    url = start_face("serve")
    keys = b"".join(b'"k%d": 1, "k%d": 2, ' % (n, n) for n in range(250))
    reply = requests.post(url + "/upload", data=b'{"seq_no": "1", ' + keys + b'"data": []}', timeout=TIMEOUT)
    assert reply.json()["code"] == "-1"
    violations = journal(url)[-1]["violations"]
    assert len(violations) == 201 and violations[-1]["rule"] == "limit.violations", len(violations)


def as_journaled(body: dict) -> bytes:
    """The JSON text of ``body`` as the journal keeps it: compact, UTF-8, the MD5 signature masked."""
    return json.dumps({**body, "MD5": body["MD5"][:4] + "…"}, separators=(",", ":"), ensure_ascii=False).encode()


def journaled_body(size: int) -> dict:
    """A dm recommendation request whose body is ``size`` bytes of JSON text as the journal writes it."""
    body = dm_recommend(filler="")
    body["filler"] = "x" * (size - len(as_journaled(body)))
    return body


@pytest.mark.parametrize("face", FACES)
def test_a_journal_entry_keeps_a_body_up_to_1_mib_whole_and_cuts_a_larger_one(start_face, face):
    url = start_face(face)
    limit = 1024 * 1024
    whole, cut = journaled_body(limit), journaled_body(limit + 1)
    for body in (whole, cut):
        requests.post(url + "/dm/service", json=body, timeout=TIMEOUT)
    kept = journal(url)[-2:]
    assert kept[0]["body"] == json.loads(as_journaled(whole))
    assert kept[1]["body"]["truncated"] is True and kept[1]["body"]["bytes"] == limit + 1
    text = as_journaled(cut)
    assert kept[1]["body"]["sha256"] == hashlib.sha256(text).hexdigest()
    assert kept[1]["body"]["start"] == text[:4096].decode() and kept[1]["users"] == ["u0"]
    page = requests.get(url + f"/__admin/requests/{kept[1]['seq']}", timeout=TIMEOUT)
    assert page.status_code == 200 and len(page.content) < 200_000


# -- 7. a -2 for a failed write means nothing was applied -----------------------------------

FILE_SIZE_LIMIT = 160 * 1024  # bytes any file the server writes may reach: the state file's WAL fills it


def state_of(url: str) -> dict:
    got = requests.get(url + "/__admin/state?limit=1000&actions=100000", timeout=TIMEOUT)
    assert got.status_code == 200, got.text[:300]
    return got.json()


def test_a_report_refused_for_a_full_disk_is_not_applied(tmp_path, monkeypatch):
    """A real failed write: the server runs under RLIMIT_FSIZE (SIGXFSZ ignored, so writes past it fail with
    EFBIG as on a full disk) until SQLite cannot grow the state file; then it restarts without the limit."""
    import servekit
    from httpkit import cre_item, cre_upload

    db = tmp_path / "state.db"
    plain = servekit.mockcre_command()
    limited = [sys.executable, "-c", "import os, resource, signal, sys; signal.signal(signal.SIGXFSZ, signal.SIG_IGN); "
               f"resource.setrlimit(resource.RLIMIT_FSIZE, ({FILE_SIZE_LIMIT}, {FILE_SIZE_LIMIT})); "
               "os.execv(sys.argv[1], sys.argv[1:])", *plain]
    monkeypatch.setattr(servekit, "mockcre_command", lambda: limited)
    with started_servers(ServeProcess, tmp_path) as start:
        server = start("--state", str(db))
        codes = []
        for n in range(2_000):  # bounded: the limit is reached after a few dozen
            reply = requests.post(server.url + "/upload", json=cre_upload("1", [cre_item(f"i{n}", describe="d" * 2000)]),
                                  timeout=TIMEOUT).json()
            codes.append(reply["code"])
            if reply["code"] != "0":
                break
        assert codes[-1] == "-2" and set(codes[:-1]) == {"0"}, codes
        assert "nothing was applied" in reply["message"]
        before = state_of(server.url)
        ids = {item_id for p in before["partitions"] for item_id in p["items"]}
        assert f"i{len(codes) - 1}" not in ids and f"i{len(codes) - 2}" in ids, sorted(ids)[-3:]
        server.close()
    monkeypatch.setattr(servekit, "mockcre_command", lambda: plain)
    with started_servers(ServeProcess, tmp_path) as start:
        assert state_of(start("--state", str(db)).url) == before


# -- 8. masking: any case, any depth --------------------------------------------------------

SECRET_HEADERS = {"Authorization": "Bearer sk-live-0123456789", "Cookie": "session=cookie-secret-99",
                  "X-Api-Key": "xapikey-secret-1", "Api-Key": "apikey-secret-22", "X-Auth-Token": "xauth-secret-333",
                  "Proxy-Authorization": "Basic proxy-secret-4444"}


@pytest.mark.parametrize("face", FACES)
def test_secrets_are_masked_in_any_case_and_at_any_depth(start_face, face):
    url = start_face(face)
    body = dm_recommend(Token="top-token-secret-1", md5="lower-md5-secret-2",
                        extra={"nested": [{"token": "nested-token-secret-3", "MD5": "nested-md5-secret-4"}]})
    requests.post(url + "/dm/service", json=body, headers=SECRET_HEADERS, timeout=TIMEOUT)
    shown = [requests.get(url + page, timeout=TIMEOUT).text for page in
             ("/__admin/journal", "/__admin/", "/__admin/requests/1", "/__admin/report", "/__admin/report?format=html")]
    secrets_sent = [*SECRET_HEADERS.values(), "top-token-secret-1", "lower-md5-secret-2", "nested-token-secret-3",
                    "nested-md5-secret-4", body["MD5"]]
    for text in shown:
        for secret in secrets_sent:
            assert secret.split(" ")[-1] not in text, secret
    entry = journal(url)[-1]
    assert entry["body"]["extra"]["nested"][0]["token"] == "nest…" and entry["headers"]["Api-Key"] == "apik…"
