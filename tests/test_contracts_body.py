"""Raw bodies through check(): every malformed input becomes a clear violation, never an exception;
and dialect/kind detection."""

from __future__ import annotations

import copy
import json
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mockcre.contracts import ERROR, WARNING, check, validate
from mockcre.contracts import jsonbody
from mockcre.common.domain import REQUEST_KINDS
from mockcre.common.resources import load_schema

REQUESTS = [pytest.param(d, k, id=f"{d}.{k}") for d in REQUEST_KINDS for k in REQUEST_KINDS[d]]


def example(name):
    return copy.deepcopy(load_schema(name)["examples"][0])


def raw(name) -> bytes:
    return json.dumps(example(name), ensure_ascii=False).encode("utf-8")


def rules(checked, severity=ERROR):
    return [v.rule for v in checked.violations if v.severity == severity]


# -- malformed bytes -----------------------------------------------------------------------------------

BAD_BODIES = [
    ("latin-1", '{"uid": "café"}'.encode("latin-1"), "json.encoding"),
    ("utf-16", '{"a": 1}'.encode("utf-16"), "json.encoding"),
    ("truncated-utf-8", "{\"city\": \"深圳\"}".encode("utf-8")[:-4], "json.encoding"),
    ("json-array", b"[]", "detect"),
    ("json-array-of-bodies", b"[" + raw("cre.query") + b"]", "detect"),
    ("json-number", b"42", "detect"),
    ("json-string", b'"hello"', "detect"),
    ("json-true", b"true", "detect"),
    ("json-null", b"null", None),  # any error rule: the point is that it is not accepted
    ("nested-1000-arrays", b"[" * 1000 + b"]" * 1000, "json.depth"),
    ("nested-1000-objects", b'{"a":' * 1000 + b"1" + b"}" * 1000, "json.depth"),
    ("nested-65", b'{"token":' + b"[" * 64 + b"]" * 64 + b"}", "json.depth"),
    ("nested-unclosed-100000", b"[" * 100_000, "json.depth"),
    ("nan", b'{"request_num": NaN}', "json.syntax"),
    ("infinity", b'{"geo": {"latitude": Infinity}}', "json.syntax"),
    ("minus-infinity", b'{"score": -Infinity}', "json.syntax"),
    ("empty", b"", "json.empty"),
    ("whitespace", b" \r\n\t ", "json.empty"),
    ("bom-only", b"\xef\xbb\xbf", "json.empty"),
    ("syntax", b'{"token": "t",}', "json.syntax"),
    ("truncated", raw("cre.query")[:-10], "json.syntax"),
    ("single-quotes", b"{'token': 't'}", "json.syntax"),
]


@pytest.mark.parametrize("body, rule", [pytest.param(b, r, id=i) for i, b, r in BAD_BODIES])
def test_bad_body_is_a_violation_not_an_exception(body, rule):
    checked = check(body)
    assert not checked.ok
    errors = [v for v in checked.violations if v.severity == ERROR]
    assert errors, checked.violations
    if rule is not None:
        assert rule in [v.rule for v in errors]
    for v in errors:
        assert v.message and v.path is not None


@pytest.mark.parametrize("body, rule", [pytest.param(b, r, id=i) for i, b, r in BAD_BODIES])
def test_bad_body_with_dialect_and_kind_given(body, rule):
    # with the kind given nothing is detected, but the body must still be refused
    for dialect, kind in (("cre", "query"), ("dm", "recommend")):
        checked = check(body, dialect, kind)
        assert not checked.ok, (dialect, kind, checked.violations)


def test_non_utf8_message_says_where():
    checked = check(b'{"a": "\xff"}')
    (v,) = checked.violations
    assert v.rule == "json.encoding" and "0xff" in v.message and "offset 7" in v.message


def test_nan_message_names_the_literal():
    (v,) = check(b'{"a": NaN}').violations
    assert "NaN" in v.message


def test_syntax_error_message_has_line_and_column():
    (v,) = check(b'{\n  "token": "t",\n}').violations
    assert v.rule == "json.syntax" and "line 3" in v.message


