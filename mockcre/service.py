"""One request, one way: dialect adapter → contracts → auth → store / recommender → reply → journal.

:class:`Service` knows nothing of Flask: ``handle`` takes bytes and headers and returns a
:class:`Reply`, so the HTTP routes, the pytest plugin and the fuzz tests all drive the same code.
"""

from __future__ import annotations

import codecs
import dataclasses
import hashlib
import itertools
import json
import logging
import threading
import time
import zlib
from dataclasses import dataclass, field

from mockcre import domain, jsontext, memory
from mockcre.config import Config
from mockcre.contracts import ERROR, WARNING, Violation, check, jsonbody
from mockcre.contracts.violations import describe_value
from mockcre.dialects import DIALECTS
from mockcre.dialects.base import WrongKind
from mockcre.journal import Journal, masked_body, masked_headers
from mockcre.persist import StateFile
from mockcre.recommend import rank
from mockcre.scenarios import ScenarioEngine
from mockcre.scenarios.loader import dumps_body, resolve_inside
from mockcre.scenarios.matching import render
from mockcre.store import Store

log = logging.getLogger("mockcre")

MAX_LISTED = 20  # violations spelled out in one error message; the journal keeps them all
JSON_HEADERS = (("Content-Type", "application/json; charset=utf-8"),)


@dataclass
class Reply:
    """What the HTTP layer sends: after ``delay`` seconds, unless ``fault`` says to break the connection."""

    status: int
    body: bytes
    headers: tuple = JSON_HEADERS
    delay: float = 0.0
    fault: str | None = None  # reset | timeout (malformed and empty are already in body)
    hold: float = 0.0  # how long a timeout fault holds the connection, seconds


@dataclass
class Exchange:
    """Everything known about one request as it flows; the journal entry is made from it."""

    endpoint: str
    headers: dict
    started: float
    raw: bytes = b""  # the body as decoded from the transport: what --state keeps
    dialect: str | None = None
    kind: str | None = None
    partition: tuple | None = None
    body: object = None
    violations: list = field(default_factory=list)
    decisions: list = field(default_factory=list)  # scenario rules and state changes
    reply: dict | None = None


