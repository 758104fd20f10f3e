"""The scenario engine: loaded scenarios, their rules, counters, seeded draws and state machines.

Rules are tried in load order, scenario by scenario; the first whose ``when`` holds answers.
``times``/``after``/``every`` count the requests that met the rule's other conditions;
``probability`` and delay distributions draw from the scenario's own ``random.Random(seed)``,
so the same seed and the same requests give the same answers and delays.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import random
import re
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from mockcre.auth import Accounts

from .loader import ScenarioError, Source, check_source, dumps_body, read, resolve_inside
from .matching import compiled_regex, matches, parse_path, render, values

log = logging.getLogger("mockcre.scenarios")

INITIAL_STATE = "Started"  # as in WireMock
MAX_DELAY_MS = 60_000


@dataclass
class Rule:
    index: int
    name: str
    when: dict
    then: dict
    matched: int = 0  # requests that met the rule's conditions (for times/after/every)

    def applies(self, endpoint: str, kind: str, body, headers: dict, state: str) -> bool:
        when = self.when
        if not _listed(when.get("endpoint", "any"), endpoint) or not _listed(when.get("kind", "any"), kind):
            return False
        if "state" in when and when["state"] != state:
            return False
        for path, spec in when.get("match", {}).items():
            if not matches(values(body, path), spec):
                return False
        for name, spec in when.get("headers", {}).items():
            value = headers.get(name.lower())
            if not matches([] if value is None else [value], spec):
                return False
        return True

    def counted_in(self, rng: random.Random) -> bool:
        """Count this request; True when times/after/every/probability let the rule take it."""
        self.matched += 1
        n, when = self.matched, self.when
        if "times" in when and n > when["times"]:
            return False
        if "after" in when and n < when["after"]:
            return False
        if "every" in when and n % when["every"]:
            return False
        return "probability" not in when or rng.random() < when["probability"]


def _listed(spec, value) -> bool:
    return spec == "any" or value == spec or (isinstance(spec, list) and ("any" in spec or value in spec))


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
            rule.matched = 0

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

    def record(self) -> dict:
        out = {"scenario": self.scenario, "rule": self.rule, "index": self.index, "state": self.state}
        if self.next_state:
            out["next_state"] = self.next_state
        if self.delay_ms:
            out["delay_ms"] = round(self.delay_ms, 3)
        if self.fault:
            out["fault"] = self.fault
        return out


def resolve(then: dict, body, base_dir: Path | None) -> dict:
    """The fields of a :class:`Decision` that ``then`` gives for this request (templates filled in)."""
    fault = then.get("fault")
    resolved = {"fault": fault,
                "headers": tuple({"Content-Type": JSON_CONTENT_TYPE, **render(then.get("headers", {}), body)}.items())}
    if fault in DROPPING_FAULTS:
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
    def __init__(self, store, clock, base_accounts: Accounts | None = None):
        self._store = store
        self._clock = clock
        self._base_accounts = base_accounts or Accounts()
        self._scenarios: dict[str, Scenario] = {}
        self._lock = threading.RLock()
        self._watcher: threading.Thread | None = None
        self.accounts = self._base_accounts
        self.strict = False

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
        if problems:
            raise ScenarioError(problems)
        data = src.data
        rules = [Rule(i, r.get("name") or f"rules[{i}]", r["when"], r["then"]) for i, r in enumerate(data.get("rules", []))]
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
            for s in self._scenarios.values():
                s.restart()

    def restore_states(self, states: dict) -> None:
        """Put loaded scenarios back in saved states (``--state`` keeps them across restarts)."""
        with self._lock:
            for name, state in states.items():
                if name in self._scenarios:
                    self._scenarios[name].state = state

    def apply_fixtures(self) -> None:
        with self._lock:
            for s in self._scenarios.values():
                self._apply(s)

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
                    if rule.applies(endpoint, kind, body, headers, s.state) and rule.counted_in(s.rng):
                        before = s.state
                        delay = _draw_delay(rule.then.get("delay_ms"), s.rng)
                        if "next_state" in rule.then:
                            s.state = rule.then["next_state"]
                        return Decision(s.name, rule.name, rule.index, before, rule.then.get("next_state"), delay,
                                        **resolve(rule.then, body, s.base_dir))
        return None

    # -- hot reload --------------------------------------------------------------------------

    def watch(self, interval: float = 0.5) -> None:
        """Reload changed scenario files in the background; a file that no longer lints keeps the old version."""
        if self._watcher is None:
            self._watcher = threading.Thread(target=self._watch_loop, args=(interval,), name="mockcre-watch", daemon=True)
            self._watcher.start()

    def _watch_loop(self, interval: float) -> None:
        while True:  # a daemon thread: it ends with the process
            time.sleep(interval)
            self.reload_changed()

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
