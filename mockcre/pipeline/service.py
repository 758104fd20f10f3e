"""One request, one way: dialect adapter → contracts → auth → store / recommender → reply → journal.

:class:`Service` knows nothing of Flask: ``handle`` takes bytes and headers and returns a
:class:`Reply`, so the HTTP routes, the pytest plugin and the fuzz tests all drive the same code.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
import weakref
from dataclasses import dataclass, field

from mockcre.common import domain, jsontext, memory
from mockcre.pipeline.config import Config
from mockcre.contracts import ERROR, Violation, check_known, has_errors, jsonbody
from mockcre.contracts.transport import decode_transport
from mockcre.contracts.violations import describe_value
from mockcre.dialects import DIALECTS, for_endpoint
from mockcre.dialects.base import WrongKind
from mockcre.dialects.base import masked_body
from mockcre.pipeline.journal import Journal, masked_headers
from mockcre.pipeline.persist import StateFile, StateWriteError
from mockcre.model.recommend import rank
from mockcre.scenarios import Decision, ScenarioEngine
from mockcre.model.store import Store

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
    checked = check_known(body, adapter.name, j.kind, strict, config.clock())
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

    judgement: Judgement | None  # None until judged
    headers: dict
    started: float
    decisions: list = field(default_factory=list)  # scenario rules and state changes
    reply: dict | None = None
    delay_ms: float = 0.0  # the wait before the reply: a rule's delay_ms, else the latency profile


class Service:
    """The pipeline behind every face. ``close()`` stops the scenario watcher and closes the journal file and
    the ``--state`` database; it is safe to call twice, and runs by itself when the service is collected."""

    def __init__(self, config: Config | dict | None = None):
        self.config = Config.from_mapping(config)
        self.store = Store()
        self.journal = Journal(self.config.journal_size, self.config.journal_file)
        self._trace_ids = random.Random(f"trace ids:{self.config.seed}")
        self._trace_lock = threading.Lock()
        self.scenarios = ScenarioEngine(self.store, self.config.clock, self.config.accounts, self.config.latency,
                                        self.config.seed)
        for scenario in self.config.scenarios:
            self.scenarios.load(scenario)
        self.state = StateFile(self.config.state_file) if self.config.state_file else None
        # Runs once: on close(), when the service is collected, or at interpreter exit (a serve worker).
        self.close = weakref.finalize(self, _close_all, self.scenarios, self.journal, self.state)
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
        ex = Exchange(None, masked_headers(headers), time.perf_counter())
        try:
            low = {k.lower(): v for k, v in headers}
            ex.judgement = self.judge(endpoint, raw, low, host)
            reply = self._answer(ex, low)
            if not ex.decisions:  # no rule answered (the engine did, or the judge refused): the profile's delay
                reply.delay = self.scenarios.latency_ms() / 1000.0
            ex.delay_ms = reply.delay * 1000.0
        except Exception:  # the engine failed: the dialect's system error, the traceback to the log only
            ex.judgement = ex.judgement or Judgement(endpoint)
            log.exception("mockcre: internal error while answering %s", ex.judgement.endpoint)
            adapter = ex.judgement.adapter
            ex.reply = adapter.error(adapter.echo(ex.judgement.body), domain.CODE_SYSTEM_ERROR,
                                     "system error (系统错误): mockcre failed while answering; see the server log")
            reply = _json_reply(ex.reply)
        extra = {"delay_ms": round(ex.delay_ms, 3)} if ex.delay_ms else {}
        self.record(ex.judgement, ex.headers, ex.reply, ex.decisions, ex.started, **extra)
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
                if self.state is not None:
                    # written ahead: code 0 means kept, and a failed write (disk full) leaves the store untouched
                    try:
                        self.state.append(j.partition, adapter.name, j.kind, now, j.raw)
                    except StateWriteError as exc:
                        log.error("mockcre: %s; the report was refused with -2 and not applied", exc)
                        return adapter.error(adapter.echo(j.body), domain.CODE_SYSTEM_ERROR,
                                             "system error (系统错误): mockcre could not write the report to its --state "
                                             "file (is the disk full?); nothing was applied: send it again later")
                store.apply_report(j.partition, adapter, j.kind, j.body, now)
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
        """18 digits, like the document's: 60 seeded random bits each (a repeat is a billion requests away), so
        the same seed gives the same sequence."""
        with self._trace_lock:
            n = self._trace_ids.getrandbits(60)
        return f"{n % 10**18:018d}"

    def reset(self, scenarios: bool = False) -> None:
        """Empty journal, restart scenario states, the store back to their fixtures alone (or unload them)."""
        if scenarios:
            self.scenarios.unload()
        self.journal.clear()
        if self.state is not None:
            self.state.clear()
        self.scenarios.reset_states()
        self.config.clock.reset(self.scenarios.clock_start)
        self.scenarios.restore_fixtures()
        memory.give_back()

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


def _close_all(scenarios, journal, state) -> None:
    """What :meth:`Service.close` does: stop the scenario watcher, close the journal and SQLite files."""
    scenarios.stop_watching()
    journal.close()
    if state is not None:
        state.close()


def _json_reply(reply: dict) -> Reply:
    return Reply(200, jsontext.dumps(reply))
