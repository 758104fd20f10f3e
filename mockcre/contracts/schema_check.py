"""Schema validation with mockcre's two modes, on top of jsonschema.

The schema files describe the strict contract. Lenient mode (the default) runs the same
validators and then forgives, as *warnings*, exactly the failures the schemas mark forgivable:

* a scalar of the other JSON type whose text form passes (``"50"`` for 50, ``0`` for ``"0"``),
  because the two documents disagree about types throughout;
* a failure of a subschema carrying ``x-lenient`` whose ``accept`` schema holds;
* a missing field listed in the object's ``x-lenient-optional``;
* a field outside the documented table (``additionalProperties: false``).

Valid bodies take one call of the compiled Rust validator (jsonschema-rs, ~300x faster on a
1,000-record upload) and nothing else; only a body it rejects is explained, by jsonschema, whose
errors carry what the messages and lenient mode need. Both read the same schema files.
"""

from __future__ import annotations

import difflib
import itertools
import json
import math
import re
from functools import cache, lru_cache

import jsonschema_rs
from jsonschema import Draft202012Validator, ValidationError, validators
from referencing import Registry, Resource

from mockcre.dialects.base import is_secret
from mockcre.common.resources import load_schema, schema_names

from .violations import ERROR, MAX_VIOLATIONS, WARNING, Violation, capped, describe_value, display_path, json_type, pointer

# Keywords whose failure is about the object's keys, reported at the child's path.
_STRUCTURAL = {"required", "additionalProperties", "dependentRequired"}
_TYPE_NAMES = {"string": "a string", "integer": "an integer", "number": "a number", "object": "an object",
               "array": "an array", "boolean": "a boolean", "null": "null"}


@lru_cache(maxsize=256)
def _ecma(pattern: str):
    """JSON Schema patterns are ECMA-262: ``$`` is the very end, where Python's also allows a final newline."""
    return re.compile(re.sub(r"(?<!\\)\$", r"\\Z", pattern))


def _pattern(validator, pattern, instance, schema):
    if validator.is_type(instance, "string") and not _ecma(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


Validator = validators.extend(Draft202012Validator, {"pattern": _pattern})


@cache
def registry() -> Registry:
    resources = [(s["$id"], Resource.from_contents(s)) for s in map(load_schema, schema_names())]
    return Registry().with_resources(resources)


@cache
def compiled(name: str):
    """The validator of ``schemas/<name>.schema.json``, built once per process."""
    return Validator(load_schema(name), registry=registry())


@cache
def fast(name: str) -> jsonschema_rs.Draft202012Validator:
    """The compiled validator of a schema file: it only says valid or not, quickly."""
    resources = [(s["$id"], s) for s in map(load_schema, schema_names())]
    return jsonschema_rs.Draft202012Validator(load_schema(name), registry=jsonschema_rs.Registry(resources))


def _holds(schema: dict, value) -> bool:
    return compiled("common").evolve(schema=schema).is_valid(value)


def schema_violations(name: str, body, strict: bool) -> list[Violation]:
    if fast(name).is_valid(body):
        return []
    validator = compiled(name)
    groups: dict[tuple, list] = {}
    for err in itertools.islice(_closest(validator.iter_errors(body)), MAX_VIOLATIONS + 1):
        groups.setdefault((tuple(err.absolute_path), id(err.schema)), []).append(err)
    return capped(itertools.chain.from_iterable(_explain(errs, strict) for errs in groups.values()))


def _closest(errors):
    """Errors to explain, with each failed oneOf/anyOf replaced by the errors of the alternative that came closest.

    The closest alternative is the one whose shape the value has: its errors lie deeper than the
    value itself (a typo'd key in an object, a bad element of a list) rather than rejecting the
    value's type outright; among those, the one with the fewest errors.
    """
    for err in errors:
        if err.validator not in ("oneOf", "anyOf") or not err.context:
            yield err
            continue
        branches: dict = {}
        for sub in err.context:
            branches.setdefault(sub.relative_schema_path[0], []).append(sub)
        depth = len(err.absolute_path)

        def distance(subs):
            shallow = any(len(s.absolute_path) == depth and s.validator in ("type", "enum", "const", "required")
                          for s in subs)
            return (shallow, len(subs))

        yield from _closest(min(branches.values(), key=distance))


def _explain(errs, strict: bool):
    first = errs[0]
    schema, instance, parts = first.schema, first.instance, list(first.absolute_path)
    for keyword in dict.fromkeys(e.validator for e in errs if e.validator in _STRUCTURAL):
        yield from _STRUCTURAL_EXPLAINERS[keyword](schema, instance, parts, strict)
    value_errs = [e for e in errs if e.validator not in _STRUCTURAL]
    if value_errs:
        yield from _explain_value(value_errs, schema, instance, parts, strict)


def _received(parts, instance) -> str:
    """A credential is never quoted back, even malformed (a base64 MD5 is still the signature)."""
    return "a value not shown here (it is a credential)" if parts and is_secret(parts[-1]) else describe_value(instance)


def _explain_value(errs, schema, instance, parts, strict) -> list[Violation]:
    found = _explain_value_plain(errs, schema, instance, parts, strict)
    if schema.get("x-advice") == "country":  # "China" -> send "CHN"
        from .country import advice

        found = [Violation(v.path, f"{v.message}; {advice(instance)}", v.severity, v.rule) for v in found]
    return found


def _explain_value_plain(errs, schema, instance, parts, strict) -> list[Violation]:
    field = display_path(parts)
    lenient = schema.get("x-lenient")
    accepted = lenient is not None and _holds(lenient["accept"], instance)
    keywords = {e.validator for e in errs}
    if not strict:
        if accepted:
            return [Violation(pointer(parts), f"{field}: {lenient['note']}; got {_received(parts, instance)}",
                              WARNING, lenient["rule"])]
        if keywords & {"type", "const", "enum"}:
            for coerced in _coercions(instance):
                if _holds(schema, coerced) or (lenient is not None and _holds(lenient["accept"], coerced)):
                    shown = json.dumps(coerced, ensure_ascii=False) if parts[-1:] != ["MD5"] and parts[-1:] != ["token"] else "text"
                    return [Violation(pointer(parts), f"{field}: expected {_expected_type(schema)}, got "
                                      f"{_received(parts, instance)}; accepted as {shown}",
                                      WARNING, "lenient.coerced-type")]
    if keywords & {"enum", "const"}:
        errs = [e for e in errs if e.validator != "type"]
    hint = f" ({lenient['note']})" if accepted else ""
    return [Violation(pointer(parts), f"{field}: {_expected(e, schema, instance, _received(parts, instance))}{hint}", ERROR,
                      f"schema.{e.validator}") for e in errs]


def _coercions(value):
    """The other JSON scalar forms a value could have been meant as."""
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, (int, float)):
        yield str(value)
    elif isinstance(value, str):
        text = value.strip()
        try:
            yield int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return
            if math.isfinite(number):
                yield number