def test_50_megabyte_body_is_refused_without_parsing(monkeypatch):
    def no_parsing(*args, **kwargs):
        raise AssertionError("a body over the size limit must not be parsed")

    monkeypatch.setattr(jsonbody.json, "loads", no_parsing)
    big = b'{"token": "' + b"x" * (50 * 1024 * 1024) + b'"}'
    started = time.perf_counter()
    checked = check(big)
    assert time.perf_counter() - started < 1.0
    assert [(v.rule, v.severity, v.path) for v in checked.violations] == [("limit.body-size", ERROR, "")]
    assert f"{jsonbody.DEFAULT_MAX_BYTES:,}" in checked.violations[0].message  # the message names the limit


def test_size_limit_is_configurable():
    body = raw("cre.query")
    assert check(body, max_bytes=len(body)).ok
    assert [v.rule for v in check(body, max_bytes=len(body) - 1).violations] == ["limit.body-size"]


@pytest.mark.parametrize("body, path", [
    (b'{"token": "a", "token": "b", "proj_id": "1", "scn_id": "1", "uid_type": "1", "user_id": "u"}', "/token"),
    (b'{"version": "1", "data_type": "2", "token": "t", "data": [{"uid": "1", "uid": "2"}]}', "/data/0/uid"),
    (b'{"MD5": "x", "geo": {"city": "a", "city": "b"}, "bid": "b"}', "/geo/city"),
    (b'{"a~b/c": 1, "a~b/c": 2, "bid": "b"}', "/a~0b~1c"),
], ids=["top-level", "in-record", "in-geo", "escaped-pointer"])
def test_duplicate_key_names_the_key(body, path):
    checked = check(body)
    dups = [v for v in checked.violations if v.rule == "json.duplicate-key"]
    assert [(v.path, v.severity) for v in dups] == [(path, ERROR)]
    key = path.rsplit("/", 1)[1].replace("~1", "/").replace("~0", "~")
    assert repr(key) in dups[0].message


def test_bom_is_a_warning_and_the_body_is_still_read():
    checked = check(b"\xef\xbb\xbf" + raw("cre.action"))
    assert checked.ok and (checked.dialect, checked.kind) == ("cre", "action")
    assert [(v.rule, v.severity) for v in checked.violations] == [("json.bom", WARNING)]


def test_text_input_is_parsed_too():
    assert check(json.dumps(example("cre.query"), ensure_ascii=False)).ok
    assert [v.rule for v in check("").violations] == ["json.empty"]


@pytest.mark.parametrize("text", ['{"a": "\ud800"}', "[" + "{}, " * 64 + '{"a": "\udfff"}]'])
def test_text_with_a_lone_surrogate_is_an_encoding_error(text):
    """Only a str can hold a lone surrogate itself (bytes decoded as UTF-8 cannot); it is told as the escape is."""
    found = validate(text)
    at = text.index("\ud800" if "\ud800" in text else "\udfff")
    assert [(v.path, v.message, v.rule) for v in found] == [
        ("", f"body text holds a lone UTF-16 surrogate, U+{ord(text[at]):04X} at character {at}: not Unicode text, "
             "and no UTF-8 consumer can read it; decode the bytes with errors='strict'", "json.encoding")]


def test_text_with_a_surrogate_pair_escape_is_read():
    assert validate('{"a": "\\ud83d\\ude00"}', "cre", "query") == validate('{"a": "😀"}', "cre", "query")


def test_non_object_with_kind_given_is_a_type_error():
    checked = check(b"[1, 2]", "cre", "query")
    assert [(v.path, v.rule) for v in checked.violations] == [("", "schema.type")]
    assert "array" in checked.violations[0].message


# -- detection ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect, kind", REQUESTS)
def test_example_is_detected(dialect, kind):
    checked = check(raw(f"{dialect}.{kind}"))
    assert (checked.dialect, checked.kind) == (dialect, kind)
    assert validate(example(f"{dialect}.{kind}")) == validate(example(f"{dialect}.{kind}"), dialect, kind)