class Service:
    def __init__(self, config: Config | dict | None = None):
        self.config = Config.from_mapping(config)
        self.store = Store()
        self.journal = Journal(self.config.journal_size, self.config.journal_file)
        self._trace_ids = itertools.count(1)
        self._trace_lock = threading.Lock()
        self.scenarios = ScenarioEngine(self.store, self.config.clock, self.config.accounts)
        for scenario in self.config.scenarios:
            self.scenarios.load(scenario)
        self.state = StateFile(self.config.state_file) if self.config.state_file else None
        if self.state is not None:
            self._restore()

    # -- the pipeline ------------------------------------------------------------------------

    def handle(self, endpoint: str, raw: bytes, headers=(), host: str = "") -> Reply:
        """Answer one POST to ``endpoint`` (a name from domain.ENDPOINTS, or ``dm.root`` for ``POST /``)."""
        headers = list(headers)  # read twice below; callers may pass a one-shot iterator
        ex = Exchange(endpoint, masked_headers(headers), time.perf_counter())
        try:
            reply = self._answer(ex, raw, dict((k.lower(), v) for k, v in headers), host) or _json_reply(ex.reply)
        except Exception:  # the engine failed: the dialect's system error, the traceback to the log only
            log.exception("mockcre: internal error while answering %s", ex.endpoint)
            adapter = DIALECTS[ex.endpoint.split(".")[0]]
            ex.reply = adapter.error(adapter.echo(ex.body), domain.CODE_SYSTEM_ERROR,
                                     "system error (系统错误): mockcre failed while answering; see the server log")
            reply = _json_reply(ex.reply)
        self._record(ex)
        return reply

    def _answer(self, ex: Exchange, raw: bytes, headers: dict, host: str) -> Reply | None:
        """The reply for a request; None means: send ``ex.reply`` as JSON."""
        raw, notes = decode_transport(raw, headers, self.config.max_body_bytes, self.config.strict or self.scenarios.strict)
        ex.violations.extend(notes)
        body = None
        if raw is not None:
            ex.raw = raw
            body, found = jsonbody.parse(raw, self.config.max_body_bytes)
            ex.violations.extend(found)
        ex.body = body
        if ex.endpoint == "dm.root":
            ex.endpoint = DIALECTS["dm"].route_for_root(host, body)
        adapter = DIALECTS[ex.endpoint.split(".")[0]]
        route = adapter.routes[ex.endpoint]
        ex.dialect = adapter.name
        echo = adapter.echo(body)
        if any(v.severity == ERROR for v in ex.violations):
            return self._reject(ex, adapter, echo)
        if not isinstance(body, dict):
            ex.violations.append(Violation("", f"body: expected a JSON object; got {describe_value(body)}",
                                           ERROR, "schema.type"))
            return self._reject(ex, adapter, echo)
        try:
            ex.kind = adapter.kind_for(route, body)
        except WrongKind as exc:
            ex.violations.append(Violation(exc.path, str(exc), ERROR, "endpoint-kind"))
            return self._reject(ex, adapter, echo)
        data = body.get("data")
        if isinstance(data, list) and len(data) > self.config.max_batch_records:
            ex.violations.append(Violation("/data", f"data: {len(data):,} records in one request; the limit is "
                                           f"{self.config.max_batch_records:,} (mockcre serve --max-batch-records)",
                                           ERROR, "limit.batch-records"))
            return self._reject(ex, adapter, echo)
        strict = self.config.strict or self.scenarios.strict
        checked = check(body, adapter.name, ex.kind, strict, now=self.config.clock())
        ex.violations.extend(checked.violations)
        body = checked.body  # null optional fields read as absent (lenient.null-field)
        if not checked.ok or any(v.severity == ERROR for v in ex.violations):
            return self._reject(ex, adapter, echo)
        denied = adapter.check_auth(self.scenarios.accounts, body)
        if denied:
            ex.violations.append(Violation("/MD5" if adapter.name == "dm" else "/token", denied, ERROR, "auth"))
            ex.reply = adapter.error(echo, domain.CODE_FORMAT_ERROR, f"format error (格式错误): {denied}")
            return None
        ex.partition = adapter.partition_key(route, body)
        decision = self.scenarios.decide(ex.endpoint, ex.kind, body, headers)
        if decision is None:
            ex.reply = self._engine(adapter, ex.kind, body, ex.partition, ex.raw)
            return None
        ex.decisions.append(decision.record())
        if decision.next_state and self.state is not None:
            self.state.save_state(decision.scenario, decision.next_state)
        return self._scripted(ex, adapter, body, decision)

    def _reject(self, ex: Exchange, adapter, echo) -> None:
        errors = [v for v in ex.violations if v.severity == ERROR]
        listed = "; ".join(v.message for v in errors[:MAX_LISTED])
        more = f"; and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
        noun = "problem" if len(errors) == 1 else "problems"
        ex.reply = adapter.error(echo, domain.CODE_FORMAT_ERROR, f"format error (格式错误), {len(errors)} {noun}: {listed}{more}")

    def _scripted(self, ex: Exchange, adapter, body: dict, decision) -> Reply:
        """Answer as a scenario rule says: a code, a canned ranking, a raw answer or a fault."""
        then, delay = decision.then, decision.delay_ms / 1000.0
        fault = then.get("fault")
        if fault in ("reset", "timeout"):  # the request is lost: nothing is stored
            ex.reply = {"fault": fault}
            hold = then.get("timeout_ms", 30_000) / 1000.0 if fault == "timeout" else 0.0
            return Reply(200, b"", (), delay, fault, hold)
        if "code" in then:
            message = render(then.get("msg", then.get("message", "")), body)
            ex.reply = adapter.error(adapter.echo(body), int(then["code"]), message)  # "-3" or -3: the dialect types it
        elif "recommend" in then:
            entries = [_canned_entry(e) for e in render(then["recommend"], body)]
            ex.reply = adapter.canned(body, entries, then.get("apply_request_num", True), self.next_trace_id())
        elif any(k in then for k in ("status", "body", "body_file")):
            return self._raw(ex, then, body, decision, delay)
        else:  # passthrough, or only delay / next_state / a malformed or empty fault
            ex.reply = self._engine(adapter, ex.kind, body, ex.partition, ex.raw)
        reply = _json_reply(ex.reply, then, body, delay)
        return _broken(reply, fault, ex)

    def _raw(self, ex: Exchange, then: dict, body: dict, decision, delay: float) -> Reply:
        if "body_file" in then:
            payload = render(resolve_inside(decision.base_dir, then["body_file"]).read_text(encoding="utf-8"), body)
        else:
            payload = render(then.get("body", ""), body)
        data = dumps_body(payload)
        ex.reply = payload if isinstance(payload, (dict, list)) else {"raw": payload if isinstance(payload, str) else data.decode()}
        headers = tuple({"Content-Type": "application/json; charset=utf-8", **render(then.get("headers", {}), body)}.items())
        return _broken(Reply(then.get("status", 200), data, headers, delay), then.get("fault"), ex)

    # -- state -------------------------------------------------------------------------------

    def _engine(self, adapter, kind: str, body: dict, key: tuple, raw: bytes) -> dict:
        now = int(self.config.clock())
        store = self.store
        with store.lock:
            if kind in ("item", "action"):
                self._apply_report(adapter, kind, body, key, now)
                if self.state is not None:  # committed before the reply leaves: code 0 means kept
                    self.state.append(key, adapter.name, kind, now, raw)
                return adapter.accepted(body)
            part = store.peek(key)
            req = adapter.rec_request(body)
            if adapter.name == "dm":
                return adapter.recommended(body, req, rank(part, req, now))
            pools = adapter.rec_pools(req, body)
            rankings = {pool: rank(part, req if req.items is not None else dataclasses.replace(req, pools=[pool]), now)
                        for pool in pools}
        return adapter.recommended(body, req, rankings, self.next_trace_id())

    def _apply_report(self, adapter, kind: str, body: dict, key: tuple, now: int) -> None:
        part = self.store.partition(key)
        if kind == "item":
            for item in adapter.items(body, now):
                part.upsert(item)
        else:
            for action, counter in adapter.actions(body, now):
                part.add(action, counter)

    def _restore(self) -> None:
        """Rebuild the store from the state file, then put scenarios back in their saved states."""
        with self.store.lock:
            for key, dialect, kind, received, raw in self.state.reports():
                self._apply_report(DIALECTS[dialect], kind, json.loads(raw), key, int(received))
        self.scenarios.restore_states(self.state.states())

    def next_trace_id(self) -> str:
        """Unique per request, and the same sequence for the same seed (18 digits, like the document's)."""
        with self._trace_lock:
            n = next(self._trace_ids)
        digest = hashlib.sha256(f"{self.config.seed}:{n}".encode()).digest()
        return str(int.from_bytes(digest[:8], "big") % 10**18).zfill(18)

    def reset(self, scenarios: bool = False) -> None:
        """Empty store and journal, restart scenario states and re-apply their fixtures (or unload them)."""
        if scenarios:
            self.scenarios.unload()
        self.store.reset()
        self.journal.clear()
        if self.state is not None:
            self.state.clear()
        self.scenarios.reset_states()
        self.scenarios.apply_fixtures()
        memory.give_back()

    def _record(self, ex: Exchange) -> None:
        self.journal.record({
            "time": self.config.clock(),
            "endpoint": ex.endpoint,
            "dialect": ex.dialect,
            "kind": ex.kind,
            "partition": list(ex.partition) if ex.partition else None,
            "headers": ex.headers,
            "body": masked_body(ex.body),
            "violations": [v.to_dict() for v in ex.violations],
            "scenario": ex.decisions,
            "reply": ex.reply,
            "latency_ms": round((time.perf_counter() - ex.started) * 1000, 3),
        })


_CODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib wbits: gzip header, zlib header
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_UTF8 = ("utf-8", "utf8")


def decode_transport(raw: bytes, headers: dict, limit: int, strict: bool = False):
    """The request body behind its Content-Length, Content-Encoding and charset, and transport
    mistakes as violations.

    ``headers`` have lower-case names. Returns ``(UTF-8 body bytes, notes)``, or ``(None,
    violations)`` when the body cannot be read. Lenient mode accepts what the real service would
    (JSON under another Content-Type, a declared non-UTF-8 charset) with a warning; strict mode
    refuses it. The proxy judges requests the same way.
    """
    declared = headers.get("content-length", "").strip()
    if declared.isdigit() and len(raw) < int(declared) <= limit:
        return None, [Violation("", f"body is cut off: {len(raw):,} bytes arrived but Content-Length says "
                                f"{int(declared):,}; nothing was stored. Send the whole body with its true "
                                "Content-Length", ERROR, "http.content-length")]
    codings = [c.strip().lower() for c in headers.get("content-encoding", "").split(",") if c.strip()]
    for coding in reversed(codings):  # listed in the order applied (RFC 9110 8.4): undone last first
        if coding == "identity":
            continue
        if coding not in _CODINGS:
            return None, [Violation("", f"Content-Encoding {coding} is not supported; send gzip, deflate or none",
                                    ERROR, "http.encoding")]
        try:
            raw = zlib.decompressobj(wbits=_CODINGS[coding]).decompress(raw, limit + 1)
        except zlib.error as exc:
            return None, [Violation("", f"Content-Encoding: {coding} but the body does not decompress ({exc})",
                                    ERROR, "http.encoding")]
    if not codings and raw[:2] == b"\x1f\x8b":
        return None, [Violation("", "body looks gzip-compressed but has no Content-Encoding: gzip header; "
                                "send plain JSON or declare the encoding", ERROR, "http.encoding")]
    media, _, params = headers.get("content-type", "").partition(";")
    content_type = media.strip().lower()
    notes = []
    severity, mode = (ERROR, "strict mode refuses it") if strict else (WARNING, "accepted in lenient mode")
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        if raw.lstrip()[:1] not in (b"{", b"[") and content_type in _FORMS:
            return None, [Violation("", f"Content-Type is {content_type} and the body is not JSON; send the JSON "
                                    "object itself as the POST body, with Content-Type: application/json "
                                    "(请求协议以 Json 格式序列化，作为 HTTP 请求的 Body 部分)", ERROR, "http.content-type")]
        notes.append(Violation("", f"Content-Type is {content_type}, not application/json ({mode}); send the header "
                               "Content-Type: application/json (curl: -H 'Content-Type: application/json')",
                               severity, "http.content-type"))
    charset = next((v.strip().strip('"').lower() for k, _, v in (p.partition("=") for p in params.split(";"))
                    if k.strip().lower() == "charset"), "")
    if charset and charset not in _UTF8 and not raw.isascii():
        try:
            text = raw.decode(codecs.lookup(charset).name)
        except LookupError:
            return None, notes + [Violation("", f"Content-Type declares charset={charset}, which is not a known "
                                            "character set; send UTF-8", ERROR, "http.charset")]
        except UnicodeDecodeError as exc:
            return None, notes + [Violation("", f"body is not {charset} as its Content-Type declares: byte "
                                            f"0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded; "
                                            "send UTF-8", ERROR, "http.charset")]
        raw = text.encode("utf-8")
        notes.append(Violation("", f"body is in charset {charset} ({mode}: decoded as declared); JSON between "
                               "systems must be UTF-8 (RFC 8259): send UTF-8", severity, "http.charset"))
    return raw, notes


def _json_reply(reply: dict, then: dict | None = None, body=None, delay: float = 0.0) -> Reply:
    headers = JSON_HEADERS
    if then and then.get("headers"):
        headers = tuple({"Content-Type": JSON_HEADERS[0][1], **render(then["headers"], body)}.items())
    return Reply(200, jsontext.dumps(reply), headers, delay)


def _broken(reply: Reply, fault: str | None, ex: Exchange) -> Reply:
    """Apply a malformed (truncated JSON) or empty (no body) fault to an otherwise good reply."""
    if fault == "malformed":
        reply.body = reply.body[: max(len(reply.body) // 2, 1)]
    elif fault == "empty":
        reply.body = b""
    if fault in ("malformed", "empty"):
        ex.reply = {"fault": fault, "would_have_answered": ex.reply}
    return reply


def _canned_entry(entry) -> tuple:
    if isinstance(entry, dict):
        return str(entry.get("id", entry.get("item"))), entry.get("score", entry.get("weight"))
    return str(entry), None
