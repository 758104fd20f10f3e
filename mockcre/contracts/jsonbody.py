"""Bytes to a JSON body, with every way that can fail turned into a Violation."""

from __future__ import annotations

import json
import math
import re
from collections import Counter

import orjson

from .violations import ERROR, WARNING, Violation, capped, pointer

DEFAULT_MAX_BYTES = 8 * 1024 * 1024  # a 1,000-record batch is ~1 MB; anything near 8 MB is abuse
MAX_DEPTH = 64  # the documents' deepest body nests 4 levels
SEND_JSON = ("send the JSON object itself as the POST body, with Content-Type: application/json "
             "(请求协议以 Json 格式序列化，作为 HTTP 请求的 Body 部分)")
_FORM_FIELDS = re.compile(r"[\w.\[\]%-]+=[^&]*(&[\w.\[\]%-]+=[^&]*)*")  # a=1&b=2, as curl -d or a form sends


class _Duplicates:
    """Collects objects that repeat a key, with how often each repeats; their paths are found only when there are any."""

    def __init__(self):
        self.found: dict[int, Counter] = {}

    def hook(self, pairs):
        obj = dict(pairs)
        if len(obj) != len(pairs):
            counts = Counter(key for key, _ in pairs)
            self.found[id(obj)] = Counter({key: n for key, n in counts.items() if n > 1})
        return obj


def _reject_constant(name):
    raise ValueError(f"{name} is not valid JSON (the JSON standard has no NaN or Infinity)")


def _finite(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"the number {text[:20]}{'…' * (len(text) > 20)} overflows (no JSON consumer can hold it)")
    return value


_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def _lone_surrogate(body) -> bool:
    """Does a string hold half of a UTF-16 pair (valid JSON escape, invalid Unicode)? Walked only when
    the text has a surrogate escape at all."""
    stack = [body]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            try:
                node.encode("utf-8")
            except UnicodeEncodeError:
                return True
        elif isinstance(node, dict):
            stack.extend(node.keys())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return False


def _not_json_hint(text: str) -> str:
    """Why a body that is not JSON is probably not JSON: a form encoding, or JSON lines (one body per line).

    The server and ``mockcre validate`` both judge bodies here, so they give the same advice.
    """
    stripped = text.strip()
    if _FORM_FIELDS.fullmatch(stripped):
        return f"; this is a form body (field=value&...), not JSON: {SEND_JSON}"
    lines = stripped.splitlines()
    if len(lines) > 1 and all(is_json(line) for line in lines if line.strip()):
        return (f"; these are {len(lines)} JSON values, one per line (JSON lines): send one JSON object per "
                "request (mockcre validate reads a file named .jsonl line by line)")
    return ""


def is_json(line: str | bytes) -> bool:
    """Whether one line of text is a JSON value (how a body of JSON lines is told from one JSON value)."""
    try:
        json.loads(line)
        return True
    except ValueError:
        return False


# Bodies up to this size are read the fast way. Its checks copy the body twice more (the digits, the text
# written back): for a query that is nothing, but the fuzz campaign's megabyte bodies left the allocator's heap
# 20 MB larger after each campaign, so large bodies (uploads of hundreds of records) are read carefully, as before.
FAST_UP_TO = 64 * 1024
_TOO_DEEP = Violation("", f"body nests deeper than {MAX_DEPTH} levels", ERROR, "json.depth")
_CAREFUL = object()  # what _parsed_fast returns when only the careful reader can say
# Past 64 bits orjson reads an integer as a float where json keeps it: 19 digits in a row may be one. The digits
# of the text as 0 and all else as space, then one search: a regex took 1.7 µs of a 150-byte query, this 0.8.
_DIGITS_AS_ZEROS = bytes(ord("0") if chr(b) in "0123456789" else ord(" ") for b in range(256))
_LONG_DIGIT_RUN = b"0" * 19


def _parsed_fast(raw: bytes):
    """The body exactly as the careful reader in :func:`parse` would give it, read by orjson in a fraction of
    the time (its reader was a tenth of a ``/query``'s time on the server); :data:`_CAREFUL` whenever that cannot
    be promised: orjson refuses the text (the careful reader then says why), an integer may be past 64 bits,
    or a key may have been given twice. A body orjson reads that nests too deep is :data:`_TOO_DEEP`.

    orjson keeps a repeated key's last value without a word. A key's colon is the only colon JSON writes
    outside a string, and orjson writes strings' colons as they are, so writing the body back out loses a
    colon exactly when a key was dropped; an escaped colon (``\\u003a``) would hide one, and goes the careful way.
    """
    if b"\\u003" in raw or _LONG_DIGIT_RUN in raw.translate(_DIGITS_AS_ZEROS):
        return _CAREFUL
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return _CAREFUL
    if _too_deep(body, raw):  # (before writing it out again: orjson writes at most 254 levels)
        return _TOO_DEEP
    if orjson.dumps(body).count(b":") != raw.count(b":"):
        return _CAREFUL
    return body