@pytest.mark.parametrize("dialect, kind", REQUESTS)
def test_example_is_detected_with_dialect_given(dialect, kind):
    checked = check(example(f"{dialect}.{kind}"), dialect)
    assert (checked.dialect, checked.kind) == (dialect, kind)


@pytest.mark.parametrize("body, path", [
    ({"hello": "world"}, ""),
    ({}, ""),
    ({"version": "1", "token": "t", "data": []}, "/data_type"),
    ({"version": "1", "token": "t", "data_type": "3", "data": []}, "/data_type"),
    ({"version": "1", "token": "t", "data_type": True, "data": []}, "/data_type"),
    ({"bid": "b", "MD5": "m", "request_id": "r", "data_type": 9}, "/data_type"),
    ({"bid": "b", "MD5": "m", "request_id": "r", "data_type": None}, "/data_type"),
], ids=["unknown-fields", "empty-object", "cre-upload-without-data_type", "cre-data_type-3", "cre-data_type-bool",
        "dm-data_type-9", "dm-data_type-null"])
def test_undetectable_body_gives_detect_violation(body, path):
    checked = check(body)
    assert checked.kind is None
    assert [(v.rule, v.severity, v.path) for v in checked.violations] == [("detect", ERROR, path)]
    assert checked.violations[0].message


def test_detect_message_says_what_was_looked_at():
    (v,) = check({"hello": "world"}).violations
    assert "bid" in v.message and "proj_id" in v.message


@pytest.mark.parametrize("kind, dialect", [("query", "cre"), ("recommend", "dm")])
def test_kind_without_dialect(kind, dialect):
    body = example(f"{dialect}.{kind}")
    checked = check(body, kind=kind)
    assert (checked.dialect, checked.kind) == (dialect, kind)
    assert validate(body, kind=kind) == validate(body, dialect, kind)
    assert validate(body, kind=kind, strict=True) == validate(body, dialect, kind, strict=True)


@pytest.mark.parametrize("dialect, kind", [(None, "bogus"), ("cre", "recommend"), ("dm", "query"), ("cre", "bogus"),
                                           ("xx", "item"), ("xx", None)])
def test_unknown_kind_or_dialect_raises(dialect, kind):
    with pytest.raises(ValueError):
        check(example("cre.query"), dialect, kind)


def test_response_kinds_can_be_checked_by_name():
    assert check(example("dm.error-response"), "dm", "error-response").ok
    assert check(example("cre.upload-response"), kind="upload-response").ok  # cre owns upload-response alone


def _nested(levels: int, inner):
    """``inner`` inside ``levels`` containers, lists and objects by turns."""
    for level in range(levels):
        inner = [inner] if level % 2 else {"k": inner}
    return inner


@pytest.mark.parametrize("body, too_deep", [
    (_nested(64, 1), False),
    (_nested(65, 1), True),
    ({"a": "[[[[{{{{" * 40}, False),  # brackets in strings are not nesting
    (["]" * 40, _nested(63, {"z": ["[" * 40]}), "}" * 40], True),  # nor can they hide nesting
    ([_nested(62, "\\\"]"), "\\\\", '"[', _nested(65, 'x"')], True),
])
def test_the_depth_limit_is_exact_however_strings_are_bracketed(body, too_deep):
    for text in (json.dumps(body), json.dumps(body, ensure_ascii=False, separators=(",", ":"))):
        for given_as in (text, text.encode("utf-8")):  # str: the careful reader; bytes: orjson's first
            found = jsonbody.parse(given_as)[1]
            assert any(v.rule == "json.depth" for v in found) is too_deep


@given(st.recursive(st.none() | st.integers() | st.text(alphabet='[]{}"\\ ab中\ud7ff', max_size=6),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text('[]{}"\\k', max_size=3), inner, max_size=3),
                    max_leaves=120),
       st.booleans())
