"""The one shape every finding takes, from schema errors to semantic lint."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass

ERROR = "error"
WARNING = "warning"
MAX_VIOLATIONS = 200  # per body: one with 200,000 unknown or repeated keys must not cost seconds and megabytes to explain


@dataclass(frozen=True)
class Violation:
    """One problem with a body: where (JSON pointer), what, how bad, and which rule said so."""

    path: str
    message: str
    severity: str = ERROR
    rule: str = "schema"

    def to_dict(self) -> dict:
        return {"path": self.path, "message": self.message, "severity": self.severity, "rule": self.rule}

    def __str__(self) -> str:
        return f"{self.severity}: {self.path or '/'}: {self.message} [{self.rule}]"


def pointer(parts) -> str:
    """JSON pointer (RFC 6901) of a sequence of keys and indexes."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def display_path(parts) -> str:
    """A path people read: ``data[0].uid``; the whole body is ``body``."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out or "body"


def describe_value(value, limit: int = 60) -> str:
    """A short, safe rendering of a received value for messages (never recurses into big structures)."""
    if isinstance(value, dict):
        return f"an object with {len(value)} key{'s' * (len(value) != 1)}"
    if isinstance(value, list):
        return f"an array of {len(value)} element{'s' * (len(value) != 1)}"
    text = json.dumps(value, ensure_ascii=False)
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    kind = json_type(value)
    return f"{kind} {text}" if kind in ("number", "boolean") else text


def json_type(value) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def has_errors(violations) -> bool:
    return any(v.severity == ERROR for v in violations)


def capped(violations) -> list:
    """At most :data:`MAX_VIOLATIONS` of ``violations`` (read no further), then one saying there were more."""
    out = list(itertools.islice(violations, MAX_VIOLATIONS + 1))
    if len(out) > MAX_VIOLATIONS:
        out[MAX_VIOLATIONS:] = [Violation("", f"body: more problems than the {MAX_VIOLATIONS} listed; fix these first",
                                          ERROR if any(v.severity == ERROR for v in out) else WARNING, "limit.violations")]
    return out
