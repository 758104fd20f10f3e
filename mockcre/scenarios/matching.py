"""The one request-matching language: a scenario's ``when``, ``assert_called``, the recorder, the journal filter.

A pattern is a ``when`` object: ``endpoint`` and ``kind`` (a name, a list, or ``any``), ``match``
(field path -> matcher) and ``headers`` (name, any case -> matcher). Scenarios decide with it; the
test handle, ``POST /__admin/requests/find`` and the dashboard ask the journal with it, as WireMock
uses one RequestPattern for stubbing and for verification.

A path is dotted with ``[*]`` (every element) or ``[n]``: ``data[*].uid``; a name met on a list
applies to each element. A path that finds nothing at the top of the body is also tried inside the
records the endpoint's dialect nests (:func:`mockcre.dialects.record_paths`: a cre upload's
``data[*]`` and their ``item_action`` entries), so ``uid`` matches a dm action and a cre upload alike.
On a journal entry the names ``user``, ``item`` (any id the body names), ``code`` (the reply's),
``kind``, ``dialect``, ``partition`` and ``seq`` mean the entry's own fields.

A matcher is a scalar (equal as text, because the dialects disagree on types: ``1`` matches ``"1"``)
or an object of operators that must all hold: ``equals``, ``regex``, ``contains``, ``in``, ``gt``,
``gte``, ``lt``, ``lte``, ``present``. ``regex`` searches the value (it may match anywhere, as
``re.search``; anchor with ``^...$`` for the whole value) with RE2, whose time is linear in the
value: no pattern can make the server backtrack for seconds. RE2 refuses backreferences and
lookaround; lint and the admin API say so.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache

import re2

from mockcre.dialects import record_paths
from mockcre.dialects.base import number

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")
_TEMPLATE = re.compile(r"\{\{\s*request\.([A-Za-z0-9_.\[\]*]+)\s*\}\}")
_RE2_OPTIONS = re2.Options()
_RE2_OPTIONS.log_errors = False  # a refused pattern is reported to whoever wrote it, not to stderr
ENTRY_FIELDS = ("user", "item", "code", "kind", "dialect", "partition", "seq")
REQUEST_KEYS = ("endpoint", "kind", "match", "headers")  # what a pattern says of one request
_COMPARISONS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}


class PatternError(ValueError):
    """A pattern that cannot be used; ``field`` is where (``match.user_id.regex``)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


@lru_cache(maxsize=1024)
def parse_path(path: str) -> tuple:
    parts = []
    for name, index in _SEGMENT.findall(path):
        parts.append(name if name else ("*" if index == "*" else int(index)))
    return tuple(parts)


def _walk(node, parts):
    if not parts:
        yield node
        return
    head, rest = parts[0], parts[1:]
    if isinstance(node, list) and isinstance(head, str):  # "[*]", or a name met on a list: each element
        for element in node:
            yield from _walk(element, rest if head == "*" else parts)
    elif isinstance(head, int):
        if isinstance(node, list) and head < len(node):  # a path's index is never negative
            yield from _walk(node[head], rest)
    elif isinstance(node, dict) and head in node:
        yield from _walk(node[head], rest)


def exact_values(body, path: str) -> list:
    """The values at ``path`` itself (no looking inside nested records)."""
    return list(_walk(body, parse_path(path)))


def values(body, path: str, endpoint: str | None = None) -> list:
    """Every value at ``path`` in ``body`` (see the module docstring for where it looks)."""
    found = exact_values(body, path)
    for records in record_paths(endpoint) if isinstance(body, dict) and not found else ():
        found = list(_walk(body, parse_path(records) + parse_path(path)))
        if found:
            break
    return found


def entry_values(entry: dict, path: str) -> list:
    """The values of ``path`` in a journal entry: its own fields (:data:`ENTRY_FIELDS`), else its body's."""
    if path in ("user", "item"):
        return list(entry.get(path + "s") or ())
    if path == "code":
        reply = entry.get("reply")
        return [reply["code"]] if isinstance(reply, dict) and "code" in reply else []
    if path in ENTRY_FIELDS:
        return [entry.get(path)]
    return values(entry.get("body"), path, entry.get("endpoint"))


def as_text(value) -> str:
    """A value as the text matchers compare: JSON's spelling (``true``, ``null``, ``3`` for 3.0), strings as they are."""
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, (bool, dict, list)) or value is None:
        return json.dumps(value, ensure_ascii=False)
    return str(value)  # a number, or a Python-only matcher value (Decimal, a UUID...) as it prints


def _one(value, spec) -> bool:
    """Does one found value satisfy a matcher (a scalar, an operator object, or in Python a compiled regex
    or a predicate)?"""
    if isinstance(spec, re.Pattern):
        return not isinstance(value, (dict, list)) and spec.search(as_text(value)) is not None
    if callable(spec):
        try:
            return bool(spec(value))
        except Exception:
            return False
    if not isinstance(spec, dict):
        return as_text(value) == as_text(spec)
    for op, expected in spec.items():
        if op == "equals" and as_text(value) != as_text(expected):
            return False
        if op == "regex" and not compiled_regex(expected).search(as_text(value)):
            return False
        if op == "contains" and expected not in as_text(value):
            return False
        if op == "in" and as_text(value) not in {as_text(e) for e in expected}:
            return False
        if op in _COMPARISONS:
            amount = number(value, None)
            if amount is None or not _COMPARISONS[op](amount, expected):
                return False
    return True


