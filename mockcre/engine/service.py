"""One request, one way: dialect adapter → contracts → auth → store / recommender → reply → journal.

:class:`Service` knows nothing of Flask: ``handle`` takes bytes and headers and returns a
:class:`Reply`, so the HTTP routes, the pytest plugin and the fuzz tests all drive the same code.
"""

from __future__ import annotations

import codecs
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
from mockcre.contracts import ERROR, WARNING, Violation, check, has_errors, jsonbody
from mockcre.contracts.violations import describe_value
from mockcre.dialects import DIALECTS, for_endpoint
from mockcre.dialects.base import WrongKind
from mockcre.dialects.base import masked_body
from mockcre.engine.journal import Journal, masked_headers
from mockcre.engine.persist import StateFile
from mockcre.engine.recommend import rank
from mockcre.scenarios import Decision, ScenarioEngine
from mockcre.engine.store import Store

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
    fault: str | None = None  # done by the server to the connection: reset | close | garbage | timeout | truncated
    hold: float = 0.0  # how long a timeout fault holds the connection, seconds


@dataclass
class Judgement:
    """What the contracts make of one request: every face (serve, proxy, validate) judges with :func:`judge`."""

    endpoint: str  # dm.root is resolved to dm.data or dm.service
    dialect: str | None = None
    kind: str | None = None
    partition: tuple | None = None  # set only for a request that passed
    body: object = None  # as the engine reads it (lenient mode drops null optional fields)
    as_sent: object = None  # as it was parsed: what the journal shows
    raw: bytes = b""  # the body as decoded from the transport: what --state keeps
    violations: list = field(default_factory=list)

    @property
    def adapter(self):
        return for_endpoint(self.endpoint)

    @property
    def passed(self) -> bool:
        return self.partition is not None

    def rejection(self) -> dict:
        """The dialect's -1 envelope listing the errors (a signature or token alone is named as it is)."""
        errors = [v for v in self.violations if v.severity == ERROR]
        if len(errors) == 1 and errors[0].rule == "auth":
            message = f"format error (格式错误): {errors[0].message}"
        else:
            listed = "; ".join(v.message for v in errors[:MAX_LISTED])
            more = f"; and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
            noun = "problem" if len(errors) == 1 else "problems"
            message = f"format error (格式错误), {len(errors)} {noun}: {listed}{more}"
        return self.adapter.error(self.adapter.echo(self.body), domain.CODE_FORMAT_ERROR, message)


def judge(endpoint: str, raw: bytes, headers: dict, host: str, config: Config, *, strict: bool, accounts) -> Judgement:
    """Transport, JSON, dialect and kind, limits, schema and semantic rules, then auth: stops at the first stage
    with errors. ``headers`` have lower-case names; ``host`` routes dm's ``POST /`` as the real hosts do."""
    j = Judgement(endpoint)
    decoded, notes = decode_transport(raw, headers, config.max_body_bytes, strict)
    j.violations.extend(notes)
    if decoded is not None:
        j.raw = decoded
        j.body, found = jsonbody.parse(decoded, config.max_body_bytes)
        j.as_sent = j.body
        j.violations.extend(found)
    if endpoint == "dm.root":
        j.endpoint = DIALECTS["dm"].route_for_root(host, j.body)
    adapter = j.adapter
    j.dialect = adapter.name
    if has_errors(j.violations):
        return j
    body = j.body
    if not isinstance(body, dict):
        j.violations.append(Violation("", f"body: expected a JSON object; got {describe_value(body)}", ERROR, "schema.type"))
        return j
    route = adapter.routes[j.endpoint]
    try:
        j.kind = adapter.kind_for(route, body)
    except WrongKind as exc:
        j.violations.append(Violation(exc.path, str(exc), ERROR, "endpoint-kind"))
        return j
    data = body.get("data")
    if isinstance(data, list) and len(data) > config.max_batch_records:
        j.violations.append(Violation("/data", f"data: {len(data):,} records in one request; the limit is "
                                      f"{config.max_batch_records:,} (--max-batch-records)", ERROR, "limit.batch-records"))
        return j
    checked = check(body, adapter.name, j.kind, strict, now=config.clock())
    j.violations.extend(checked.violations)
    if has_errors(j.violations):
        return j
    j.body = body = checked.body  # null optional fields read as absent (lenient.null-field)
    denied = adapter.check_auth(accounts, body)
    if denied:
        j.violations.append(Violation("/" + adapter.auth_field, denied, ERROR, "auth"))
        return j
    j.partition = adapter.partition_key(route, body)
    return j


