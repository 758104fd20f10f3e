"""Field paths, value matchers and ``{{ request.x }}`` templates of scenario rules.

A path is dotted with ``[*]`` (every element) or ``[n]``: ``data[*].uid``. A path that finds
nothing at the top of the body is also tried inside the records a dialect nests
(:data:`mockcre.dialects.RECORD_PATHS`: a cre upload's ``data[*]`` and their ``item_action``
entries), so ``uid`` matches a dm action and a cre upload alike.
Values are compared as text, because the dialects disagree on types (``1`` matches ``"1"``).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache

from mockcre.dialects import RECORD_PATHS
from mockcre.dialects.base import number

_SEGMENT = re.compile(r"([^.\[\]]+)|\[(\*|\d+)\]")
_TEMPLATE = re.compile(r"\{\{\s*request\.([A-Za-z0-9_.\[\]*]+)\s*\}\}")
_MISSING = object()


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
    if head == "*":
        if isinstance(node, list):
            for element in node:
                yield from _walk(element, rest)
    elif isinstance(head, int):
        if isinstance(node, list) and -len(node) <= head < len(node):
            yield from _walk(node[head], rest)
    elif isinstance(node, dict) and head in node:
        yield from _walk(node[head], rest)


def values(body, path: str) -> list:
    """Every value at ``path`` in ``body`` (see the module docstring for where it looks)."""
    parts = parse_path(path)
    found = list(_walk(body, parts))
    for records in RECORD_PATHS:
        if found or not isinstance(body, dict):
            break
        found = list(_walk(body, parse_path(records) + parts))
    return found


def as_text(value) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool) or value is None:
        return json.dumps(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return json.dumps(value, ensure_ascii=False) if isinstance(value, (dict, list)) else str(value)


_COMPARISONS = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b, "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}


def _one(value, spec) -> bool:
    """Does one found value satisfy a matcher (a scalar, or an operator object)?"""
    if not isinstance(spec, dict):
        return as_text(value) == as_text(spec)
    for op, expected in spec.items():
        if op == "present":
            continue
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
    return re.compile(pattern)


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