def matches(found: list, spec) -> bool:
    """A path's found values satisfy a matcher when any one does; ``present`` speaks of existence."""
    if isinstance(spec, dict) and "present" in spec:
        if bool(found) != spec["present"]:
            return False
        if not found or len(spec) == 1:
            return True
    return any(_one(value, spec) for value in found)


@lru_cache(maxsize=512)
def compiled_regex(pattern: str):
    """``pattern`` compiled by RE2; raises :class:`re2.error` for what RE2 refuses (backreferences, lookaround)."""
    return re2.compile(pattern, _RE2_OPTIONS)


def regex_problem(pattern: str) -> str | None:
    """Why RE2 refuses ``pattern``, or None."""
    try:
        compiled_regex(pattern)
    except re2.error as exc:
        reason = exc.args[0].decode() if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        return f"regex does not compile in RE2 ({reason}); mockcre matches with RE2, which has no " \
               "backreferences or lookaround, so that no pattern can make matching take exponential time"
    return None


def _listed(spec, value) -> bool:
    return spec == "any" or value == spec or (isinstance(spec, list) and ("any" in spec or value in spec))


@dataclass(frozen=True)
class Pattern:
    """A ``when`` object's request conditions, read once; ask it of a live request or of journal entries."""

    when: dict

    @classmethod
    def checked(cls, when) -> "Pattern":
        """A pattern from untrusted JSON: the scenario schema's ``when``, request keys only, RE2 regexes.
        Raises :class:`PatternError` naming the field."""
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import best_match

        from mockcre.common.resources import load_schema

        if not isinstance(when, dict):
            raise PatternError("pattern", f"expected a JSON object like a scenario's when, got {as_text(when)[:60]}")
        for key in when:
            if key not in REQUEST_KEYS:
                raise PatternError(key, f"not a request condition; a pattern takes {', '.join(REQUEST_KEYS)}")
        schema = load_schema("scenario")
        error = best_match(Draft202012Validator({"$defs": schema["$defs"], "$ref": "#/$defs/when"}).iter_errors(when))
        if error is not None:
            where = ".".join(str(p) for p in error.absolute_path) or "pattern"
            raise PatternError(where, error.message)
        for block in ("match", "headers"):
            for path, spec in (when.get(block) or {}).items():
                problem = regex_problem(spec["regex"]) if isinstance(spec, dict) and "regex" in spec else None
                if problem:
                    raise PatternError(f"{block}.{path}.regex", problem)
        return cls(when)

    def differences(self, endpoint, kind, found_at, headers: dict) -> list[tuple]:
        """(field, expected, found values) for each condition a request fails; ``found_at(path)`` reads its fields."""
        when, out = self.when, []
        for name, value in (("endpoint", endpoint), ("kind", kind)):
            if not _listed(when.get(name, "any"), value):
                out.append((name, when[name], [value]))
        for path, spec in when.get("match", {}).items():
            found = found_at(path)
            if not matches(found, spec):
                out.append((path, spec, found))
        for name, spec in when.get("headers", {}).items():
            value = headers.get(name.lower())
            if not matches([] if value is None else [value], spec):
                out.append(("headers." + name, spec, [] if value is None else [value]))
        return out

    def applies(self, endpoint: str, kind: str, body, headers: dict) -> bool:
        """Does a request being answered meet every condition?"""
        return not self.differences(endpoint, kind, lambda path: values(body, path, endpoint), headers)

    def entry_differences(self, entry: dict) -> list[tuple]:
        headers = {k.lower(): v for k, v in (entry.get("headers") or {}).items()}
        return self.differences(entry.get("endpoint"), entry.get("kind"), lambda path: entry_values(entry, path), headers)

    def select(self, entries: list[dict]) -> list[dict]:
        return [e for e in entries if not self.entry_differences(e)]

    def closest(self, entries: list[dict], count: int) -> list[tuple[dict, list]]:
        """The ``count`` entries that fail the fewest conditions (newest first among equals), with what differs."""
        scored = [(e, self.entry_differences(e)) for e in entries]
        scored.sort(key=lambda pair: (len(pair[1]), -pair[0]["seq"]))
        return scored[:count]


def render(template, body):
    """Fill ``{{ request.path }}`` in strings, recursively in lists and objects; no code is ever run."""
    if isinstance(template, str):
        def field(m):
            found = values(body, m.group(1))
            return as_text(found[0]) if found else ""

        return _TEMPLATE.sub(field, template)
    if isinstance(template, list):
        return [render(t, body) for t in template]
    if isinstance(template, dict):
        return {k: render(v, body) for k, v in template.items()}
    return template