@settings(max_examples=300, deadline=None)
def test_reading_depth_off_the_text_agrees_with_walking_the_body(body, ascii_only):
    with_depth = [body]
    for level in range(60):  # push some bodies over the limit
        with_depth = [with_depth] if level % 2 else {"d": with_depth}
    for value in (body, with_depth):
        text = json.dumps(value, ensure_ascii=ascii_only)
        assert jsonbody._too_deep(value, text.encode("utf-8")) == jsonbody._walk_too_deep(value), text[:300]


# -- orjson's fast reading gives what the careful reader gives -----------------------------------------

_KEYS = st.sampled_from(['"a"', '"b"', '":"', '"a:b"', '"\\u003a"', '"\\u003A"', '"\\u0061"', '"中"'])
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                     st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=4)).map(json.dumps)
_BIG_OR_STRANGE = st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "18446744073709551615", "18446744073709551616",
                                   "-9223372036854775809", "1.0", "-0", "-0.0", '"\\ud800"', '"\\ud800\\udc00"',
                                   '"a\x01"', "01", "tru", '"\\u0000"'])


def _object(children):
    return st.lists(st.tuples(_KEYS, children), max_size=4).map(lambda pairs: "{" + ",".join(f"{k}:{v}" for k, v in pairs) + "}")


_TEXTS = st.recursive(_SCALARS | _BIG_OR_STRANGE,
                      lambda inner: st.lists(inner, max_size=3).map(lambda xs: "[" + ",".join(xs) + "]") | _object(inner),
                      max_leaves=12)


@given(_TEXTS, st.sampled_from(["", " ", "\n", "\ufeff"]))
@settings(max_examples=600, deadline=None)
def test_the_fast_reading_gives_what_the_careful_reader_gives(text, around):
    """Repeated keys (also hidden behind an escaped colon), numbers past 64 bits, lone surrogates, NaN,
    a byte-order mark: whichever reader answers, the body and its violations are the same."""
    raw = (around + text + around.strip("\ufeff")).encode("utf-8")
    fast = jsonbody.parse(raw)
    careful_reader = jsonbody._parsed_fast
    try:
        jsonbody._parsed_fast = lambda raw: jsonbody._CAREFUL
        careful = jsonbody.parse(raw)
    finally:
        jsonbody._parsed_fast = careful_reader
    assert repr(fast[0]) == repr(careful[0])
    assert fast[1] == careful[1]


@pytest.mark.parametrize("text", ['{"a": 1, "a": 2}', '{"a": ":", "a": 2}', '{"a": 1, "a": "\\u003a"}',
                                  '{"x": {"k": 1, "k": 1}}', '[{"a": 1}, {"b": 2, "b": 3}]'])
def test_a_repeated_key_is_found_by_the_fast_reading_too(text):
    body, found = jsonbody.parse(text.encode())
    assert [v.rule for v in found] == ["json.duplicate-key"]


@pytest.mark.parametrize("text, fast", [
    ('{"user_id": "u:1", "pool_id": "a,b", "n": 999999999999999999}', True),  # 18 digits: within 64 bits
    ('{"user_id": "u:1", "pool_id": "a,b", "n": 1000000000000000000}', False),  # 19: may not be
    ('{"user_id": "\\u0075:1"}', True),
    ('{"user_id": "\\u003a1"}', False),  # an escaped colon could hide a repeated key
    ('{"a": 1, "a": 2}', False),
    ('\ufeff{}', False),
    pytest.param('{"a": "' + "x" * (jsonbody.FAST_UP_TO - 9) + '"}', True, id="at-the-fast-size"),
    pytest.param('{"a": "' + "x" * (jsonbody.FAST_UP_TO - 8) + '"}', False, id="one-byte-over"),
])
def test_the_fast_reading_is_the_one_used_for_an_ordinary_body(monkeypatch, text, fast):
    careful_reader = jsonbody.json.loads
    careful = []
    monkeypatch.setattr(jsonbody.json, "loads", lambda *a, **k: careful.append(1) or careful_reader(*a, **k))
    jsonbody.parse(text.encode())
    assert careful == ([] if fast else [1])