def _expected_type(schema) -> str:
    if "const" in schema:
        return _TYPE_NAMES[json_type(schema["const"])].replace("a number", "an integer")
    types = schema.get("type", [])
    types = [types] if isinstance(types, str) else types
    return " or ".join(_TYPE_NAMES[t] for t in types) or "another type"


def _meaning(schema, value) -> str:
    meaning = schema.get("x-enum-meanings", {}).get(str(value))
    return f"{json.dumps(value, ensure_ascii=False)} ({meaning})" if meaning else json.dumps(value, ensure_ascii=False)


def _expected(err, schema, instance, got: str) -> str:
    keyword, value = err.validator, err.validator_value
    if keyword == "type":
        return f"expected {_expected_type(schema)}; got {got}"
    if keyword == "enum":
        allowed = schema.get("x-expected") or "one of " + ", ".join(_meaning(schema, v) for v in value)
        return f"expected {allowed}; got {got}"
    if keyword == "const":
        also = f", which means {schema['x-enum-meanings'][str(instance)]}" if str(instance) in schema.get("x-enum-meanings", {}) and not isinstance(instance, (dict, list)) else ""
        return f"expected {_meaning(schema, value)}; got {got}{also}"
    if keyword == "pattern":
        return f"expected {schema.get('x-expected') or 'a string matching ' + value}; got {got}"
    if keyword in ("minimum", "exclusiveMinimum"):
        return f"expected a value of at least {value}; got {got}"
    if keyword in ("maximum", "exclusiveMaximum"):
        return f"expected a value of at most {value}; got {got}"
    if keyword == "minLength":
        return "must not be empty" if value == 1 else f"expected at least {value} characters; got {len(instance)}"
    if keyword == "maxLength":
        return f"expected at most {value} characters; got {len(instance)}"
    if keyword == "minItems":
        return f"expected at least {value} element{'s' * (value != 1)}; got {len(instance)}"
    if keyword == "maxItems":
        return f"expected at most {value} elements; got {len(instance)}"
    return err.message


def _field_note(schema, name) -> str:
    """The document's own words for a field, shortened: ``(uid：uid_type 指定类型的用户标识…)``."""
    quote = schema.get("properties", {}).get(name, {}).get("description", "").split(" — ")[0]
    return f" ({quote[:40]}{'…' * (len(quote) > 40)})" if quote else ""


def _missing(schema, instance, parts, strict):
    optional = schema.get("x-lenient-optional", {})
    for name in schema["required"]:
        if name in instance:
            continue
        path = parts + [name]
        if not strict and name in optional:
            yield Violation(pointer(path), f"{display_path(path)}: missing; {optional[name]}", WARNING, "lenient.optional-missing")
        else:
            yield Violation(pointer(path), f"{display_path(path)}: required field is missing{_field_note(schema, name)}",
                            ERROR, "schema.required")


def _extra(schema, instance, parts, strict):
    known = schema.get("properties", {})
    hints = schema.get("x-extra-hints", {})
    for name in instance:
        if name in known:
            continue
        path = parts + [name]
        hint = hints.get(name)
        if hint is None:
            close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.75)
            hint = f"did you mean {close[0]!r}?" if close else "known fields: " + ", ".join(known)
        where = display_path(parts)
        if strict:
            yield Violation(pointer(path), f"{display_path(path)}: not a field of {where} in the document's table; {hint}",
                            ERROR, "schema.additionalProperties")
        else:
            yield Violation(pointer(path), f"{display_path(path)}: not a field of {where} in the document's table, "
                            f"accepted in lenient mode; {hint}", WARNING, "lenient.unknown-field")


def _dependent(schema, instance, parts, strict):
    for name, needs in schema["dependentRequired"].items():
        if name in instance:
            for need in needs:
                if need not in instance:
                    path = parts + [need]
                    yield Violation(pointer(path), f"{display_path(path)}: required when {display_path(parts + [name])} is given",
                                    ERROR, "schema.dependentRequired")


_STRUCTURAL_EXPLAINERS = {"required": _missing, "additionalProperties": _extra, "dependentRequired": _dependent}