def parse(raw: bytes | str, max_bytes: int = DEFAULT_MAX_BYTES):
    """Parse a request body. Returns ``(body, violations)``; body is None when it cannot be read."""
    if isinstance(raw, (bytes, bytearray)):
        if len(raw) > max_bytes:
            return None, [Violation("", f"body exceeds the limit of {max_bytes:,} bytes (mockcre serve "
                                    "--max-body-bytes)", ERROR, "limit.body-size")]
        body = _parsed_fast(raw) if len(raw) <= FAST_UP_TO else _CAREFUL
        if body is _TOO_DEEP:
            return None, [body]
        if body is not _CAREFUL:
            return body, []
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            return None, [Violation("", f"body is not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start} "
                                    "cannot be decoded; send UTF-8, or declare the body's charset "
                                    "(Content-Type: application/json; charset=GBK)", ERROR, "json.encoding")]
    else:
        text = raw
        try:
            text.encode("utf-8")  # text given as str (the Python API) may hold what no bytes could
        except UnicodeEncodeError as exc:
            return None, [Violation("", f"body text holds a lone UTF-16 surrogate, U+{ord(text[exc.start]):04X} at "
                                    f"character {exc.start}: not Unicode text, and no UTF-8 consumer can read it; "
                                    "decode the bytes with errors='strict'", ERROR, "json.encoding")]
    notes = []
    if text.startswith("\ufeff"):
        text = text[1:]
        notes.append(Violation("", "body starts with a UTF-8 byte-order mark; it was ignored", WARNING, "json.bom"))
    if not text.strip():
        return None, [Violation("", "body is empty; expected a JSON object", ERROR, "json.empty")]
    dups = _Duplicates()
    try:
        body = json.loads(text, object_pairs_hook=dups.hook, parse_constant=_reject_constant, parse_float=_finite)
    except RecursionError:
        return None, [Violation("", f"body nests too deep to parse; at most {MAX_DEPTH} levels are accepted", ERROR, "json.depth")]
    except ValueError as exc:
        message = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
        where = f" at line {exc.lineno} column {exc.colno}" if isinstance(exc, json.JSONDecodeError) else ""
        return None, [Violation("", f"body is not valid JSON{where}: {message}{_not_json_hint(text)}", ERROR,
                                "json.syntax")]
    if _too_deep(body, raw if isinstance(raw, (bytes, bytearray)) else text.encode("utf-8")):
        return None, [_TOO_DEEP]
    if _SURROGATE_ESCAPE.search(text) and _lone_surrogate(body):
        return None, [Violation("", "body holds a lone UTF-16 surrogate escape (such as \\ud800): valid JSON syntax but not "
                                "Unicode text, and no UTF-8 consumer can read it", ERROR, "json.encoding")]
    if dups.found:
        notes.extend(capped(_duplicate_violations(body, dups.found)))
    return body, notes


_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def _too_deep(body, text: bytes) -> bool:
    """Deeper than MAX_DEPTH? Read off the text's brackets when it can be (walking the body cost a
    1,000-record upload 5 ms, half its time).

    With escaped backslashes and quotes taken out, the text's quotes pair up string by string; kept
    with the brackets and nothing else, a string without brackets is ``""``. When all of them go, the
    rest is the real nesting, and each pass below takes away its innermost pairs, at most one level
    of each kind: gone within MAX_DEPTH / 2 passes means at most MAX_DEPTH levels. A string holding
    a bracket (rare, and able to hide a level) sends the body to the walk.
    """
    if text.count(b"{") + text.count(b"[") <= MAX_DEPTH:  # cannot nest deeper than it opens
        return False
    structure = (text.replace(b"\\\\", b"").replace(b'\\"', b"")
                 .translate(None, _NOT_STRUCTURE).replace(b'""', b""))
    if b'"' not in structure:
        for _ in range(MAX_DEPTH // 2):
            structure = structure.replace(b"{}", b"").replace(b"[]", b"")
            if not structure:
                return False
    return _walk_too_deep(body)


def _walk_too_deep(body) -> bool:
    stack = [(body, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(node, dict):
            stack.extend((v, depth + 1) for v in node.values() if isinstance(v, (dict, list)))
        elif isinstance(node, list):
            stack.extend((v, depth + 1) for v in node if isinstance(v, (dict, list)))
    return False


def _duplicate_violations(body, found):
    stack = [(body, [])]
    while stack:
        node, parts = stack.pop()
        if isinstance(node, dict):
            for key, times in found.get(id(node), {}).items():
                yield Violation(pointer(parts + [key]), f"key {key!r} appears {times:,} times in the same object; "
                                "JSON parsers disagree on which value wins (here: the last)", ERROR, "json.duplicate-key")
            stack.extend((v, parts + [k]) for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, parts + [i]) for i, v in enumerate(node))
