"""Issue 9.5, security: tests that try.

- the admin API is loopback-only by default; exposed (``--host 0.0.0.0``) it needs the token on
  every path under ``/__admin`` however the path is spelled (servers bound to 0.0.0.0 are only ever
  reached through 127.0.0.1 here);
- secrets (cre tokens, dm MD5 signatures, Authorization and cookies) are masked in journal entries,
  the ``--journal`` file, the quality report (JSON, text, HTML, ``mockcre report``), the dashboard
  pages and the server's own output;
- scenario YAML is loaded with the safe loader: ``!!python`` tags never run, an alias bomb is
  refused quickly;
- templates cannot run code or read files: ``{{ request.__class__.__mro__ }}``, ``{{ config }}``,
  ``../`` and absolute ``body_file`` paths, symlinks out of the folder (at load and after it), and
  the dashboard's scenario form given a server path;
- the dashboard escapes every reported string (``<script>`` in every field a client controls).

Every server is a real ``mockcre serve`` subprocess on a free port, killed in ``finally``.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import time
import urllib.parse

import pytest

from httpkit import cre_action, cre_item, cre_query, cre_upload, dm_action, dm_item, dm_recommend, free_port
from servekit import ServeProcess, run_cli, started_servers

import mockcre
from mockcre.faces.server import ThreadedServer

CRE_TOKEN = "5f3c9a1e-77b2-4c1d-9e8f-0a1b2c3d4e5f"
DM_BID = "b_sec"
DM_TOKEN = "dm-secret-token-8d7f6e"
ADMIN_TOKEN = "admin-token-4b9c2d7e1f"
BEARER = "Bearer sk-live-abcdef0123456789"
COOKIE = "session=cookie-secret-0a9b8c7d6e"


class Serve(ServeProcess):
    """``mockcre serve ARGS``, reached through 127.0.0.1 whatever it binds; ``path`` goes on the wire as given."""

    def send(self, conn, method, path, body, headers) -> None:
        """Exactly the request line and headers given: Host names the server, whatever ``path`` looks like."""
        conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        conn.putheader("Host", f"127.0.0.1:{self.port}")
        for name, value in headers.items():
            conn.putheader(name, value)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)

    def admin(self, method: str, path: str, body: bytes | None = None, **headers):
        """With the admin token when the server has one (unless ``headers`` say otherwise)."""
        for name, value in self.admin_headers().items():
            headers.setdefault(name, value)
        return self.request(method, path, body, headers)

    def post(self, path: str, body, **headers) -> dict:
        raw = body if isinstance(body, bytes) else json.dumps(body, ensure_ascii=False).encode("utf-8")
        status, _, reply = self.request("POST", path, raw, {"Content-Type": "application/json", **headers})
        assert status == 200, (status, reply[:300])
        return json.loads(reply)

    def text(self, path: str) -> str:
        status, _, body = self.admin("GET", path)
        assert status == 200, (path, status, body[:300])
        return body.decode("utf-8")


@pytest.fixture
def serve(tmp_path):
    with started_servers(Serve, tmp_path) as start:
        yield start


def listening_addresses(port: int) -> set[str]:
    """Local addresses of sockets listening on ``port``, from /proc/net/tcp and tcp6 (no traffic needed)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError), open(table, encoding="ascii") as f:
            for line in list(f)[1:]:
                local, state = line.split()[1], line.split()[3]
                address, _, hex_port = local.rpartition(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    found.add(address)
    return found


# -- admin API: loopback by default, token when exposed ---------------------------------------------------------


def test_default_serve_listens_on_loopback_only(serve):
    server = serve()
    assert listening_addresses(server.port) == {"0100007F"}  # 127.0.0.1, and nothing else


def test_exposing_the_server_without_an_admin_token_is_refused():
    done = run_cli("serve", "--host", "0.0.0.0", "--port", str(free_port()), timeout=30)
    assert done.returncode == 2 and "--admin-token" in done.stderr and "Traceback" not in done.stderr
    with pytest.raises(ValueError, match="admin token"):
        ThreadedServer(mockcre.create_app({}), host="0.0.0.0")


ADMIN_PATHS = [
    ("GET", "/__admin/health"), ("GET", "/__admin/journal"), ("DELETE", "/__admin/journal"), ("POST", "/__admin/reset"),
    ("GET", "/__admin/scenarios"), ("POST", "/__admin/scenarios"), ("DELETE", "/__admin/scenarios"),
    ("GET", "/__admin/state"), ("GET", "/__admin/report"), ("GET", "/__admin/report?format=html"), ("GET", "/__admin/"),
    ("GET", "/__admin"), ("GET", "/__admin/store"), ("GET", "/__admin/requests/1"), ("POST", "/__admin/ui/reset"),
    ("POST", "/__admin/ui/scenarios"), ("GET", "/__admin/no-such-page"),
    # the same resources spelled otherwise
    ("GET", "//__admin/state"), ("GET", "///__admin/journal"), ("GET", "/%5F%5Fadmin/state"), ("GET", "/__admin%2Fstate"),
    ("GET", "/__admin//state"), ("GET", "/__admin/./state"), ("GET", "/__admin/x/../state"), ("GET", "/./__admin/state"),
    ("GET", "http://127.0.0.1/__admin/state"), ("GET", "/__admin/state;x=1"), ("GET", "/__admin/state?token="),
    ("POST", "//__admin/reset"), ("POST", "/%5F%5Fadmin/reset"),
]


def test_exposed_admin_api_needs_the_token_on_every_path(serve):
    server = serve("--host", "0.0.0.0", "--admin-token", ADMIN_TOKEN)
    assert listening_addresses(server.port) == {"00000000"}
    server.post("/dm/data", dm_item("kept", bid="b1"))  # the API itself never needs the token
    scenario = b"name: injected\nrules:\n  - when: {endpoint: any}\n    then: {code: -2, msg: hijacked}\n"
    for method, path in ADMIN_PATHS:
        body = scenario if path.endswith("scenarios") and method == "POST" else (b"" if method == "POST" else None)
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": ADMIN_TOKEN},
                        {"Authorization": f"Basic {ADMIN_TOKEN}"}, {"Authorization": f"Bearer {ADMIN_TOKEN}x"},
                        {"Authorization": f"Bearer {ADMIN_TOKEN[:-1]}"}, {"Cookie": "mockcre_admin=wrong"},
                        {"X-Admin-Token": ADMIN_TOKEN}):
            status, hdrs, reply = server.request(method, path, body, headers)
            assert status in (401, 404), (method, path, headers, status, reply[:200])
            assert hdrs.get("content-type", "").startswith("application/json"), (path, hdrs)
            assert ADMIN_TOKEN not in reply.decode("utf-8", "replace")
            if status == 401:
                assert hdrs.get("www-authenticate", "").startswith("Bearer")
    # nothing above reached the admin API: the store, the journal and the scenarios are as they were
    status, _, state = server.admin("GET", "/__admin/state")
    assert status == 200 and "kept" in state.decode()
    assert json.loads(server.admin("GET", "/__admin/scenarios")[2])["scenarios"] == []
    assert server.post("/dm/data", dm_item("still", bid="b1"))["code"] == 0
    assert json.loads(server.admin("GET", "/__admin/journal")[2])["count"] == 2