@dataclass
class Exchange:
    """One request as it flows: its judgement, then what answered it; the journal entry is made from it."""

    judgement: Judgement
    headers: dict
    started: float
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
            self.config.clock.on_change = self.state.save_clock

    # -- the pipeline ------------------------------------------------------------------------

    def judge(self, endpoint: str, raw: bytes, headers: dict, host: str = "") -> Judgement:
        """:func:`judge` with this service's limits, strictness (a strict scenario makes it strict) and accounts."""
        return judge(endpoint, raw, headers, host, self.config, strict=self.config.strict or self.scenarios.strict,
                     accounts=self.scenarios.accounts)

    def handle(self, endpoint: str, raw: bytes, headers=(), host: str = "") -> Reply:
        """Answer one POST to ``endpoint`` (a name from domain.ENDPOINTS, or ``dm.root`` for ``POST /``)."""
        headers = list(headers)  # read twice below; callers may pass a one-shot iterator
        ex = Exchange(Judgement(endpoint), masked_headers(headers), time.perf_counter())
        try:
            low = dict((k.lower(), v) for k, v in headers)
            ex.judgement = self.judge(endpoint, raw, low, host)
            reply = self._answer(ex, low)
        except Exception:  # the engine failed: the dialect's system error, the traceback to the log only
            log.exception("mockcre: internal error while answering %s", ex.judgement.endpoint)
            adapter = ex.judgement.adapter
            ex.reply = adapter.error(adapter.echo(ex.judgement.body), domain.CODE_SYSTEM_ERROR,
                                     "system error (系统错误): mockcre failed while answering; see the server log")
            reply = _json_reply(ex.reply)
        self._record(ex)
        return reply

    def _answer(self, ex: Exchange, headers: dict) -> Reply:
        j = ex.judgement
        if not j.passed:
            ex.reply = j.rejection()
            return _json_reply(ex.reply)
        decision = self.scenarios.decide(j.endpoint, j.kind, j.body, headers)
        if decision is None:
            ex.reply = self._engine(j)
            return _json_reply(ex.reply)
        ex.decisions.append(decision.record())
        if decision.next_state and self.state is not None:
            self.state.save_state(decision.scenario, decision.next_state)
        return self._carry_out(ex, decision)

    def _carry_out(self, ex: Exchange, decision: Decision) -> Reply:
        """Answer as a scenario decided: a code, a canned ranking, a raw answer, the engine, or no answer at all."""
        j, delay = ex.judgement, decision.delay_ms / 1000.0
        if decision.answer == "drop":
            ex.reply = {"fault": decision.fault}
            return Reply(200, b"", (), delay, decision.fault, decision.hold_ms / 1000.0)
        if decision.answer == "raw":
            ex.reply = decision.shown
            reply = Reply(decision.status, decision.body, decision.headers, delay)
        else:
            adapter = j.adapter
            if decision.answer == "code":
                ex.reply = adapter.error(adapter.echo(j.body), decision.code, decision.message)
            elif decision.answer == "recommend":
                ex.reply = adapter.canned(j.body, list(decision.ranking), decision.apply_limit, self.next_trace_id())
            else:
                ex.reply = self._engine(j)
            reply = Reply(200, jsontext.dumps(ex.reply), decision.headers, delay)
        if decision.fault == "malformed":
            reply.body = reply.body[: max(len(reply.body) // 2, 1)]
        elif decision.fault == "empty":
            reply.body = b""
        elif decision.fault == "truncated":  # the server sends half of this body under its full length
            reply.fault = "truncated"
        if decision.fault in ("malformed", "empty", "truncated"):
            ex.reply = {"fault": decision.fault, "would_have_answered": ex.reply}
        return reply

    # -- state -------------------------------------------------------------------------------

    def _engine(self, j: Judgement) -> dict:
        now = int(self.config.clock())
        adapter, store = j.adapter, self.store
        with store.lock:
            if j.kind in ("item", "action"):
                store.apply_report(j.partition, adapter, j.kind, j.body, now)
                if self.state is not None:  # committed before the reply leaves: code 0 means kept
                    self.state.append(j.partition, adapter.name, j.kind, now, j.raw)
                return adapter.accepted(j.body)
            part = store.peek(j.partition)
            req = adapter.rec_request(j.body)
            rankings = {pool: rank(part, wanted, now) for pool, wanted in adapter.rankings_wanted(req, j.body).items()}
        return adapter.recommended(j.body, req, rankings, self.next_trace_id())

    def _restore(self) -> None:
        """Rebuild the store from the state file, then put scenarios and the clock back where they were."""
        with self.store.lock:
            for key, dialect, kind, received, raw in self.state.reports():
                self.store.apply_report(key, DIALECTS[dialect], kind, json.loads(raw), int(received))
        self.scenarios.restore_states(self.state.states())
        saved_clock = self.state.clock()
        if saved_clock is not None:
            self.config.clock.restore(saved_clock)

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
        self.config.clock.reset(self.scenarios.clock_start)
        self.scenarios.apply_fixtures()
        memory.give_back()

    def _record(self, ex: Exchange) -> None:
        self.record(ex.judgement, ex.headers, ex.reply, ex.decisions, ex.started)

    def record(self, j: Judgement, headers: dict, reply, decisions: list, started: float, **extra) -> None:
        """One journal entry (the proxy adds ``upstream``); ``headers`` already masked."""
        self.journal.record({
            "time": self.config.clock(),
            "endpoint": j.endpoint,
            "dialect": j.dialect,
            "kind": j.kind,
            "partition": list(j.partition) if j.partition else None,
            "headers": headers,
            "body": masked_body(j.as_sent),
            "violations": [v.to_dict() for v in j.violations],
            "scenario": decisions,
            "reply": reply,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            **extra,
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


def _json_reply(reply: dict) -> Reply:
    return Reply(200, jsontext.dumps(reply))
