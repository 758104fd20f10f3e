"""Issue 9.3, fuzzing: at least 100,000 hostile requests to every endpoint, admin included.

One real ``mockcre serve`` on a free 127.0.0.1 port takes the whole campaign:

- *cheap generators* (most of the volume), pipelined on keep-alive raw sockets by 4 threads:
  random bytes, mutated and truncated valid bodies, hostile JSON values (NaN, 1e999, lone
  surrogates, duplicate keys, huge numbers, deep nesting), invalid UTF-8, wrong and missing
  Content-Type and Content-Encoding, odd Host headers, wrong methods and paths, header chaos,
  and the admin API (journal/state filters, scenario bodies, dashboard pages, resets);
- *framing*: each on its own connection: truncated bodies, Content-Length too short, too long,
  missing, negative or doubled, chunked bodies good and broken, CL+TE, bad request lines,
  HTTP/0.9 and HTTP/2 prefaces, NUL and obs-fold headers, huge URLs and header blocks;
- *big ones*: 100,000-deep nesting, 8 MiB strings and arrays, 10,001-record batches, gzip bombs,
  200,000-key objects;
- *Hypothesis* (fixed seed, bounded examples): mockcre's own schema-driven ``requests(valid=False)``
  and ``mutations`` strategies, and arbitrary JSON with lone surrogates, NaN and infinities;
- *slow loris*: partial headers and partial bodies held open while valid requests must still be
  answered.

Every reply must be: not 5xx; JSON when it has a body (dashboard pages excepted, which are HTML
by design); without "Traceback"; and, for API endpoints, the dialect's envelope, except for bytes that are
not an HTTP/1.1 request (no path to trust): a 400 with the JSON error naming the fault. No answer at all is
allowed only for a slow loris that never completes. Afterwards a valid request must be answered
correctly, and after ``POST /__admin/reset`` the server's RSS (``/proc/<pid>/status`` of the
serve process) must be within 10 % (or 8 MiB) of the warmed-up baseline; when it is not, a second
campaign decides (a leak grows again, allocator placement does not).

``MOCKCRE_FUZZ_SCALE`` (default 1.0) scales every count; everything is bounded in count and time
and only ever talks to 127.0.0.1. A failing campaign lists each failure with its input bytes.
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import http.client
import json
import os
import random
import socket
import threading
import time
import zlib
from collections import Counter

import pytest
from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

from httpkit import cre_action, cre_item, cre_query, cre_upload, dm_action, dm_item, dm_recommend
from mockcre.faces.core import UNREADABLE
from servekit import ServeProcess, started_servers

SCALE = float(os.environ.get("MOCKCRE_FUZZ_SCALE", "1.0"))
CHEAP_REQUESTS = int(96_000 * SCALE)  # split across the pipelining threads
FRAMING_REQUESTS = int(3_000 * SCALE)
HYPOTHESIS_STRUCTURED = max(6, int(80 * SCALE))  # per (dialect, kind): schema-driven, ~25 ms each to draw
HYPOTHESIS_MUTATIONS = max(6, int(40 * SCALE))  # per (dialect, kind)
HYPOTHESIS_JSON = int(2_000 * SCALE)
THREADS = 4
PIPELINE = 8
CAMPAIGN_LIMIT = 240.0  # seconds: a hard stop for every phase, whatever the machine
RSS_SLACK = 8 * 1024 * 1024  # bytes: allocator noise allowed on top of the 10 %
SOCKET_TIMEOUT = 20.0

API_PATHS = ("/upload", "/cre_test_upload", "/query", "/test-query", "/dm/data", "/dm/service", "/")
DIALECT_OF = {"/upload": "cre", "/cre_test_upload": "cre", "/query": "cre", "/test-query": "cre",
              "/dm/data": "dm", "/dm/service": "dm", "/": "dm"}


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status", encoding="ascii") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


class Server(ServeProcess):
    """``mockcre serve``: one process, whose RSS is what the campaign watches."""

    timeout = SOCKET_TIMEOUT


@pytest.fixture
def server_factory(tmp_path):
    with started_servers(Server, tmp_path) as start:
        yield start


# -- reading replies off a raw socket ---------------------------------------------------------------------------


class ProtocolError(Exception):
    pass


class Wire:
    """A raw keep-alive connection: send bytes, read HTTP/1.1 responses one at a time."""

    def __init__(self, port: int, timeout: float = SOCKET_TIMEOUT):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = bytearray()

    def _fill(self) -> None:
        data = self.sock.recv(262_144)
        if not data:
            raise EOFError("connection closed by the server")
        self.buf += data

    def _take(self, n: int) -> bytes:
        while len(self.buf) < n:
            self._fill()
        out = bytes(self.buf[:n])
        del self.buf[:n]
        return out

    def _line(self) -> bytes:
        while True:
            idx = self.buf.find(b"\r\n")
            if idx >= 0:
                return self._take(idx + 2)[:-2]
            self._fill()

    def response(self, head_only: bool = False):
        """``(status, headers, body)``; interim 1xx answers are skipped."""
        while True:
            while True:
                idx = self.buf.find(b"\r\n\r\n")
                if idx >= 0:
                    break
                if len(self.buf) > 1_000_000:
                    raise ProtocolError("a response header block over 1 MB")
                self._fill()
            head = self._take(idx + 4)[:-4]
            lines = head.split(b"\r\n")
            if not lines[0].startswith(b"HTTP/1."):
                raise ProtocolError(f"not an HTTP/1 response: {head[:80]!r}")
            status = int(lines[0].split()[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(b":")
                headers[name.strip().lower().decode("latin-1")] = value.strip().decode("latin-1")
            if 100 <= status < 200:
                continue
            if head_only or status in (204, 304):
                return status, headers, b""
            if "chunked" in headers.get("transfer-encoding", "").lower():
                body = bytearray()
                while True:
                    size = int(self._line().split(b";")[0], 16)
                    if size == 0:
                        while self._line():
                            pass
                        return status, headers, bytes(body)
                    body += self._take(size)
                    self._take(2)
            if "content-length" in headers:
                return status, headers, self._take(int(headers["content-length"]))
            body = bytearray(self.buf)  # until the server closes
            self.buf.clear()
            with contextlib.suppress(EOFError, OSError):
                while True:
                    self._fill()
                    body += self.buf
                    self.buf.clear()
            return status, headers, bytes(body)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


# -- judging a reply --------------------------------------------------------------------------------------------


def _reject_constant(name):
    raise ValueError(f"{name} is not JSON")


def strict_json(body: bytes):
    return json.loads(body.decode("utf-8"), parse_constant=_reject_constant)


DASHBOARD_PAGES = ("/__admin", "/__admin/", "/__admin/store", "/__admin/store/user")  # /__admin redirects to the page


def is_page(path: str) -> bool:
    """Dashboard pages are HTML by design (the admin JSON API is not)."""
    bare, _, query = path.partition("?")
    return (bare in DASHBOARD_PAGES or bare.startswith(("/__admin/requests/", "/__admin/ui/"))
            or (bare == "/__admin/report" and "format=html" in query))


def judge(method: str, path: str, status: int, headers: dict, body: bytes) -> str | None:
    """None when the reply is acceptable, else what is wrong with it."""
    if status >= 500:
        return f"HTTP {status}"
    if b"Traceback" in body:
        return "a traceback in the reply"
    ctype = headers.get("content-type", "")
    if not body:
        if method in ("HEAD", "OPTIONS"):
            return None
        return f"HTTP {status} with an empty body ({ctype or 'no Content-Type'})"
    if is_page(path) and ctype.startswith("text/html"):
        return None
    if path.startswith("/__admin/report") and "format=text" in path and ctype.startswith("text/plain"):
        return None
    if not ctype.startswith("application/json"):
        return f"HTTP {status} {ctype or 'no Content-Type'}, not JSON"
    try:
        answer = strict_json(body)
    except ValueError as exc:
        return f"HTTP {status}: the body is not strict JSON ({exc})"
    bare = path.split("?")[0]
    if status == 400 and is_unreadable_refusal(answer):
        return None  # bytes that are not HTTP/1.1: no path to trust, so the JSON error rather than a dialect's envelope
    if method == "POST" and bare in DIALECT_OF:
        if status != 200 or not isinstance(answer, dict) or "code" not in answer:
            return f"HTTP {status}: not the dialect's envelope"
        code = answer["code"]
        if DIALECT_OF[bare] == "dm" and bare != "/" and not isinstance(code, int):
            return "a dm reply whose code is not an integer"
        if DIALECT_OF[bare] == "cre" and not isinstance(code, str):
            return "a cre reply whose code is not a string"
    return None


def is_unreadable_refusal(answer) -> bool:
    return (isinstance(answer, dict) and set(answer) == {"error", "status", "message"} and answer["status"] == 400
            and str(answer["message"]).startswith(UNREADABLE + ": "))


def request_line(data: bytes) -> tuple[str, str]:
    first = data.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
    method = first[0].decode("latin-1", "replace")
    path = first[1].decode("latin-1", "replace") if len(first) > 1 else "/"
    return method, path


class Findings:
    def __init__(self):
        self.lock = threading.Lock()
        self.sent = Counter()  # category -> requests sent
        self.problems = Counter()  # (category, what) -> count
        self.examples: dict = {}  # (category, what) -> first (request bytes, reply)

    def count(self, category: str, n: int = 1) -> None:
        with self.lock:
            self.sent[category] += n

    def problem(self, category: str, what: str, request: bytes, reply) -> None:
        key = (category, what)
        with self.lock:
            self.problems[key] += 1
            self.examples.setdefault(key, (request[:400], reply if isinstance(reply, str) else repr(reply)[:400]))

    @property
    def total(self) -> int:
        return sum(self.sent.values())

    def report(self) -> str:
        lines = []
        for (category, what), n in self.problems.most_common():
            request, reply = self.examples[(category, what)]
            lines.append(f"- [{category}] {what}: {n} times; first input {request!r}; reply {reply}")
        return "\n".join(lines)


# -- the cheap generators ---------------------------------------------------------------------------------------


def valid_bodies() -> list[tuple[str, bytes]]:
    """A pool of (path, body) that the server accepts: the seeds mutations start from."""
    out = []
    for i in range(12):
        out.append(("/upload", json.dumps(cre_upload("1", [cre_item(f"v{i}-{k}", tags=["男装"], describe="描述")
                                                          for k in range(1 + i % 4)])).encode()))
        out.append(("/cre_test_upload", json.dumps(cre_upload("2", [cre_action(f"u{i}", "102", [f"v{i}-0"])])).encode()))
        out.append(("/query", json.dumps(cre_query(user_id=f"u{i}", pool_id="p1", request_num=5)).encode()))
        out.append(("/test-query", json.dumps(cre_query(user_id=f"u{i}", pool_id="p1,p2")).encode()))
        out.append(("/dm/data", json.dumps(dm_item(f"d{i}", tags=["a", "b"], describe="最新款")).encode()))
        out.append(("/dm/data", json.dumps(dm_action(f"u{i}", 2, [f"d{i}", "d0"])).encode()))
        out.append(("/dm/service", json.dumps(dm_recommend(uid=f"u{i}")).encode()))
        out.append(("/", json.dumps(dm_recommend(uid=f"u{i}", pool_id="p1")).encode()))
    return out


HOSTILE_LITERALS = [
    b"null", b"true", b"false", b"[]", b"{}", b"-1", b"0", b"1e308", b"1e999", b"-1e999", b"NaN", b"Infinity",
    b"-Infinity", b'"\\ud800"', b'"\\udfff\\ud800x"', b'"\\u0000"', b'"' + b"x" * 20_000 + b'"', b"[" * 70 + b"]" * 70,
    b"1" * 4_500, b"-" + b"9" * 4_200, b"1.5", b'""', b'" "', b'"\\u202e\\u200b"', '"🚀🧧"'.encode(), b'"<script>alert(1)</script>"',
    b'"../../../../etc/passwd"', b'"{{ request.token }}"', b'"%00%ff"', b"0.0000000000000000000000001", b"-0",
    b'{"$ref": "#"}', b'[{"item_id": null}]', b'"1" ', b"12345678901234567890123", b'"\\\\x00"',
]
INVALID_UTF8 = [b"\xff", b"\xc0\xaf", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80", b"\xe4\xb8", b"\x80", b"\xfe\xfe\xff\xff"]
CONTENT_TYPES = [None, "application/json", "text/plain", "application/x-www-form-urlencoded",
                 "multipart/form-data; boundary=x", "application/json; charset=utf-16", "application/xml", "",
                 ";;;", "application/vnd.api+json", "APPLICATION/JSON", "text/html", "image/png", "*/*"]
ENCODINGS = [None, "gzip", "deflate", "br", "identity", "gzip, gzip", "x-garbage", "GZIP"]
HOSTS = ["data.dm.qcloud.com", "service.dm.qcloud.com", "data.", "service", "", "x" * 300, "[::1]:80", "127.0.0.1:1",
         "data.evil.com:99999", "ÿÿ"]
ADMIN_GETS = ["/__admin/health", "/__admin/journal", "/__admin/state", "/__admin/scenarios", "/__admin/report",
              "/__admin/report?format=html", "/__admin/report?format=text", "/__admin/", "/__admin/store",
              "/__admin/requests/1", "/__admin/store/user?partition=cre/prod&uid=u1", "/__admin/nope", "/__admin"]
JOURNAL_PARAMS = ["limit", "after_seq", "since", "until", "endpoint", "dialect", "kind", "user", "item",
                  "has_violations", "has_errors", "partition", "pool", "offset", "actions", "format", "name"]
PARAM_VALUES = ["", "0", "-1", "1", "99999999999999999999999", "abc", "1e999", "nan", "inf", "2024-05-01T12:00:00Z",
                "2024-13-45T99:99", "cre:prod", "dm:", ":", "cre.query,dm.data", "%00", "%ff%fe", "%E4%BD%A0",
                "1.5", "true", "no", "%3Cscript%3E", "x" * 2000, "..%2F..%2Fetc%2Fpasswd", "%7B%7Brequest.token%7D%7D"]
SCENARIO_BODIES = [b"", b"name", b"- a\n- b", b"name: [", b"{", b'{"name": 5}', b"name: x\nrules: 5",
                   b"name: x\nrules:\n  - when: {endpoint: nowhere}\n    then: {code: -2}",
                   b"!!python/object/apply:os.system ['true']", b"name: x\nseed: !!float nan",
                   b"\xff\xfe", b"name: " + b"a" * 50_000, b"%YAML 9.9\n---\nname: x", b"name: x\n...\n---\nname: y"]
METHODS = ["GET", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "HEAD"]


def mutate(rng: random.Random, body: bytes) -> bytes:
    data = bytearray(body)
    for _ in range(rng.randint(1, 4)):
        op = rng.randrange(6)
        if not data:
            data += rng.randbytes(rng.randint(1, 20))
            continue
        at = rng.randrange(len(data))
        if op == 0:
            data[at] = rng.randrange(256)
        elif op == 1:
            del data[at:at + rng.randint(1, 40)]
        elif op == 2:
            data[at:at] = rng.randbytes(rng.randint(1, 20))
        elif op == 3:
            end = min(len(data), at + rng.randint(1, 60))
            data[at:at] = data[at:end] * rng.randint(1, 5)
        elif op == 4:
            del data[at:]  # truncated
        else:
            data.insert(at, rng.choice(b'{}[]":,\\'))
    return bytes(data)


def replace_value(rng: random.Random, body: bytes, literal: bytes) -> bytes:
    """Put ``literal`` where a JSON value starts (after a ``:``), or wrap the whole body."""
    colons = [i for i, b in enumerate(body) if b == 58]  # ':'
    if not colons:
        return literal
    at = rng.choice(colons) + 1
    end = at
    depth, in_string = 0, False
    while end < len(body):  # the end of the value: a , or } at depth 0 (a rough scan is enough for fuzzing)
        ch = body[end]
        if in_string:
            if ch == 92:
                end += 1
            elif ch == 34:
                in_string = False
        elif ch == 34:
            in_string = True
        elif ch in b"[{":
            depth += 1
        elif ch in b"]}":
            if depth == 0:
                break
            depth -= 1
        elif ch == 44 and depth == 0:
            break
        end += 1
    return body[:at] + b" " + literal + body[end:]


def request_bytes(method: str, path: str, body: bytes | None, headers: list[tuple[str, bytes | str]]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1".encode("latin-1")]
    names = {name.lower() for name, _ in headers}
    if "host" not in names:
        lines.append(b"Host: 127.0.0.1")
    for name, value in headers:
        lines.append(name.encode("latin-1") + b": " + (value if isinstance(value, bytes) else value.encode("latin-1")))
    if body is not None and "content-length" not in names:
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def cheap_request(rng: random.Random, seeds: list) -> tuple[str, str, str, bytes]:
    """One well-framed hostile request: (category, method, path, bytes on the wire)."""
    roll = rng.random()
    path, good = rng.choice(seeds)
    headers: list = [("Content-Type", "application/json")]
    if roll < 0.14:
        category, body = "garbage bytes", rng.randbytes(rng.randint(0, 600))
        if rng.random() < 0.3:
            body = b"{" + body
        path = rng.choice(API_PATHS)
    elif roll < 0.34:
        category, body = "mutated/truncated body", mutate(rng, good)
    elif roll < 0.52:
        category = "hostile JSON value"
        body = replace_value(rng, good, rng.choice(HOSTILE_LITERALS))
        if rng.random() < 0.2:  # a duplicate key too
            body = body.replace(b"{", b'{"data_type": "1", ', 1)
    elif roll < 0.58:
        category = "invalid UTF-8"
        at = good.find(b'"', rng.randrange(len(good))) + 1 or 1
        body = good[:at] + rng.choice(INVALID_UTF8) + good[at:]
    elif roll < 0.68:
        category = "Content-Type/Encoding"
        body = good if rng.random() < 0.5 else mutate(rng, good)
        ctype = rng.choice(CONTENT_TYPES)
        headers = [] if ctype is None else [("Content-Type", ctype)]
        encoding = rng.choice(ENCODINGS)
        if encoding:
            headers.append(("Content-Encoding", encoding))
            if encoding.lower() == "gzip" and rng.random() < 0.7:
                body = gzip.compress(body)
                if rng.random() < 0.3:
                    body = body[: rng.randint(1, len(body))]
            elif encoding == "deflate" and rng.random() < 0.7:
                body = zlib.compress(body)
    elif roll < 0.72:
        category = "Host header"
        path, body = "/", good if rng.random() < 0.5 else mutate(rng, good)
        host = rng.choice(HOSTS)
        headers.append(("Host", host.encode("utf-8")))
    elif roll < 0.78:
        category = "method/path"
        if rng.random() < 0.5:
            method = rng.choice(METHODS)
            data = request_bytes(method, rng.choice(API_PATHS), None if method in ("GET", "HEAD") else good, headers)
            return category, method, path, data
        path = rng.choice(["/random", "/upload/", "/UPLOAD", "/dm/data/x", "/%2e%2e/upload", "/upload?x=1&x=2",
                           "/dm//data", "/query;a=b", "/" + "a" * 3000, "/%00", "/dm/service#frag", "/__admin/reset/x"])
        body = good
    elif roll < 0.84:
        category = "header chaos"
        body = good
        for i in range(rng.randint(1, 40)):
            headers.append((f"X-F{i}", bytes(rng.randrange(32, 256) for _ in range(rng.randint(0, 80))).replace(b"\x7f", b"")))
        if rng.random() < 0.2:
            headers.append(("X-Big", b"b" * rng.randint(1_000, 12_000)))
        if rng.random() < 0.3:
            headers.append(("Authorization", "Bearer " + "t" * rng.randint(0, 100)))
            headers.append(("Cookie", "mockcre_admin=" + "c" * rng.randint(0, 50)))
    else:
        category = "admin API"
        pick = rng.random()
        if pick < 0.55:
            base = rng.choice(ADMIN_GETS)
            params = "&".join(f"{rng.choice(JOURNAL_PARAMS)}={rng.choice(PARAM_VALUES)}" for _ in range(rng.randint(0, 4)))
            if base.startswith("/__admin/journal") or base.startswith("/__admin/state"):
                params = (params + "&limit=5") if params else "limit=5"  # keep the answers small
            sep = "&" if "?" in base else "?"
            full = base + (sep + params if params else "")
            if base.startswith("/__admin/requests/"):
                full = f"/__admin/requests/{rng.choice(['1', '0', '-1', '99999999999999999999', 'x', '%ff'])}"
            method = "HEAD" if rng.random() < 0.05 else "GET"
            return category, method, full, request_bytes(method, full, None, [])
        if pick < 0.8:
            body = rng.choice(SCENARIO_BODIES)
            if rng.random() < 0.5:
                body = mutate(rng, body)
            return category, "POST", "/__admin/scenarios", request_bytes("POST", "/__admin/scenarios", body,
                                                                         [("Content-Type", rng.choice(["application/yaml", "application/json", "text/plain"]))])
        if pick < 0.9:
            full = "/__admin/scenarios?name=" + rng.choice(["x", "", "%ff", "a" * 500])
            return category, "DELETE", full, request_bytes("DELETE", full, None, [])
        if pick < 0.95:
            form = rng.choice([b"text=name%3A+x", b"text=%ff%fe", b"text=" + b"a" * 5000, b"garbage", b""])
            return category, "POST", "/__admin/ui/scenarios", request_bytes(
                "POST", "/__admin/ui/scenarios", form, [("Content-Type", "application/x-www-form-urlencoded")])
        full = rng.choice(["/__admin/reset", "/__admin/reset?scenarios=1", "/__admin/journal"])
        method = "DELETE" if full == "/__admin/journal" else "POST"
        return category, method, full, request_bytes(method, full, None if method == "DELETE" else b"", [])
    return category, "POST", path, request_bytes("POST", path, body, headers)


def pipeline_worker(port: int, n: int, rng_seed: int, findings: Findings, deadline: float) -> None:
    rng = random.Random(rng_seed)
    seeds = valid_bodies()
    wire = None
    done = 0
    try:
        while done < n and time.monotonic() < deadline:
            batch = [cheap_request(rng, seeds) for _ in range(min(PIPELINE, n - done))]
            if wire is None:
                wire = Wire(port)
            wire.sock.sendall(b"".join(data for _, _, _, data in batch))
            for index, (category, method, path, data) in enumerate(batch):
                try:
                    status, headers, body = wire.response(head_only=method == "HEAD")
                except (EOFError, OSError, ProtocolError, ValueError) as exc:
                    findings.count(category, len(batch) - index)
                    for c, _, _, d in batch[index:index + 1]:
                        findings.problem(c, f"no reply to a well-framed request ({type(exc).__name__})", d, str(exc))
                    wire.close()
                    wire = None
                    break
                findings.count(category)
                what = judge(method, path, status, headers, body)
                if what:
                    findings.problem(category, what, data, (status, headers.get("content-type"), body[:300]))
                if headers.get("connection", "").lower() == "close":
                    # the server may close after a reply: the rest of the batch was never read (not counted)
                    done -= len(batch) - index - 1
                    wire.close()
                    wire = None
                    break
            done += len(batch)
    finally:
        if wire is not None:
            wire.close()


# -- framing: one connection each ------------------------------------------------------------------------------


def framing_request(rng: random.Random, seeds: list) -> tuple[str, bytes, bool]:
    """(what, bytes, half-close after sending)."""
    path, good = rng.choice(seeds)
    pick = rng.randrange(16)
    if pick == 0:
        cut = rng.randrange(len(good))
        return "Content-Length longer than the body", (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(good)}\r\nContent-Type: application/json\r\n\r\n"
        ).encode() + good[:cut], True
    if pick == 1:
        extra = rng.randbytes(rng.randint(1, 80))
        return "Content-Length shorter than the body", (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {max(0, len(good) - rng.randint(1, 20))}\r\n\r\n"
        ).encode() + good + extra, True
    if pick == 2:
        return "no Content-Length", f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode() + good, True
    if pick == 3:
        chunks, rest = [], good
        while rest:
            piece = rest[:rng.randint(1, 64)]
            rest = rest[len(piece):]
            size = f"{len(piece):x}" if rng.random() < 0.8 else f"{len(piece):X}".rjust(4, "0")
            chunks.append(size.encode() + (b";ext=1" if rng.random() < 0.2 else b"") + b"\r\n" + piece + b"\r\n")
        trailer = b"X-Trailer: 1\r\n" if rng.random() < 0.3 else b""
        body = b"".join(chunks) + b"0\r\n" + trailer + b"\r\n"
        return "chunked body", f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n".encode() + body, False
    if pick == 4:
        bad = rng.choice([b"zz\r\n{}\r\n0\r\n\r\n", b"-5\r\n{}\r\n0\r\n\r\n", b"ffffffffffffffffffffff\r\n{}\r\n0\r\n\r\n",
                          b"2\r\n{}", b"2\r\n{}\r\n", b"3\r\n{}\r\n0\r\n\r\n", b"\r\n\r\n", b"0\r\n"])
        return "broken chunked body", f"POST {path} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n".encode() + bad, True
    if pick == 5:
        return "Content-Length and Transfer-Encoding", (
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        ).encode() + b"2\r\n{}\r\n0\r\n\r\n", False
    if pick == 6:
        value = rng.choice([b"-1", b"abc", b"99999999999999999999999", b"1, 2", b" 2", b"0x10", b"2\x00"])
        return "bad Content-Length", f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: ".encode() + value + b"\r\n\r\n{}", False
    if pick == 7:
        return "doubled Content-Length", f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\nConnection: close\r\n\r\n{{}}".encode(), False
    if pick == 8:
        line = rng.choice([b"GARBAGE", b"GET /", b"POST /upload HTTP/9.9", b"PRI * HTTP/2.0\r\n\r\nSM", b"\x16\x03\x01\x00\xa5\x01",
                           b"POST  /upload  HTTP/1.1", b"POST /upload HTTP/1.1 extra", rng.randbytes(rng.randint(1, 200))])
        return "bad request line", line + b"\r\nHost: x\r\nConnection: close\r\n\r\n", True
    if pick == 9:
        header = rng.choice([b"X-A: a\x00b", b"X-A: a\r\n b", b"NoColon", b": empty-name", b"X A: space", b"X-A:\xff\xfe",
                             b"Host: a\r\nHost: b", b"Transfer-Encoding: chunked, identity"])
        return "bad header", f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n".encode() + header + b"\r\nContent-Length: 2\r\n\r\n{}", True
    if pick == 10:
        return "bare LF line endings", f"POST {path} HTTP/1.1\nHost: x\nConnection: close\nContent-Length: {len(good)}\n\n".encode() + good, True
    if pick == 11:
        return "huge URL", b"GET /__admin/journal?user=" + b"u" * rng.choice([9_000, 70_000, 200_000]) + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True
    if pick == 12:
        n = rng.choice([200, 2_000])
        headers = b"".join(b"X-%d: %s\r\n" % (i, b"v" * 30) for i in range(n))
        return "many headers", f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\n".encode() + headers + b"\r\n{}", True
    if pick == 13:
        return "huge header", f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 2\r\nX-Huge: ".encode() + b"h" * rng.choice([70_000, 300_000]) + b"\r\n\r\n{}", True
    if pick == 14:
        target = b"/__admin/" + bytes(rng.randrange(128, 256) for _ in range(rng.randint(1, 10)))
        return "invalid UTF-8 in the path", b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", True
    return "Expect: 100-continue", (f"POST {path} HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nConnection: close\r\n"
                                    f"Content-Length: {len(good)}\r\n\r\n").encode() + good, False


def framing_worker(port: int, n: int, rng_seed: int, findings: Findings, deadline: float) -> None:
    rng = random.Random(rng_seed)
    seeds = valid_bodies()
    for _ in range(n):
        if time.monotonic() > deadline:
            return
        what, data, half_close = framing_request(rng, seeds)
        category = "framing: " + what
        findings.count(category)
        wire = Wire(port, timeout=5)
        try:
            with contextlib.suppress(OSError):
                wire.sock.sendall(data)
                if half_close:
                    wire.sock.shutdown(socket.SHUT_WR)
            for _ in range(4):  # a request may become several (bytes after the body are a new one)
                try:
                    status, headers, body = wire.response()
                except EOFError:
                    break  # closed without (another) answer: allowed for bytes that are not a complete request
                except (TimeoutError, socket.timeout):
                    if not half_close and what not in ("Content-Length longer than the body",):
                        findings.problem(category, "no reply within 5 s to a complete request", data, "timeout")
                    break
                except ProtocolError as exc:
                    if not data.startswith(b"PRI * HTTP/2.0"):  # HTTP/2 prior knowledge gets HTTP/2 frames
                        findings.problem(category, "a reply that is not HTTP/1", data, str(exc))
                    break
                except (OSError, ValueError):
                    break
                problem = judge(*request_line(data), status, headers, body)
                if problem:
                    findings.problem(category, problem, data, (status, headers.get("content-type"), body[:300]))
                if headers.get("connection", "").lower() == "close":
                    break
        finally:
            wire.close()


# -- big ones ------------------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def big_requests() -> list[tuple[str, str, bytes, dict]]:
    limit = 8 * 1024 * 1024
    cre_base = json.loads(valid_bodies()[0][1])
    many = cre_upload("1", [{"item_id": str(i)} for i in range(10_001)])
    thousand = cre_upload("1", [cre_item(f"big{i}", describe="长" * 200) for i in range(1_000)])
    bomb = zlib.compressobj(9, zlib.DEFLATED, 31)
    bomb_body = bomb.compress(b"{" + b" " * (200 * 1024 * 1024)) + bomb.flush()
    return [
        ("deep [ nesting", "/upload", b"[" * 100_000 + b"]" * 100_000, {}),
        ("deep { nesting", "/dm/data", b'{"a":' * 50_000 + b"1" + b"}" * 50_000, {}),
        ("65-level data", "/upload", json.dumps({**cre_base, "data": [[[[[[[[[[[[[[[[{}]]]]]]]]]]]]]]]]}).replace(
            "{}", "[" * 50 + "{}" + "]" * 50).encode(), {}),
        ("8 MiB string", "/upload", json.dumps({**cre_base, "seq_no": "s" * (limit - 300)}).encode(), {}),
        ("over the limit", "/dm/data", b'{"request_id": "' + b"r" * limit + b'"}', {}),
        ("1M-element array", "/dm/service", b'{"pool_id": [' + b"0," * 1_000_000 + b"0]}", {}),
        ("10,001 records", "/upload", json.dumps(many).encode(), {}),
        ("1,000 valid records", "/upload", json.dumps(thousand, ensure_ascii=False).encode(), {}),
        ("gzip bomb (200 MiB)", "/upload", bomb_body, {"Content-Encoding": "gzip"}),
        ("200,000 keys", "/query", b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(200_000)) + b"}", {}),
        ("100,000 duplicate keys", "/dm/service", b"{" + b",".join(b'"k":1' for _ in range(100_000)) + b"}", {}),
        ("1,000,000-digit number", "/upload", b'{"seq_no": ' + b"7" * 1_000_000 + b"}", {}),
        ("describe of 30,721 characters", "/upload", json.dumps(cre_upload("1", [cre_item("long", describe="字" * 30_721)])).encode(), {}),
    ]


def big_worker(port: int, rounds: int, findings: Findings, deadline: float) -> None:
    requests_ = big_requests()
    for _ in range(rounds):
        for what, path, body, headers in requests_:
            if time.monotonic() > deadline:
                return
            category = "big: " + what
            findings.count(category)
            data = request_bytes("POST", path, body, [("Content-Type", "application/json"), *headers.items()])
            wire = Wire(port, timeout=60)
            try:
                wire.sock.sendall(data)
                status, hdrs, reply = wire.response()
            except (OSError, EOFError, ProtocolError) as exc:
                findings.problem(category, f"no reply ({type(exc).__name__})", data, str(exc))
                continue
            finally:
                wire.close()
            problem = judge("POST", path, status, hdrs, reply)
            if problem:
                findings.problem(category, problem, data, (status, hdrs.get("content-type"), reply[:300]))


# -- Hypothesis ----------------------------------------------------------------------------------------------

SURROGATES = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
ANY_TEXT = st.text(st.one_of(st.characters(), SURROGATES), max_size=40)
JSON_VALUES = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=True, allow_infinity=True), ANY_TEXT),
    lambda inner: st.one_of(st.lists(inner, max_size=6), st.dictionaries(ANY_TEXT, inner, max_size=6)),
    max_leaves=30)
KINDS = (("cre", "item", "/upload"), ("cre", "action", "/cre_test_upload"), ("cre", "query", "/query"),
         ("dm", "item", "/dm/data"), ("dm", "action", "/dm/data"), ("dm", "recommend", "/dm/service"))
HYPOTHESIS_SETTINGS = dict(database=None, deadline=None, phases=[Phase.generate], derandomize=True,
                           suppress_health_check=list(HealthCheck))


def hypothesis_worker(port: int, findings: Findings, deadline: float) -> None:
    from mockcre import strategies

    conn = [None]

    def post(category: str, path: str, raw: bytes) -> None:
        if time.monotonic() > deadline:
            return
        findings.count(category)
        for attempt in range(2):
            if conn[0] is None:
                conn[0] = http.client.HTTPConnection("127.0.0.1", port, timeout=SOCKET_TIMEOUT)
            try:
                conn[0].request("POST", path, raw, {"Content-Type": "application/json"})
                resp = conn[0].getresponse()
                body = resp.read()
                headers = {k.lower(): v for k, v in resp.getheaders()}
                break
            except (OSError, http.client.HTTPException) as exc:
                conn[0].close()
                conn[0] = None
                if attempt:
                    findings.problem(category, f"no reply ({type(exc).__name__})", raw, str(exc))
                    return
        problem = judge("POST", path, resp.status, headers, body)
        if problem:
            findings.problem(category, problem, raw, (resp.status, headers.get("content-type"), body[:300]))

    for n, (dialect, kind, path) in enumerate(KINDS):
        @seed(9_000 + n)
        @settings(max_examples=HYPOTHESIS_STRUCTURED, **HYPOTHESIS_SETTINGS)
        @given(strategies.requests(dialect, kind, valid=False))
        def structured(body):
            post("hypothesis: requests(valid=False)", path, json.dumps(body, ensure_ascii=False).encode("utf-8", "surrogatepass"))

        structured()

        @seed(9_100 + n)
        @settings(max_examples=HYPOTHESIS_MUTATIONS, **HYPOTHESIS_SETTINGS)
        @given(strategies.mutations(dialect, kind))
        def mutated(pair):
            post("hypothesis: mutations", path, json.dumps(pair[0], ensure_ascii=False).encode("utf-8", "surrogatepass"))

        mutated()

    @seed(9_200)
    @settings(max_examples=HYPOTHESIS_JSON, **HYPOTHESIS_SETTINGS)
    @given(st.sampled_from(API_PATHS), JSON_VALUES, st.booleans())
    def arbitrary(path, value, ascii_only):
        if isinstance(value, dict):
            value.setdefault("data_type", 1)
        text = json.dumps(value, ensure_ascii=ascii_only)  # NaN/Infinity literals, \\ud800 escapes or raw surrogates
        post("hypothesis: arbitrary JSON", path, text.encode("utf-8", "surrogatepass"))

    arbitrary()
    if conn[0] is not None:
        conn[0].close()


# -- slow loris ----------------------------------------------------------------------------------------------


def slow_loris(port: int, findings: Findings, partial_bodies: int, partial_headers: int, hold: float) -> list[float]:
    """Hold partial requests open; meanwhile valid requests must be answered. Returns their latencies."""
    held = []
    latencies = []
    try:
        for i in range(partial_headers):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"s" * (i % 7))
            held.append(s)
        for i in range(partial_bodies):
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.sendall(b"POST /dm/data HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000\r\n\r\n{\"re")
            held.append(s)
        findings.count("slow loris", len(held))
        ends = time.monotonic() + hold
        rounds = 0
        while time.monotonic() < ends and rounds < 1_000:
            rounds += 1
            for s in held[: partial_headers]:  # trickle one more header byte
                with contextlib.suppress(OSError):
                    s.send(b"s")
            started = time.monotonic()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            try:
                conn.request("GET", "/__admin/health")
                resp = conn.getresponse()
                resp.read()
                latencies.append(time.monotonic() - started)
            except OSError as exc:
                findings.problem("slow loris", "a valid request went unanswered while slow clients held connections",
                                 b"GET /__admin/health", repr(exc))
                latencies.append(float("inf"))
                return latencies
            finally:
                conn.close()
            time.sleep(0.1)
        for s in held:  # a slow loris that never completes gets no reply (or a close); never a non-JSON body
            s.setblocking(False)
            with contextlib.suppress(BlockingIOError, OSError):
                data = s.recv(65_536)
                if data and not data.startswith(b"HTTP/1.1 408") and b"{" not in data:
                    findings.problem("slow loris", "a non-JSON answer to a slow loris", b"(partial request)", data[:200])
    finally:
        for s in held:
            s.close()
    return latencies


# -- the campaign ---------------------------------------------------------------------------------------------


def valid_round_trip(server: Server, tag: str) -> None:
    """A correct answer to valid requests, in both dialects."""
    item = json.dumps(cre_upload("1", [cre_item(f"{tag}-ok", pool_id="okpool")])).encode()
    status, _, body = server.request("POST", "/upload", item, {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["code"] == "0", body
    query = json.dumps(cre_query(user_id="someone", pool_id="okpool")).encode()
    status, _, body = server.request("POST", "/query", query, {"Content-Type": "application/json"})
    assert status == 200, body
    assert [e["id"] for e in json.loads(body)["rec"]["okpool"]] == [f"{tag}-ok"], body
    status, _, body = server.request("POST", "/dm/data", json.dumps(dm_item(f"{tag}-dm", bid="fuzzcheck", pool_id="okp")).encode(),
                                     {"Content-Type": "application/json"})
    assert status == 200 and json.loads(body)["code"] == 0, body
    rec = json.dumps(dm_recommend(uid="u", bid="fuzzcheck", pool_id="okp")).encode()
    status, _, body = server.request("POST", "/dm/service", rec, {"Content-Type": "application/json"})
    assert status == 200 and [e["item"] for e in json.loads(body)["data"]] == [f"{tag}-dm"], body


def settle_rss(server: Server) -> int:
    """RSS of the worker after a reset, once it stops moving (at most 2 s)."""
    status, _, _ = server.request("POST", "/__admin/reset?scenarios=1")
    assert status == 200
    last = rss_bytes(server.proc.pid)
    for _ in range(10):
        time.sleep(0.2)
        now = rss_bytes(server.proc.pid)
        if abs(now - last) < 256 * 1024:
            return now
        last = now
    return last


def grew(before: int, after: int) -> bool:
    return after > before * 1.10 and after - before > RSS_SLACK


def run_campaign(port: int, findings: Findings, deadline: float, cheap: int, framing: int, big_rounds: int,
                 with_hypothesis: bool) -> list[float]:
    """Every generator at once, as in the campaign; returns the slow-loris health-check latencies."""
    threads = [threading.Thread(target=pipeline_worker, args=(port, cheap // THREADS, cheap + i, findings, deadline),
                                daemon=True, name=f"cheap-{i}") for i in range(THREADS)]
    threads.append(threading.Thread(target=framing_worker, args=(port, framing, framing, findings, deadline),
                                    daemon=True, name="framing"))
    threads.append(threading.Thread(target=big_worker, args=(port, big_rounds, findings, deadline), daemon=True, name="big"))
    if with_hypothesis:
        threads.append(threading.Thread(target=hypothesis_worker, args=(port, findings, deadline), daemon=True,
                                        name="hypothesis"))
    for t in threads:
        t.start()
    time.sleep(1.0)
    latencies = slow_loris(port, findings, partial_bodies=8, partial_headers=32, hold=3.0)
    for t in threads:
        t.join(timeout=max(0.0, deadline - time.monotonic()) + 30)
    stuck = [t.name for t in threads if t.is_alive()]
    assert not stuck, f"campaign threads still running after the time limit: {stuck}"
    return latencies


@pytest.mark.slow
def test_fuzz_campaign_100k_hostile_requests(server_factory):
    server = server_factory()
    # Warm-up: the same campaign once, so the baseline is the server's steady state, its allocator having
    # reached the high water a campaign drives it to (a smaller warm-up left 14-24 MiB of fragmentation to
    # show up as growth while tracemalloc showed a flat Python heap); growth after that is a leak.
    run_campaign(server.port, Findings(), time.monotonic() + CAMPAIGN_LIMIT, cheap=CHEAP_REQUESTS,
                 framing=FRAMING_REQUESTS, big_rounds=3, with_hypothesis=True)
    rss_before = settle_rss(server)

    findings = Findings()
    started = time.monotonic()
    latencies = run_campaign(server.port, findings, started + CAMPAIGN_LIMIT, cheap=CHEAP_REQUESTS,
                             framing=FRAMING_REQUESTS, big_rounds=3, with_hypothesis=True)
    elapsed = time.monotonic() - started
    assert server.proc.poll() is None, "the server died during the campaign:\n" + server.log()[-3000:]

    valid_round_trip(server, "after")
    rss_after = settle_rss(server)
    stats = json.loads(server.request("GET", "/__admin/journal?limit=0")[2])
    summary = (f"\nfuzz campaign: {findings.total:,} hostile requests in {elapsed:.1f} s "
               f"({findings.total / elapsed:,.0f} req/s); worker RSS {rss_before / 2**20:.1f} MiB before, "
               f"{rss_after / 2**20:.1f} MiB after a reset; health check under slow loris: max "
               f"{max(latencies) * 1000:.0f} ms; journal recorded {stats['recorded']:,}\n"
               + "\n".join(f"  {n:>7,}  {c}" for c, n in sorted(findings.sent.items(), key=lambda kv: -kv[1])))
    print(summary)
    assert findings.total >= 100_000 * min(SCALE, 1.0), summary
    problems = [f"{len(findings.problems)} kinds of bad reply ({sum(findings.problems.values())} replies):\n"
                + findings.report()] if findings.problems else []
    if grew(rss_before, rss_after):
        # Where a reset leaves the allocator varies by ~10-15 MiB from run to run (88-99 MiB seen for the same
        # campaign; 117 -> 132 -> 133 MiB on a fresh machine). A leak grows again with a second campaign;
        # placement noise does not: growth beyond the bound from the first campaign to the second is a leak,
        # and so is ending at half as much again as the warmed-up baseline.
        run_campaign(server.port, Findings(), time.monotonic() + CAMPAIGN_LIMIT, cheap=CHEAP_REQUESTS,
                     framing=FRAMING_REQUESTS, big_rounds=3, with_hypothesis=True)
        rss_again = settle_rss(server)
        print(f"worker RSS {rss_again / 2**20:.1f} MiB after a second campaign and a reset")
        if grew(rss_after, rss_again) or rss_again > rss_before * 1.5:
            problems.append(f"worker RSS grew from {rss_before:,} to {rss_after:,} bytes after the campaign and a "
                            f"reset, and to {rss_again:,} after a second one")
    if max(latencies) > 2.0:
        problems.append(f"a valid request took {max(latencies):.1f} s while slow clients held connections")
    assert not problems, summary + "\n" + "\n".join(problems)


# -- targeted regressions: each failure class of the campaign on its own, with the exact input ---------------


@pytest.fixture
def served(server_factory):
    return server_factory()


def post_raw(server: Server, path: str, raw: bytes):
    """(status, Content-Type, body) of a JSON POST."""
    status, headers, body = server.request("POST", path, raw, {"Content-Type": "application/json"})
    return status, headers.get("content-type", ""), body


@pytest.mark.parametrize("path, raw", [
    ("/upload", b'{"seq_no": "\\ud800", "data_type": "1"}'),
    ("/dm/data", b'{"request_id": "\\udfff", "data_type": 1}'),
    ("/query", b'{"seq_no": "a\\udc80b"}'),
])
def test_a_lone_surrogate_in_the_echoed_id_gets_the_envelope(served, path, raw):
    status, ctype, body = post_raw(served, path, raw)
    assert status == 200 and ctype.startswith("application/json"), (status, body[:300])
    assert strict_json(body)["code"] in ("-1", -1)


def test_a_lone_surrogate_does_not_poison_the_journal_or_the_store(served):
    post_raw(served, "/upload", b'{"seq_no": "\\ud800", "data_type": "1"}')
    body = json.dumps(cre_upload("1", [cre_item("sur", describe="X")])).replace('"X"', '"\\udfff"').encode()
    status, _, reply = post_raw(served, "/upload", body)
    assert status == 200, reply[:300]
    for path in ("/__admin/journal", "/__admin/state", "/__admin/report", "/__admin/requests/1"):
        status, _, reply = served.request("GET", path)
        assert status == 200, (path, status, reply[:300])


@pytest.mark.parametrize("path, raw", [
    ("/upload", b'{"seq_no": 1e999, "data_type": "1"}'),
    ("/dm/data", b'{"request_id": -1e999, "data_type": 1}'),
    ("/dm/service", b'{"request_id": 1e400}'),
])
def test_an_overflowing_number_is_not_echoed_as_infinity(served, path, raw):
    status, _, body = post_raw(served, path, raw)
    assert status == 200
    strict_json(body)  # "Infinity" is not JSON: every client's parser rejects the reply


def test_an_overflowing_number_in_a_body_keeps_the_admin_api_strict_json(served):
    """1e999 would parse as float('inf'): it is refused as a format error (no double holds it), and the journal
    and the store never hand back the non-JSON Infinity."""
    overflowing = json.dumps(dm_item("inf", bid="b", extra_score=123)).replace("123", "1e999").encode()
    reply = strict_json(post_raw(served, "/dm/data", overflowing)[2])
    assert reply["code"] == -1 and "1e999 overflows" in reply["msg"]
    post_raw(served, "/upload", json.dumps(cre_upload("1", [cre_item("x", score="1")])).replace('"1"}', "-1e999}").encode())
    for path in ("/__admin/journal", "/__admin/state", "/__admin/report", "/__admin/requests/1"):
        status, headers, body = served.request("GET", path)
        ctype = headers.get("content-type", "")
        assert status == 200, (path, status)
        if ctype.startswith("application/json"):
            try:
                strict_json(body)
            except ValueError as exc:
                pytest.fail(f"GET {path}: {exc}: {body[body.find(b'Infinity') - 80:body.find(b'Infinity') + 20]!r}")


def test_slow_body_clients_do_not_starve_the_server(served):
    """32 clients that send headers and a few body bytes, then stall (a slow loris on the body)."""
    held = []
    try:
        for _ in range(32):
            s = socket.create_connection(("127.0.0.1", served.port), timeout=5)
            s.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 100000\r\n\r\n{\"a\":")
            held.append(s)
        time.sleep(0.5)
        started = time.monotonic()
        try:
            status, _, body = served.request("GET", "/__admin/health", timeout=5)
        except OSError as exc:
            pytest.fail(f"GET /__admin/health unanswered after {time.monotonic() - started:.1f} s while 32 clients "
                        f"stalled mid-body ({exc!r}): every worker thread waits on a body that never comes")
        assert status == 200 and json.loads(body) == {"status": "ok"}
    finally:
        for s in held:
            s.close()


def test_an_invalid_host_header_gets_the_dialect_envelope(served):
    """A Host that Werkzeug will not parse (a 300-character label) must still get the API's envelope, not a bare 400."""
    for path, code in (("/upload", "-1"), ("/dm/data", -1), ("/", -1)):
        status, headers, body = served.request("POST", path, b"{}", {"Content-Type": "application/json", "Host": "x" * 300})
        ctype = headers.get("content-type", "")
        assert status == 200 and ctype.startswith("application/json"), (path, status, body[:200])
        assert strict_json(body)["code"] == code, (path, body[:200])


