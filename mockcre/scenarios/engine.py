"""The scenario engine: loaded scenarios, their rules, counters, seeded draws and state machines.

Rules are tried in load order, scenario by scenario; the first whose ``when`` holds and whose
counters let it take the request answers. ``after`` and ``every`` count the requests that met
the rule's other conditions, ``times`` the answers the rule gave; a ``then`` list answers in turn.
``probability``, delay distributions and the latency profile draw from the scenario's own
``random.Random(seed)``, so the same seed and the same requests give the same answers and delays.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path

from mockcre.contracts.auth import Accounts
from mockcre.common.domain import CODE_FORMAT_ERROR

from .loader import ScenarioError, Source, check_source, dumps_body, latency_spec, read, resolve_inside
from .matching import Pattern, compiled_regex, parse_path, render
from .reply_headers import value_problem

log = logging.getLogger("mockcre.scenarios")

INITIAL_STATE = "Started"  # as in WireMock
MAX_DELAY_MS = 60_000
WATCH_RECHECK_S = 1.0  # how often the watcher looks whether the set of scenario folders changed


@dataclass
class Rule:
    index: int
    name: str
    when: dict
    then: list  # the answers in turn: one item for a plain then, the list's items for a sequence
    cycle: bool = False  # after the last answer of a sequence, start again (else the last repeats)
    matched: int = 0  # requests that met the rule's conditions: after and every count these
    answered: int = 0  # answers given: times counts these, and a sequence moves on with them

    def applies(self, endpoint: str, kind: str, body, headers: dict, state: str) -> bool:
        if "state" in self.when and self.when["state"] != state:
            return False
        return Pattern(self.when).applies(endpoint, kind, body, headers)

    def takes(self, rng: random.Random) -> int | None:
        """Count this matching request; the index of the answer in ``then`` that it gets, or None.

        ``after: N`` from the N-th matching request on, ``every: K`` every K-th matching request,
        ``probability: p`` a seeded draw for each request those let through, and ``times: M`` at
        most M answers in all: so ``after: 3, times: 1`` is the 3rd matching request only."""
        self.matched += 1
        n, when = self.matched, self.when
        if "times" in when and self.answered >= when["times"]:
            return None
        if n < when.get("after", 1) or n % when.get("every", 1):
            return None
        if "probability" in when and rng.random() >= when["probability"]:
            return None
        item = self.answered % len(self.then) if self.cycle else min(self.answered, len(self.then) - 1)
        self.answered += 1
        return item


@dataclass
class Scenario:
    name: str
    data: dict
    rules: list
    fixtures: list  # prepared batches: (partition keys, kind, records)
    label: str
    base_dir: Path | None
    path: Path | None
    mtime: float | None
    state: str = INITIAL_STATE
    rng: random.Random = field(default_factory=random.Random)

    def restart(self) -> None:
        self.state = INITIAL_STATE
        self.rng = random.Random(self.data.get("seed", 0))
        for rule in self.rules:
            rule.matched = rule.answered = 0

    def describe(self) -> dict:
        return {"name": self.name, "description": self.data.get("description", ""), "rules": len(self.rules),
                "state": self.state, "source": self.label, "strict": bool(self.data.get("strict")),
                "fixtures": {"items": self._count("item"), "actions": self._count("action")}}

    def _count(self, kind: str) -> int:
        return sum(len(records) for _, of_kind, records in self.fixtures if of_kind == kind)


JSON_CONTENT_TYPE = "application/json; charset=utf-8"
#: Faults that end the connection before any reply: the request is lost, so nothing is stored.
DROPPING_FAULTS = ("reset", "close", "garbage", "timeout")


@dataclass(frozen=True)
class Decision:
    """A rule's answer, resolved against the request: the service carries it out as it stands.

    ``answer`` says what to send: ``"code"`` (the dialect's envelope with ``code`` and ``message``),
    ``"recommend"`` (the canned ``ranking``), ``"raw"`` (``status``, ``body`` and ``headers`` as
    they are), ``"drop"`` (no reply at all: the :data:`DROPPING_FAULTS`) or ``"engine"``
    (the stateful engine answers, after the delay). ``fault`` ``malformed``/``empty``/``truncated``
    then spoils the reply that was made.
    """

    scenario: str
    rule: str
    index: int
    state: str
    next_state: str | None
    delay_ms: float
    answer: str
    headers: tuple = ((("Content-Type", JSON_CONTENT_TYPE),))
    fault: str | None = None
    hold_ms: float = 0.0  # how long a timeout fault holds the connection
    code: int | None = None
    message: str = ""
    ranking: tuple = ()  # ((item id, score or None), ...)
    apply_limit: bool = True
    status: int = 200
    body: bytes = b""
    shown: object = None  # what the journal shows of a raw answer
    refused: str = ""  # why the rule's answer could not be sent (a request value unfit for a header)
    item: int | None = None  # which answer of a then list answered (0-based)

    def record(self) -> dict:
        out = {"scenario": self.scenario, "rule": self.rule, "index": self.index, "state": self.state}
        if self.item is not None:
            out["item"] = self.item
        if self.next_state:
            out["next_state"] = self.next_state
        if self.delay_ms:
            out["delay_ms"] = round(self.delay_ms, 3)
        if self.fault:
            out["fault"] = self.fault
        if self.refused:
            out["refused"] = self.refused
        return out


def resolve(then: dict, body, base_dir: Path | None) -> dict:
    """The fields of a :class:`Decision` that ``then`` gives for this request (templates filled in)."""
    fault = then.get("fault")
    headers = {"Content-Type": JSON_CONTENT_TYPE, **render(then.get("headers", {}), body)}
    for name, value in headers.items():
        problem = value_problem(value)
        if problem:  # the request put it there (load refused fixed text): refuse the request, send nothing of it
            template = then["headers"][name]
            return {"answer": "code", "code": CODE_FORMAT_ERROR, "refused": f"reply header {name}: {problem}",
                    "message": f"format error (格式错误): the scenario copies the request into reply header {name} "
                               f"({template!r}), and the value {problem}; send that field without control "
                               "characters or non-ASCII text"}
    resolved = {"fault": fault, "headers": tuple(headers.items())}
    if fault in DROPPING_FAULTS:  # the request is lost: nothing is stored
        return {**resolved, "answer": "drop", "hold_ms": then.get("timeout_ms", 30_000) if fault == "timeout" else 0.0}
    if "code" in then:
        return {**resolved, "answer": "code", "code": int(then["code"]),
                "message": render(then.get("msg", then.get("message", "")), body)}
    if "recommend" in then:
        return {**resolved, "answer": "recommend", "ranking": tuple(_ranked(e) for e in render(then["recommend"], body)),
                "apply_limit": then.get("apply_request_num", True)}
    if any(k in then for k in ("status", "body", "body_file")):
        if "body_file" in then:
            payload = render(resolve_inside(base_dir, then["body_file"]).read_text(encoding="utf-8"), body)
        else:
            payload = render(then.get("body", ""), body)
        data = dumps_body(payload)
        shown = payload if isinstance(payload, (dict, list)) else {"raw": payload if isinstance(payload, str) else data.decode()}
        return {**resolved, "answer": "raw", "status": then.get("status", 200), "body": data, "shown": shown}
    return {**resolved, "answer": "engine"}  # passthrough, or only delay / next_state / a fault that spoils the reply


def _ranked(entry) -> tuple:
    """A canned ranking entry, ``{"id"|"item": …, "score"|"weight": …}`` or a bare id, as ``(id, score or None)``."""
    if isinstance(entry, dict):
        return str(entry.get("id", entry.get("item"))), entry.get("score", entry.get("weight"))
    return str(entry), None


class ScenarioEngine:
    def __init__(self, store, clock, base_accounts: Accounts | None = None, latency=None, seed: int = 0):
        self._store = store
        self._latency = None if latency is None else latency_spec(latency)  # --latency: wins over every scenario's
        self._seed = seed
        self._latency_rng = random.Random(seed)
        self._clock = clock
        self._base_accounts = base_accounts or Accounts()
        self._scenarios: dict[str, Scenario] = {}
        self._lock = threading.RLock()
        self._watcher: threading.Thread | None = None
        self._stop = threading.Event()
        self.accounts = self._base_accounts
        self.strict = False
        self._fixtures_snapshot: dict | None = None  # the store holding only the fixtures, once a reset made it

    # -- loading -----------------------------------------------------------------------------

    def load(self, source, base_dir=None, label: str | None = None) -> str:
        """Load (or replace, by name) a scenario from a path, YAML/JSON text or a mapping; returns its name."""
        scenario = self._build(read(source, base_dir, label))
        with self._lock:
            self._scenarios[scenario.name] = scenario
            self._refresh()
            if "clock" in scenario.data:
                self._clock.reset(self.clock_start)
            self._apply(scenario)
        return scenario.name

    def _build(self, src: Source) -> Scenario:
        problems, batches = check_source(src, self._clock())
        errors = [p for p in problems if p.severity == "error"]
        if errors:
            raise ScenarioError(errors)
        for warning in problems:
            log.warning("mockcre: %s", warning)
        data = src.data
        rules = [Rule(i, r.get("name") or f"rules[{i}]", r["when"], r["then"] if isinstance(r["then"], list) else [r["then"]],
                      bool(r.get("cycle"))) for i, r in enumerate(data.get("rules", []))]
        mtime = src.path.stat().st_mtime if src.path else None
        scenario = Scenario(data["name"], data, rules, batches, src.label, src.base_dir, src.path, mtime)
        scenario.restart()
        return scenario

    def unload(self, name: str | None = None) -> list[str]:
        with self._lock:
            names = list(self._scenarios) if name is None else [name] if name in self._scenarios else []
            for n in names:
                del self._scenarios[n]
            self._refresh()
            if names:  # the compiled patterns and paths of unloaded rules go with them (re keeps its own cache too)
                compiled_regex.cache_clear()
                parse_path.cache_clear()
                re.purge()
        return names

    def _refresh(self) -> None:
        """After the set of loaded scenarios changed: accounts, strictness and the fixtures' snapshot follow."""
        self._fixtures_snapshot = None
        accounts = Accounts(set(self._base_accounts.cre_tokens), dict(self._base_accounts.dm_tokens))
        for s in self._scenarios.values():
            conf = s.data.get("accounts") or {}
            accounts.cre_tokens |= set((conf.get("cre") or {}).get("tokens", []))
            accounts.dm_tokens.update((conf.get("dm") or {}).get("bids", {}))
        self.accounts = accounts
        self.strict = any(s.data.get("strict") for s in self._scenarios.values())

    @property
    def clock_start(self) -> float | None:
        """Where a reset puts the clock: the first loaded scenario's ``clock:``, if any declares one."""
        return next((s.data["clock"] for s in self._scenarios.values() if "clock" in s.data), None)

    def describe(self) -> list[dict]:
        with self._lock:
            return [s.describe() for s in self._scenarios.values()]

    def __len__(self) -> int:
        return len(self._scenarios)

    # -- state -------------------------------------------------------------------------------

    def reset_states(self) -> None:
        with self._lock:
            self._latency_rng = random.Random(self._seed)
            for s in self._scenarios.values():
                s.restart()

    def restore_states(self, states: dict) -> None:
        """Put loaded scenarios back in saved states (``--state`` keeps them across restarts)."""
        with self._lock:
            for name, state in states.items():
                if name in self._scenarios:
                    self._scenarios[name].state = state

    def restore_fixtures(self) -> None:
        """The store as a fresh load leaves it: the loaded scenarios' fixtures and nothing else.

        The first call after a load reports the fixtures and keeps a snapshot of the store; later
        calls copy the snapshot back, ~20x faster than reporting 320 items and 1,669 actions again."""
        with self._lock:
            if self._fixtures_snapshot is None:
                self._store.reset()
                for s in self._scenarios.values():
                    self._apply(s)
                self._fixtures_snapshot = self._store.snapshot()
            else:
                self._store.reset(to=self._fixtures_snapshot)

    def _apply(self, scenario: Scenario) -> None:
        with self._store.lock:
            for keys, kind, records in scenario.fixtures:
                for key in keys:  # a fresh copy of each item: the store keeps and updates what it is given
                    self._store.apply(key, kind, [dataclasses.replace(r, reports=1) for r in records]
                                      if kind == "item" else records)

    # -- deciding ----------------------------------------------------------------------------

    def decide(self, endpoint: str, kind: str | None, body, headers: dict) -> Decision | None:
        if not self._scenarios:
            return None
        with self._lock:
            for s in self._scenarios.values():
                for rule in s.rules:
                    if not rule.applies(endpoint, kind, body, headers, s.state):
                        continue
                    item = rule.takes(s.rng)
                    if item is None:
                        continue
                    then, before = rule.then[item], s.state
                    delay = _draw_delay(then["delay_ms"], s.rng) if "delay_ms" in then else self._latency_locked()
                    if "next_state" in then:
                        s.state = then["next_state"]
                    return Decision(s.name, rule.name, rule.index, before, then.get("next_state"), delay,
                                    item=item if len(rule.then) > 1 else None, **resolve(then, body, s.base_dir))
        return None

    def latency_ms(self) -> float:
        """A delay drawn from the latency profile (``--latency``, else the first scenario's ``latency:``), or 0.

        The service adds it to every answer no rule gave; a rule's answer has it already (unless the
        rule sets its own ``delay_ms``)."""
        if self._latency is None and not self._scenarios:
            return 0.0
        with self._lock:
            return self._latency_locked()

    def _latency_locked(self) -> float:
        if self._latency is not None:
            return _draw_delay(self._latency, self._latency_rng)
        for s in self._scenarios.values():
            if "latency" in s.data:
                return _draw_delay(s.data["latency"], s.rng)
        return 0.0

    # -- hot reload --------------------------------------------------------------------------

    def watch(self) -> None:
        """Reload changed scenario files in the background; a file that no longer lints keeps the old version.

        The folders of the file-backed scenarios are watched with OS file events (watchfiles: inotify,
        FSEvents), so an edit is seen at once and an idle server does no work; :meth:`stop_watching` ends it."""
        if self._watcher is None:
            self._stop = threading.Event()
            self._watcher = threading.Thread(target=self._watch_loop, name="mockcre-watch", daemon=True)
            self._watcher.start()

    def stop_watching(self, timeout: float = 5.0) -> None:
        """End the watcher thread, if one runs, and wait for it."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            self._stop.set()
            watcher.join(timeout)

    def _watched_folders(self) -> set[str]:
        with self._lock:
            return {str(s.path.parent) for s in self._scenarios.values() if s.path is not None}

    def _watch_loop(self) -> None:
        from watchfiles import watch

        while not self._stop.is_set():
            folders = self._watched_folders()
            if not folders:  # nothing on disk yet: look again when a scenario file may have been loaded
                self._stop.wait(WATCH_RECHECK_S)
                continue
            self.reload_changed()  # an edit made before these folders were watched
            for changes in watch(*folders, stop_event=self._stop, yield_on_timeout=True,
                                 rust_timeout=int(WATCH_RECHECK_S * 1000), raise_interrupt=False):
                if changes:
                    self.reload_changed()
                if self._watched_folders() != folders:  # a scenario file was loaded or unloaded
                    break

    def reload_changed(self) -> list[str]:
        """Check every file-backed scenario once; returns the names reloaded."""
        reloaded = []
        with self._lock:
            current = list(self._scenarios.values())
        for old in current:
            if old.path is None:
                continue
            try:
                mtime = os.stat(old.path).st_mtime
            except OSError:
                continue
            if mtime == old.mtime:
                continue
            old.mtime = mtime
            try:
                new = self._build(read(old.path))
            except ScenarioError as exc:
                log.warning("mockcre: %s changed but does not lint; keeping the loaded version:\n  %s",
                            old.label, "\n  ".join(exc.problems))
                continue
            with self._lock:
                if new.name != old.name:
                    self._scenarios.pop(old.name, None)
                self._scenarios[new.name] = new
                self._refresh()
                self._apply(new)
            log.warning("mockcre: reloaded %s: %d rules (was %d)", old.label, len(new.rules), len(old.rules))
            reloaded.append(new.name)
        return reloaded


def _draw_delay(spec, rng: random.Random) -> float:
    if spec is None:
        return 0.0
    if isinstance(spec, (int, float)):
        return float(spec)
    if "uniform" in spec:
        low, high = spec["uniform"]
        return rng.uniform(min(low, high), max(low, high))
    params = spec["lognormal"]
    return min(params["median"] * math.exp(params["sigma"] * rng.gauss(0.0, 1.0)), MAX_DELAY_MS)
