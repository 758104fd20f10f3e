"""``mockcre proxy --record FILE``: the exchanges seen through the proxy as a scenario that replays them.

Each observed exchange becomes one rule: ``when`` names the endpoint, the kind and a few fields
that identify the request (the user, the items, the scene; never a secret, a timestamp or the
request id, so a client that sends fresh ids and times still matches); ``then`` answers the
upstream's reply as it came (``status`` and ``body``, and its Content-Type when not JSON). Values
of the reply that only echo the request become templates, so the replay echoes the new request:
the request id (``{{ request.seq_no }}`` / ``{{ request.request_id }}``, which for dm embeds a
timestamp) and the request's timestamps exactly; the token or MD5 wherever they appear. The file
therefore holds no secret and no wall-clock time.

The same request seen again answers in the order observed: every rule of a run of equal requests
but the last takes one request (``times: 1``), the last takes the rest.

Only requests that mockcre's lenient contract accepts are recorded: a replaying ``mockcre serve``
answers a contract-breaking request with its own -1 envelope before it looks at any rule.
"""

from __future__ import annotations

import atexit
import json
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import yaml

from mockcre.dialects import DIALECTS
from mockcre.dialects.base import is_secret, mask
from mockcre.scenarios.matching import as_text, exact_values

MIN_SECRET = 6  # a shorter "secret" would match too much of a reply to replace it safely
MAX_EXCHANGES = 10_000
JSON_TYPES = ("application/json",)


@dataclass
class Observed:
    endpoint: str
    kind: str
    dialect: str
    body: dict  # the request as sent (unmasked: its secrets are what gets replaced)
    status: int
    content_type: str | None
    reply: object  # parsed JSON, or the text of a reply that is not JSON
    note: str = ""
    secret_headers: tuple = ()  # the request's secret header values (domain.SECRET_HEADERS): masked if echoed