@pytest.mark.parametrize("method, path", [("POST", "/dm//data"), ("POST", "//upload"), ("GET", "/__admin//journal")])
def test_a_doubled_slash_is_answered_in_json_not_an_html_redirect(served, method, path):
    status, headers, body = served.request(method, path, b"{}" if method == "POST" else None,
                                           {"Content-Type": "application/json"})
    ctype = headers.get("content-type", "")
    assert status < 500 and ctype.startswith("application/json") and b"<html" not in body.lower(), (status, ctype, body[:200])


def test_one_wide_body_keeps_the_journal_within_its_byte_bound(served):
    """200,000 unknown keys (3 MB, under the 8 MiB limit) make 200,000 violations, each with a "did you mean":
    the journal must stay within its documented 32 MiB and the request must not cost seconds of CPU."""
    body = b"{" + b",".join(b'"k%d":%d' % (i, i) for i in range(200_000)) + b"}"
    started = time.monotonic()
    status, _, reply = post_raw(served, "/query", body)
    took = time.monotonic() - started
    assert status == 200 and strict_json(reply)["code"] == "-1"
    stats = json.loads(served.request("GET", "/__admin/journal?limit=0")[2])
    rss = rss_bytes(served.proc.pid)
    problems = []
    if stats["bytes"] > stats["max_bytes"]:
        problems.append(f"one {len(body):,}-byte request made a {stats['bytes']:,}-byte journal entry "
                        f"(bound {stats['max_bytes']:,}); worker RSS {rss / 2**20:.0f} MiB")
    if took > 5:
        problems.append(f"answering it took {took:.1f} s")
    assert not problems, "; ".join(problems)


