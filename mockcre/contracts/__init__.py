"""Contracts: is this request what the documents say it must be, and if not, exactly where not.

The judge's checks, in the order a request meets them: ``transport`` (Content-Length, coding,
charset), ``jsonbody`` (parsing within limits), ``detect`` (dialect and kind), ``schema_check`` (the
JSON Schemas, lenient or strict), ``semantic`` (rules a schema cannot say) and ``auth`` (tokens and
MD5 signatures). ``validate(body)`` runs them on a parsed body and returns every violation found.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mockcre.common.domain import REQUEST_KINDS, RESPONSE_KINDS

from . import jsonbody
from .detect import Undetected, detect, dialect_of_kind
from .schema_check import schema_violations
from .semantic import RULES, semantic_violations
from .violations import ERROR, WARNING, Violation, has_errors

__all__ = ["validate", "check", "check_known", "Checked", "Violation", "ERROR", "WARNING", "RULES", "has_errors", "parse_body"]

parse_body = jsonbody.parse


@dataclass
class Checked:
    """The outcome of checking one body: what it is (when that could be told) and what is wrong with it."""

    body: object
    dialect: str | None
    kind: str | None
    violations: list = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not has_errors(self.violations)


def check(body, dialect: str | None = None, kind: str | None = None, strict: bool = False,
          now: float | None = None, max_bytes: int = jsonbody.DEFAULT_MAX_BYTES) -> Checked:
    """Check a parsed body (or raw ``bytes``/``str``, parsed first) against the documents."""
    found: list[Violation] = []
    if isinstance(body, (bytes, bytearray, str)):
        body, found = jsonbody.parse(body, max_bytes)
        if has_errors(found):  # unreadable (JSON null parses fine and is judged below)
            return Checked(None, dialect, kind, found)
    if dialect is not None and dialect not in REQUEST_KINDS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {', '.join(REQUEST_KINDS)}")
    if kind is not None:
        dialect = dialect or dialect_of_kind(kind)
        if dialect is None:
            raise ValueError(f"kind {kind!r} belongs to both dialects; say which with dialect=")
        if kind not in REQUEST_KINDS[dialect] + RESPONSE_KINDS[dialect]:
            raise ValueError(f"unknown kind {kind!r} for {dialect}; expected one of "
                             f"{', '.join(REQUEST_KINDS[dialect] + RESPONSE_KINDS[dialect])}")
        if not isinstance(body, dict):
            return Checked(body, dialect, kind, found + [_not_object(body)])
    else:
        try:
            dialect, kind = detect(body, dialect)
        except Undetected as exc:
            return Checked(body, dialect, None, found + [Violation(exc.path, str(exc), ERROR, "detect")])
    return check_known(body, dialect, kind, strict, now, found)


def check_known(body: dict, dialect: str, kind: str, strict: bool = False, now: float | None = None,
                found: list | None = None) -> Checked:
    """:func:`check` of an object whose dialect and kind are known and valid (the judge's case, every request)."""
    found = found or []
    semantic = semantic_violations(dialect, kind, body, strict, now)
    wrong_kind = [v for v in semantic if v.rule == "data-type-mismatch"]
    if wrong_kind:  # records of the other kind: their schema errors would only bury the cause
        return Checked(body, dialect, kind, found + wrong_kind)
    schema = schema_violations(f"{dialect}.{kind}", body, strict)
    nulls = _null_members(body) if schema and kind in REQUEST_KINDS[dialect] else []
    if nulls:  # judged as if absent, so a null optional field is one clear warning, not a type error
        body = _without(body, nulls)
        schema = _null_notes(nulls, schema_violations(f"{dialect}.{kind}", body, strict), strict)
        semantic = semantic_violations(dialect, kind, body, strict, now)
    found.extend(schema)
    found.extend(semantic)
    return Checked(body, dialect, kind, found)


def _null_members(body) -> list[tuple]:
    """Paths of the object members, at any depth, whose value is null."""
    found, stack = [], [(body, ())]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if value is None:
                    found.append(parts + (key,))
                elif isinstance(value, (dict, list)):
                    stack.append((value, parts + (key,)))
        elif isinstance(node, list):
            stack.extend((v, parts + (i,)) for i, v in enumerate(node) if isinstance(v, (dict, list)))
    return found


def _without(body, paths):
    """A copy of ``body`` without the members at ``paths`` (only the containers on those paths are copied)."""
    copies = {(): dict(body)}
    for path in sorted(paths, key=len):
        for depth in range(1, len(path)):
            if path[:depth] not in copies:
                inner = copies[path[:depth - 1]][path[depth - 1]]
                copies[path[:depth]] = copies[path[:depth - 1]][path[depth - 1]] = (
                    dict(inner) if isinstance(inner, dict) else list(inner))
        copies[path[:-1]].pop(path[-1], None)
    return copies[()]


def _null_notes(nulls, violations, strict: bool) -> list[Violation]:
    """A null required field is reported as null, not missing; any other null is an optional field sent as null."""
    from .violations import display_path, pointer

    paths = {pointer(p): p for p in nulls}
    out, named = [], set()
    for v in violations:
        if v.path in paths and v.rule in ("schema.required", "lenient.optional-missing"):
            named.add(v.path)
            v = Violation(v.path, v.message.replace("required field is missing", "required field is null; send a value")
                          .replace(": missing;", ": null, read as missing;"), v.severity, v.rule)
        out.append(v)
    for path, parts in paths.items():
        if path in named:
            continue
        field = display_path(parts)
        if strict:
            out.append(Violation(path, f"{field}: null is not a value of this optional field; omit the field "
                                 "(strict mode; lenient mode reads null as absent)", ERROR, "schema.null-field"))
        else:
            out.append(Violation(path, f"{field}: null, read as absent (an optional field); omit the field "
                                 "instead of sending null", WARNING, "lenient.null-field"))
    return out


def validate(body, dialect: str | None = None, kind: str | None = None, strict: bool = False) -> list[Violation]:
    """Every violation of ``body``: each with a JSON pointer ``path``, ``message``, ``severity`` and ``rule``."""
    return check(body, dialect, kind, strict).violations


def _not_object(body) -> Violation:
    from .violations import describe_value

    return Violation("", f"body: expected a JSON object; got {describe_value(body)}", ERROR, "schema.type")