class Recorder:
    """Collects exchanges into ``path``, rewritten atomically as they come, so a killed proxy loses little.

    Each rule is turned into YAML once (a repeat of an earlier request re-renders only the rule it
    limits), and the file is written at most every ``MIN_INTERVAL`` seconds: a burst is written
    when it pauses (a timer), a lone request at once.
    """

    MIN_INTERVAL = 0.2

    def __init__(self, path: str, upstream: str):
        self.path = Path(path)
        self.upstream = _public_url(upstream)
        self.name = "recorded-" + (self.path.stem.removesuffix(".scenario") or "session")
        self.exchanges: list[Observed] = []
        self.skipped = 0  # requests the contract rejects: the replaying mock answers those itself
        self.dropped = 0  # beyond MAX_EXCHANGES
        self._rules: list[dict] = []
        self._texts: list[str] = []  # YAML of each rule, as an item of the rules list
        self._last_of: dict = {}  # group key -> index of the latest rule of that group
        self._lock = threading.Lock()
        self._dirty = False
        self._last_write = 0.0
        self._timer = None
        self.flush(force=True)  # a valid (empty) scenario from the start
        atexit.register(self.flush)

    def add(self, observed: Observed | None) -> None:
        with self._lock:
            if observed is None:
                self.skipped += 1
            elif len(self.exchanges) >= MAX_EXCHANGES:
                self.dropped += 1
            else:
                self._append(observed)
            self._dirty = True
            wait = self.MIN_INTERVAL - (time.monotonic() - self._last_write)
            if wait <= 0:
                self._write()
            elif self._timer is None:
                self._timer = threading.Timer(wait, self.flush)
                self._timer.daemon = True
                self._timer.start()

    def _append(self, observed: Observed) -> None:
        self.exchanges.append(observed)
        rule, key = rule_of(len(self.exchanges), observed)
        earlier = self._last_of.get(key)
        if earlier is not None:  # the earlier answer now takes one request only
            self._rules[earlier]["when"]["times"] = 1
            self._texts[earlier] = _dump([self._rules[earlier]])
        self._last_of[key] = len(self._rules)
        self._rules.append(rule)
        self._texts.append(_dump([rule]))

    def flush(self, force: bool = False) -> None:
        with self._lock:
            self._timer = None
            if self._dirty or force:
                self._write()

    def _write(self) -> None:
        head = {"name": self.name, "description": _description(self.upstream)}
        text = self._header() + _dump(head) + ("rules:\n" + "".join(self._texts) if self._texts else "rules: []\n")
        folder = self.path.parent
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=folder)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
            os.replace(tmp, self.path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self._dirty = False
        self._last_write = time.monotonic()

    def _header(self) -> str:
        lines = [f"# Recorded by mockcre proxy in front of {self.upstream}: {len(self.exchanges)} exchange(s).",
                 "# Replay: mockcre serve --scenario " + self.path.name]
        if self.skipped:
            lines.append(f"# {self.skipped} request(s) not recorded: they break the contract, and a replaying mockcre "
                         "answers those with its own -1 envelope before any rule.")
        if self.dropped:
            lines.append(f"# {self.dropped} exchange(s) after the first {MAX_EXCHANGES:,} not recorded.")
        return "\n".join(lines) + "\n"

    def scenario(self) -> dict:
        return scenario_of(self.exchanges, self.name, self.upstream)


def scenario_of(exchanges: list[Observed], name: str, upstream: str = "") -> dict:
    """The scenario (a mapping) that answers ``exchanges`` as observed, in order (what the recorder writes)."""
    rules, last_of = [], {}
    for n, ex in enumerate(exchanges, 1):
        rule, key = rule_of(n, ex)
        if key in last_of:
            rules[last_of[key]]["when"]["times"] = 1
        last_of[key] = len(rules)
        rules.append(rule)
    return {"name": name, "description": _description(upstream), "rules": rules}


def rule_of(n: int, ex: Observed) -> tuple[dict, str]:
    """The rule answering exchange ``n`` (from 1), and the key shared by the rules of equal requests.

    Of equal requests every rule but the last takes one (``times: 1``), the last all that follow;
    a rule with nothing to match on takes one only, so it never shadows the rules after it.
    """
    match = identifying_match(ex)
    when = {"endpoint": ex.endpoint, "kind": ex.kind}
    if match:
        when["match"] = match
    else:
        when["times"] = 1
    rule = {"name": _rule_name(n, ex, match), "when": when, "then": answer(ex)}
    return rule, json.dumps([ex.endpoint, ex.kind, match], sort_keys=True, default=str)


def _description(upstream: str) -> str:
    return (f"Exchanges observed by mockcre proxy{' in front of ' + upstream if upstream else ''}, "
            "answered as the upstream answered them.")


class _Dumper(getattr(yaml, "CSafeDumper", yaml.SafeDumper)):  # libyaml when present: several times faster
    def ignore_aliases(self, data):  # a value met twice is written twice: no &anchors in a file people read
        return True


_DUMPER = _Dumper


def _dump(data) -> str:
    return yaml.dump(data, Dumper=_DUMPER, allow_unicode=True, sort_keys=False, width=4096, default_flow_style=False)


def identifying_match(ex: Observed) -> dict:
    """The request's identifying fields (:attr:`Dialect.identifying`); absent ones are matched as absent."""
    match = {}
    for path in DIALECTS[ex.dialect].identifying.get(ex.kind, ()):
        found = exact_values(ex.body, path)
        if not found:
            match[path] = {"present": False}
        elif found[0] is None or isinstance(found[0], (str, int, float, bool)):
            match[path] = found[0]
    return match


def answer(ex: Observed) -> dict:
    reply = templated(ex.reply, ex.body, DIALECTS[ex.dialect].echoed, ex.secret_headers)
    then = {"status": ex.status, "body": reply}
    if ex.content_type and ex.content_type.split(";")[0].strip().lower() not in JSON_TYPES:
        then["headers"] = {"Content-Type": ex.content_type}
    return then


def templated(reply, body, echoed: tuple, secret_headers: tuple = ()):
    """``reply`` with the request's ``echoed`` values (exact) and body secrets (anywhere in a string) as
    templates, and the values of its secret headers, which a template cannot name, masked."""
    exact = {}
    for path in echoed:
        found = exact_values(body, path)
        if found and isinstance(found[0], str) and found[0]:
            exact.setdefault(found[0], path)
    secrets = {value: "{{ request.%s }}" % path for path, value in _secrets(body)}
    for value in secret_headers:  # the whole value first, then its credential alone ("Bearer <credential>")
        for part in dict.fromkeys((value, value.rpartition(" ")[2])):
            if len(part) >= MIN_SECRET:
                secrets.setdefault(part, mask(part))
    return _replace(reply, exact, secrets)


def _secrets(node, path: str = ""):
    """``(template path, value)`` of every secret field in a request body, in any case and at any depth."""
    if isinstance(node, dict):
        for key, value in node.items():
            at = f"{path}.{key}" if path else str(key)
            if is_secret(key):
                if isinstance(value, str) and len(value) >= MIN_SECRET:
                    yield at, value
            else:
                yield from _secrets(value, at)
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from _secrets(value, f"{path}[{i}]")


def _replace(node, exact: dict, secrets: dict):
    if isinstance(node, dict):
        return {k: _replace(v, exact, secrets) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace(v, exact, secrets) for v in node]
    if isinstance(node, str):
        if node in exact:
            return "{{ request.%s }}" % exact[node]
        for secret, shown in secrets.items():
            if secret in node:
                node = node.replace(secret, shown)
    return node


def _rule_name(n: int, ex: Observed, match: dict) -> str:
    shown = ", ".join(f"{k}={as_text(v)}" for k, v in match.items() if not isinstance(v, dict))
    status = f"HTTP {ex.status}" if ex.status != 200 else ""
    code = ex.reply.get("code") if isinstance(ex.reply, dict) else None
    what = " ".join(p for p in (status, f"code {as_text(code)}" if code is not None else "", ex.note) if p)
    return f"#{n} {ex.endpoint} {ex.kind}" + (f" {shown}" if shown else "") + (f" -> {what}" if what else "")


def _public_url(url: str) -> str:
    """The upstream without credentials, query or fragment: it goes into a file people share."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