def test_an_integer_past_a_floats_range_as_a_tag_weight_is_stored_not_a_crash(served):
    """A 400-digit integer is valid JSON; as a cre tag's weight it has no float value, so it counts as a tag."""
    body = json.dumps(cre_upload("1", [cre_item("big-weight", tags={"red": 1})])).replace('"red": 1', '"red": ' + "9" * 400)
    status, _, reply = post_raw(served, "/upload", body.encode())
    assert status == 200 and strict_json(reply)["code"] == "0", reply[:300]
    status, _, report = served.request("GET", "/__admin/report")
    assert status == 200, report[:300]


def test_the_report_reads_past_a_report_too_large_for_the_journal_to_keep(served):
    """An accepted upload over the journal's 1 MiB per entry is kept cut (its start, length and hash): the report
    cannot replay it, and must still answer, with the whole reports around it analysed."""
    from mockcre.pipeline.journal import MAX_BODY_BYTES

    records = [cre_item(f"wide-{i}", describe="d" * 500) for i in range(MAX_BODY_BYTES // 500 + 10)]
    assert strict_json(post_raw(served, "/upload", json.dumps(cre_upload("1", records)).encode())[2])["code"] == "0"
    assert strict_json(post_raw(served, "/upload", json.dumps(cre_upload("1", [cre_item("small")])).encode())[2])["code"] == "0"
    for fmt in ("json", "text", "html"):
        status, _, report = served.request("GET", f"/__admin/report?format={fmt}")
        assert status == 200, (fmt, report[:300])
    journal = json.loads(served.request("GET", "/__admin/journal")[2])["entries"]
    assert [e["body"].get("truncated", False) for e in journal] == [True, False]  # the near miss: one kept whole


@pytest.mark.parametrize("head", [
    b"POST /query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    b"POST /dm/data HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}",
    b"POST /upload HTTP/1.1 extra\r\nHost: x\r\n\r\n",
    b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03 / HTTP/1.1\r\n\r\n",
])
def test_bytes_that_are_not_http_get_a_json_400_naming_the_fault(served, head):
    """No path to trust, so no dialect's envelope: HTTP/1.x, 400, the JSON error, and the connection closed."""
    wire = Wire(served.port, timeout=5)
    try:
        wire.sock.sendall(head)
        status, headers, body = wire.response()
    finally:
        wire.close()
    answer = strict_json(body)
    assert status == 400 and headers["content-type"] == "application/json", (status, headers, body)
    assert answer["message"].startswith(UNREADABLE + ": ") and len(answer["message"]) > len(UNREADABLE) + 5, answer


def test_a_request_line_without_a_version_gets_an_http_1_1_answer(served):
    """llhttp reads ``GET /`` as HTTP/0.9; an HTTP/1 client must still be able to read the refusal."""
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as s:
        s.sendall(b"POST /upload\r\nHost: x\r\n\r\n")
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 400 "), reply
    assert strict_json(body)["message"].startswith(UNREADABLE + ": the request line has no HTTP version"), body


def test_a_valid_chunked_body_is_the_near_miss_and_gets_the_envelope(served):
    wire = Wire(served.port, timeout=5)
    try:
        wire.sock.sendall(b"POST /query HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
        status, _, body = wire.response()
    finally:
        wire.close()
    assert status == 200 and strict_json(body)["code"] == "-1", body