def test_exposed_admin_api_with_the_token(serve):
    server = serve("--host", "0.0.0.0", "--admin-token", ADMIN_TOKEN)
    for scheme in ("Bearer", "bearer", "BEARER"):
        status, _, body = server.request("GET", "/__admin/health", headers={"Authorization": f"{scheme} {ADMIN_TOKEN}"})
        assert status == 200 and json.loads(body) == {"status": "ok"}
    # a browser: ?token=T once, then a strict HTTP-only cookie; the token leaves the URL
    status, headers, _ = server.request("GET", f"/__admin/?token={ADMIN_TOKEN}")
    assert status in (302, 303, 307) and ADMIN_TOKEN not in headers["location"]
    cookie = headers["set-cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/__admin" in cookie
    status, headers, page = server.request("GET", "/__admin/", headers={"Cookie": cookie.split(";")[0]})
    assert status == 200 and headers["content-type"].startswith("text/html")
    # the URL token works for GET only: a link cannot reset or load anything
    for method, path in (("POST", "/__admin/reset"), ("POST", "/__admin/ui/reset"), ("DELETE", "/__admin/journal")):
        assert server.request(method, f"{path}?token={ADMIN_TOKEN}", b"" if method == "POST" else None)[0] == 401
    assert server.request("GET", "/__admin/state?token=wrong")[0] == 401


# -- secrets masked everywhere ---------------------------------------------------------------------------------


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


def test_secrets_are_masked_in_journal_file_report_dashboard_and_logs(serve, tmp_path):
    journal_file = tmp_path / "journal.jsonl"
    server = serve("--account", f"cre:{CRE_TOKEN}", "--account", f"dm:{DM_BID}={DM_TOKEN}", "--journal", str(journal_file))
    secret_headers = {"Authorization": BEARER, "Cookie": COOKIE, "X-Api-Key": "xkey-0123456789abcdef"}
    signatures = []

    def dm(body: dict, good: bool = True) -> dict:
        body["MD5"] = md5(f"{body['bid']}&{body['request_id']}&{DM_TOKEN if good else 'guess'}")
        signatures.append(body["MD5"])
        return body

    assert server.post("/upload", cre_upload("1", [cre_item("s1", describe="x")], token=CRE_TOKEN), **secret_headers)["code"] == "0"
    assert server.post("/upload", cre_upload("2", [cre_action("u1", "102", ["s1"])], token=CRE_TOKEN))["code"] == "0"
    assert server.post("/query", cre_query(user_id="u1", pool_id="p1", token=CRE_TOKEN), **secret_headers)["code"] == "0"
    assert server.post("/upload", cre_upload("1", [cre_item("s2")], token=CRE_TOKEN[::-1]))["code"] == "-1"  # wrong token
    assert server.post("/dm/data", dm(dm_item("d1", bid=DM_BID, pool_id="p")))["code"] == 0
    assert server.post("/dm/data", dm(dm_action("u2", 2, ["d1"], bid=DM_BID)), **secret_headers)["code"] == 0
    assert server.post("/dm/service", dm(dm_recommend(uid="u2", bid=DM_BID, pool_id="p")))["code"] == 0
    denied = server.post("/dm/data", dm(dm_item("d2", bid=DM_BID), good=False))
    assert denied["code"] == -1 and DM_TOKEN not in denied["msg"] and signatures[-1] not in denied["msg"]

    secrets = [CRE_TOKEN, CRE_TOKEN[::-1], DM_TOKEN, BEARER.split()[1], COOKIE.split("=")[1], "xkey-0123456789abcdef",
               *signatures]
    seqs = [e["seq"] for e in json.loads(server.text("/__admin/journal"))["entries"]]
    places = {
        "GET /__admin/journal": server.text("/__admin/journal"),
        "the --journal file": journal_file.read_text(encoding="utf-8"),
        "GET /__admin/report": server.text("/__admin/report"),
        "GET /__admin/report?format=text": server.text("/__admin/report?format=text"),
        "GET /__admin/report?format=html": server.text("/__admin/report?format=html"),
        "dashboard journal": server.text("/__admin/"),
        "dashboard store": server.text("/__admin/store"),
        "dashboard user": server.text(f"/__admin/store/user?partition=dm/{DM_BID}&uid=u2"),
        **{f"dashboard request {seq}": server.text(f"/__admin/requests/{seq}") for seq in seqs},
    }
    for fmt in ("text", "json", "html"):
        done = run_cli("report", "--journal", str(journal_file), "--format", fmt, "--fail-on", "never")
        assert done.returncode == 0, done.stderr
        places[f"mockcre report --journal --format {fmt}"] = done.stdout + done.stderr
        done = run_cli("report", "--url", server.url, "--format", fmt, "--fail-on", "never")
        places[f"mockcre report --url --format {fmt}"] = done.stdout + done.stderr
    places["server output"] = server.log()
    leaks = [(place, secret) for place, text in places.items() for secret in secrets if secret in text]
    assert not leaks, "secrets in the clear: " + "; ".join(f"{s[:12]}… in {p}" for p, s in leaks)
    entry = json.loads(server.text("/__admin/journal"))["entries"][0]
    assert entry["body"]["token"] != CRE_TOKEN and entry["headers"]["Authorization"] != BEARER  # masked, still present


@pytest.mark.parametrize("md5_value", [
    "gT0pL5rHxG2tJ1lNcQ0y9A==",  # the signature sent base64-encoded: 24 characters, not 32 hex digits
    "0123456789abcdef0123456789abcdef-extra",  # a real signature with something appended
])
def test_an_oddly_shaped_md5_is_not_echoed_in_the_journal(serve, md5_value):
    """A signature in the wrong shape is still a secret: violation messages must not quote it either."""
    server = serve()
    reply = server.post("/dm/data", {**dm_item("odd", bid="b"), "MD5": md5_value})
    entries = json.loads(server.text("/__admin/journal"))["entries"]
    visible = json.dumps(entries, ensure_ascii=False) + json.dumps(reply, ensure_ascii=False) + server.text(
        f"/__admin/requests/{entries[-1]['seq']}")
    assert md5_value[:16] not in visible, [v["message"] for v in entries[-1]["violations"]]


# -- scenario YAML: safe loading ----------------------------------------------------------------------------------

PYTHON_TAGS = [
    "!!python/object/apply:os.system ['touch {marker}']",
    "!!python/object/apply:subprocess.check_output [['touch', '{marker}']]",
    "!!python/object/new:subprocess.Popen [['touch', '{marker}']]",
    "!!python/name:os.system",
    "!!python/module:os",
    "!<tag:yaml.org,2002:python/object/apply:os.system> ['touch {marker}']",
]


@pytest.mark.parametrize("tag", PYTHON_TAGS)
def test_python_tags_in_scenario_yaml_never_run(serve, tmp_path, tag):
    marker = tmp_path / "pwned"
    yaml_text = f"name: evil\ndescription: {tag.format(marker=marker)}\nrules: []\n"
    scenario = tmp_path / "evil.yaml"
    scenario.write_text(yaml_text, encoding="utf-8")

    lint = run_cli("scenario", "lint", str(scenario))
    assert lint.returncode == 1 and "Traceback" not in lint.stdout + lint.stderr
    refused = run_cli("serve", "--port", str(free_port()), "--scenario", str(scenario), timeout=30)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr, refused.stderr[-500:]
    server = serve()
    status, headers, body = server.request("POST", "/__admin/scenarios", yaml_text.encode(), {"Content-Type": "application/yaml"})
    assert status == 400 and headers["content-type"].startswith("application/json"), (status, body[:300])
    form = urllib.parse.urlencode({"text": yaml_text}).encode()
    server.request("POST", "/__admin/ui/scenarios", form, {"Content-Type": "application/x-www-form-urlencoded"})
    assert json.loads(server.request("GET", "/__admin/scenarios")[2])["scenarios"] == []
    assert not marker.exists(), "a YAML tag ran code"


def alias_bomb(levels: int) -> bytes:
    """'Billion laughs' in YAML: 9**levels strings from a few hundred bytes of aliases."""
    parts = ["&l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    for i in range(1, levels):
        parts.append(f"&l{i} [" + ", ".join([f"*l{i - 1}"] * 9) + "]")
    return ("name: laughs\nrules: [" + ", ".join(parts) + "]\n").encode()


def test_a_yaml_alias_bomb_is_refused_quickly(serve):
    """A 600-byte scenario that expands to 9**8 (43 million) strings must not pin the server's CPU."""
    server = serve()
    bomb = alias_bomb(8)
    assert len(bomb) < 1_000
    started = time.monotonic()
    try:
        status, headers, body = server.request("POST", "/__admin/scenarios", bomb, {"Content-Type": "application/yaml"},
                                               timeout=10)
    except OSError as exc:
        pytest.fail(f"POST /__admin/scenarios with a {len(bomb)}-byte alias bomb: no answer in 10 s ({exc!r})")
    took = time.monotonic() - started
    assert status == 400 and headers["content-type"].startswith("application/json"), (status, body[:300])
    assert took < 5, f"a {len(bomb)}-byte alias bomb took {took:.1f} s to refuse"


# -- templates cannot run code or read files ---------------------------------------------------------------------

INJECTIONS = {
    "mro": "{{ request.__class__.__mro__ }}",
    "globals": "{{ request.__init__.__globals__ }}",
    "config": "{{ config }}",
    "arith": "{{ 7*7 }}",
    "jinja-stmt": "{% for x in [1,2,3] %}{{ x }}{% endfor %}",
    "dollar": "${7*7}",
    "hash": "#{7*7}",
    "self": "{{ self.__dict__ }}",
    "lipsum": "{{ lipsum.__globals__.os.popen('id').read() }}",
    "subscript": "{{ request['__class__'] }}",
    "format": "{request.__class__}",
    "dunder-path": "{{ request.data[0].__class__.__bases__ }}",
    "file": "{{ request.body_file }}",
}


def test_templates_cannot_run_code(serve, tmp_path):
    rules = "".join(
        f"  - name: {name}\n    when: {{endpoint: dm.service, match: {{uid: {name}}}}}\n"
        f"    then: {{code: -3, msg: {json.dumps('<' + template + '>')}}}\n"
        for name, template in INJECTIONS.items())
    rules += ("  - name: echo\n    when: {endpoint: dm.service, match: {uid: {regex: '^\\{\\{'}}}\n"
              "    then: {code: -3, msg: 'hi {{ request.uid }}'}\n")
    scenario = tmp_path / "templates.yaml"
    scenario.write_text("name: templates\nrules:\n" + rules, encoding="utf-8")
    server = serve("--scenario", str(scenario), "--account", f"dm:b={DM_TOKEN}")
    for name, template in INJECTIONS.items():
        body = dm_recommend(uid=name, bid="b")
        body["MD5"] = md5(f"b&{body['request_id']}&{DM_TOKEN}")
        msg = server.post("/dm/service", body)["msg"]
        inner = msg[1:-1]
        assert msg.startswith("<") and msg.endswith(">"), msg
        assert "49" not in msg and "class" not in inner.replace(template, "") and "0x" not in msg, (name, msg)
        assert "uid=" not in msg and "root" not in msg.replace(template, ""), (name, msg)
        assert inner in ("", template), (name, msg)  # a request field, or nothing, or the text as written
    # a field value that looks like a template is not rendered a second time
    body = dm_recommend(uid="{{ request.MD5 }}", bid="b")
    body["MD5"] = md5(f"b&{body['request_id']}&{DM_TOKEN}")
    assert server.post("/dm/service", body)["msg"] == "hi {{ request.MD5 }}"


@pytest.mark.parametrize("body_file", ["../outside.json", "sub/../../outside.json", "{outside}", "/etc/hostname",
                                       "link-out.json", "dir-link/outside.json"])
def test_body_file_cannot_leave_the_scenario_folder(serve, tmp_path, body_file):
    folder = tmp_path / "scenarios"
    (folder / "sub").mkdir(parents=True)
    outside = tmp_path / "outside.json"
    outside.write_text('{"secret": "OUTSIDE-7f3e"}', encoding="utf-8")
    (folder / "link-out.json").symlink_to(outside)
    (folder / "dir-link").symlink_to(tmp_path, target_is_directory=True)
    scenario = folder / "s.yaml"
    scenario.write_text("name: s\nrules:\n  - when: {endpoint: any}\n"
                        f"    then: {{status: 200, body_file: {json.dumps(body_file.format(outside=outside))}}}\n",
                        encoding="utf-8")
    lint = run_cli("scenario", "lint", str(scenario))
    assert lint.returncode == 1 and "body_file" in lint.stdout and "OUTSIDE-7f3e" not in lint.stdout, lint.stdout
    refused = run_cli("serve", "--port", str(free_port()), "--scenario", str(scenario), timeout=30)
    assert refused.returncode == 2 and "OUTSIDE-7f3e" not in refused.stdout + refused.stderr
    server = serve()
    status, _, reply = server.request("POST", "/__admin/scenarios", scenario.read_bytes(), {"Content-Type": "application/yaml"})
    assert status == 400 and b"OUTSIDE-7f3e" not in reply
    assert b"OUTSIDE-7f3e" not in server.request("POST", "/dm/data", b"{}", {"Content-Type": "application/json"})[2]


def test_body_file_swapped_for_a_symlink_after_loading_is_not_followed(serve, tmp_path):
    folder = tmp_path / "scenarios"
    folder.mkdir()
    outside = tmp_path / "outside.json"
    outside.write_text('{"secret": "OUTSIDE-9c1a"}', encoding="utf-8")
    answer = folder / "answer.json"
    answer.write_text('{"code": 0, "note": "inside"}', encoding="utf-8")
    scenario = folder / "s.yaml"
    scenario.write_text("name: s\nrules:\n  - when: {endpoint: dm.service}\n    then: {status: 200, body_file: answer.json}\n",
                        encoding="utf-8")
    server = serve("--scenario", str(scenario))
    assert server.post("/dm/service", dm_recommend())["note"] == "inside"
    answer.unlink()
    answer.symlink_to(outside)
    status, headers, reply = server.request("POST", "/dm/service", json.dumps(dm_recommend()).encode(),
                                            {"Content-Type": "application/json"})
    assert b"OUTSIDE-9c1a" not in reply, reply
    assert status == 200 and headers["content-type"].startswith("application/json") and b"Traceback" not in reply


def test_the_dashboard_scenario_form_does_not_read_server_files(serve, tmp_path):
    """The form's text is a scenario, never a path on the server's disk (the admin API already guarantees it)."""
    secret_dir = tmp_path / "private"
    secret_dir.mkdir()
    (secret_dir / "app-config.json").write_text('{"name": "leaked", "description": "DB_PASSWORD=hunter2"}', encoding="utf-8")
    (secret_dir / "other.yaml").write_text("password: hunter3\n", encoding="utf-8")
    server = serve()
    leaks = []
    for path in (secret_dir / "app-config.json", secret_dir / "other.yaml"):
        form = urllib.parse.urlencode({"text": str(path)}).encode()
        status, headers, body = server.request("POST", "/__admin/ui/scenarios", form,
                                               {"Content-Type": "application/x-www-form-urlencoded"})
        shown = urllib.parse.unquote_plus(headers.get("location", "")) + body.decode("utf-8", "replace")
        if "hunter" in shown or "password" in shown or "leaked" in shown:
            leaks.append(f"the form given {path} answered {shown[:200]!r}")
    scenarios = server.request("GET", "/__admin/scenarios")[2].decode()
    if "hunter2" in scenarios:
        leaks.append(f"the form loaded {secret_dir / 'app-config.json'} from the server's disk: GET /__admin/scenarios "
                     f"shows {scenarios[:200]!r}")
    assert not leaks, "\n".join(leaks)


# -- the dashboard escapes what clients report ----------------------------------------------------------------------

XSS = "<script>alert(1)</script>"
ATTR = "\"><img src=x onerror=alert(2)>"
RAW_MARKERS = ("<script>alert(1)", "<img src=x onerror", "onerror=alert(2)>")


def test_the_dashboard_escapes_every_reported_string(serve, tmp_path):
    journal_file = tmp_path / "journal.jsonl"
    server = serve("--journal", str(journal_file))
    evil_item = cre_item(XSS, pool_id=ATTR, tags={XSS: "1", "t": ATTR}, describe=XSS + ATTR, vender=ATTR, title=XSS)
    server.post("/upload", cre_upload("1", [evil_item], seq_no=XSS))
    server.post("/upload", cre_upload("2", [cre_action(XSS, "102", [XSS], trace_id=ATTR, test_id=ATTR)], seq_no=ATTR))
    server.post("/upload", cre_upload("1", [{"item_id": ATTR, XSS: ATTR}], seq_no=XSS))  # violations quoting them
    server.post("/query", cre_query(user_id=XSS, pool_id=ATTR, seq_no=XSS))
    server.post("/dm/data", {**dm_item(ATTR, bid=XSS, pool_id=XSS, tags=XSS, describe=XSS), "request_id": XSS})
    server.post("/dm/data", dm_action(ATTR, 2, [XSS, ATTR], bid=XSS, scene_id=ATTR))
    server.post("/dm/service", dm_recommend(uid=XSS, bid=XSS, pool_id=ATTR))
    server.post("/upload", b"{\"" + XSS.encode() + b"\": ", Content_Type="text/" + "html")  # a broken body
    status, _, _ = server.request("POST", "/__admin/scenarios", json.dumps(
        {"name": XSS, "description": ATTR, "rules": [{"name": ATTR, "when": {"endpoint": "cre.query", "match": {"user_id": "zz"}},
                                                      "then": {"code": -2, "msg": XSS}}]}).encode(),
        {"Content-Type": "application/json"})
    assert status == 201
    server.post("/query", cre_query(user_id="zz"))  # the rule fires: its name shows in the journal

    seqs = [e["seq"] for e in json.loads(server.text("/__admin/journal"))["entries"]]
    quoted = urllib.parse.quote
    pages = {
        "journal": "/__admin/", "journal filtered": f"/__admin/?user={quoted(XSS)}&endpoint={quoted(ATTR)}",
        "message": f"/__admin/?message={quoted(XSS + ATTR)}", "partial": "/__admin/?partial=1",
        "store": "/__admin/store", "report": "/__admin/report?format=html",
        "user cre": f"/__admin/store/user?partition=cre/prod&uid={quoted(XSS)}",
        "user dm": f"/__admin/store/user?partition={quoted('dm/' + XSS)}&uid={quoted(ATTR)}",
        **{f"request {s}": f"/__admin/requests/{s}" for s in seqs},
    }
    escaped_seen = False
    for name, path in pages.items():
        status, headers, body = server.request("GET", path)
        html = body.decode("utf-8")
        assert status in (200, 404) and headers["content-type"].startswith("text/html"), (name, status)
        for marker in RAW_MARKERS:
            assert marker not in html, f"{name} ({path}): {marker!r} unescaped"
        assert not re.search(r"""(href|src|action)\s*=\s*["']?\s*javascript:""", html, re.I), name
        escaped_seen |= "&lt;script&gt;" in html
    assert escaped_seen  # the strings are shown, escaped
    done = run_cli("report", "--journal", str(journal_file), "--format", "html", "--fail-on", "never")
    assert done.returncode == 0 and all(m not in done.stdout for m in RAW_MARKERS)
