"""Each semantic rule of mockcre/contracts/semantic.py: one body that triggers it, one that does not."""

from __future__ import annotations

import copy

import pytest

from mockcre.contracts import ERROR, RULES, WARNING, check, validate
from mockcre.common.domain import DAY
from mockcre.common.resources import load_schema

NOW = 1_700_000_000  # fixed clock for the time rules


def example(name):
    return copy.deepcopy(load_schema(name)["examples"][0])


def clean(name):
    """The document example with its documented quirks repaired: no violation at all in strict mode."""
    body = example(name)
    if name == "cre.item":
        del body["data"][0]["rule_id"]
    if name.startswith("dm.") and "request_id" in body:
        body["request_id"] = "1700000000000_123"
    if name == "dm.item":
        body.update(expire_time=1386917763, free="0")
        body["small_type"] = body.pop("small_type ")
    if name in ("dm.action", "dm.recommend"):
        body["uid"] = "861234567890123"
    return body


def cre_item(**fields):
    body = clean("cre.item")
    body["data"][0].update(fields)
    return body


def cre_action(**fields):
    body = clean("cre.action")
    body["data"][0].update(fields)
    return body


def with_fields(name, **fields):
    body = clean(name)
    body.update(fields)
    return body


def without(body, *names, record=None):
    target = body if record is None else body["data"][record]
    for name in names:
        target.pop(name, None)
    return body


def findings(body, name, strict=False):
    dialect, kind = name.split(".")
    return check(body, dialect, kind, strict=strict, now=NOW).violations


# (rule, schema, triggering body, path of the finding, non-triggering body)
CASES = [
    ("item-pool-zero", "cre.item", lambda: cre_item(pool_id="1;0"), "/data/0/pool_id", lambda: cre_item(pool_id="10;01")),
    ("item-pool-zero", "cre.item", lambda: cre_item(pool_id="0"), "/data/0/pool_id", lambda: cre_item(pool_id="pool_0")),
    ("item-pool-zero", "dm.item", lambda: with_fields("dm.item", pool_id="a;0;b"), "/pool_id", lambda: with_fields("dm.item", pool_id="a;b")),
    ("item-expiry-order", "cre.item", lambda: cre_item(item_time="1483200000", expire_time="1483200000"), "/data/0/expire_time",
     lambda: cre_item(item_time="1483200000", expire_time="1483200001")),
    ("item-expiry-order", "cre.item", lambda: cre_item(item_time="1483200000", expire_time="1483100000"), "/data/0/expire_time",
     lambda: cre_item(expire_time="1483100000")),  # no item_time: nothing to compare with
    ("item-expiry-order", "dm.item", lambda: with_fields("dm.item", expire_time=1386817568), "/expire_time",
     lambda: with_fields("dm.item", expire_time=1386817570)),
    ("batch-duplicate-item", "cre.item", lambda: _batch("abc", "abc"), "/data/1/item_id", lambda: _batch("abc", "abd")),
    ("batch-duplicate-item", "cre.item", lambda: _batch(5, "5"), "/data/1/item_id", lambda: _batch(5, "6")),
    ("dm-action-empty-item", "dm.action", lambda: with_fields("dm.action", item_id="a;;b"), "/item_id",
     lambda: with_fields("dm.action", item_id="a;b")),
    ("dm-action-empty-item", "dm.action", lambda: with_fields("dm.action", item_id="a;"), "/item_id",
     lambda: with_fields("dm.action", item_id=12345)),
    ("dm-action-empty-item", "dm.action", lambda: with_fields("dm.action", item_id="a; ;b"), "/item_id",
     lambda: with_fields("dm.action", item_id="a")),
    ("scene-ids-missing", "cre.action", lambda: without(cre_action(), "test_id", record=0), "/data/0/test_id",
     lambda: without(cre_action(source="1"), "test_id", "rule_id", record=0)),
    ("scene-ids-missing", "cre.action", lambda: cre_action(rule_id=""), "/data/0/rule_id", lambda: cre_action()),
    ("timestamp-future", "cre.action", lambda: cre_action(oper_time=str(NOW + 2 * DAY)), "/data/0/oper_time",
     lambda: cre_action(oper_time=str(NOW + 3600))),  # within a day of clock skew
    ("timestamp-future", "cre.item", lambda: cre_item(item_time=str(NOW + 2 * DAY)), "/data/0/item_time",
     lambda: cre_item(item_time=str(NOW))),
    ("timestamp-future", "dm.action", lambda: with_fields("dm.action", action_time=str(NOW + 30 * DAY)), "/action_time",
     lambda: with_fields("dm.action", action_time=str(NOW - DAY))),
    ("timestamp-future", "dm.item", lambda: with_fields("dm.item", item_time=str(NOW + 2 * DAY), expire_time=NOW + 90 * DAY),
     "/item_time", lambda: with_fields("dm.item", item_time=str(NOW))),
    ("tags-separator", "dm.item", lambda: with_fields("dm.item", tags="电器,科技"), "/tags", lambda: with_fields("dm.item", tags="电器;科技")),
    ("country-code", "dm.recommend", lambda: with_fields("dm.recommend", country="中国"), "/country",
     lambda: with_fields("dm.recommend", country="CHN")),
    ("country-code", "cre.action", lambda: cre_action(country="CN"), "/data/0/country", lambda: cre_action(country="KOR")),
    ("tags-separator", "dm.item", lambda: with_fields("dm.item", tags="电器，科技"), "/tags", lambda: with_fields("dm.item", tags="电器")),
    ("data-type-mismatch", "dm.item", lambda: with_fields("dm.item", action_type=1), "/data_type",
     lambda: with_fields("dm.item", vender="action_type")),
    ("data-type-mismatch", "dm.action", lambda: with_fields("dm.action", pool_id="p1"), "/data_type",
     lambda: with_fields("dm.action", scene_id="pool_id")),
    ("data-type-mismatch", "cre.item", lambda: cre_item(item_action=[]), "/data/0", lambda: cre_item(url="item_action")),
    ("data-type-mismatch", "cre.action", lambda: cre_action(publish="1"), "/data/0", lambda: cre_action(page_id="publish")),
    ("rec-order", "cre.query-response", lambda: _rec(["99", "100"]), "/rec/11016775/1/score", lambda: _rec(["100", "99", "99"])),
    ("rec-order", "dm.recommend-response", lambda: _weights([10, 20]), "/data/1/weight", lambda: _weights([20, 10, 10])),
]


def _batch(first, second):
    body = clean("cre.item")
    record = body["data"][0]
    body["data"] = [dict(record, item_id=first), dict(record, item_id=second)]
    return body


def _rec(scores):
    body = example("cre.query-response")
    body["rec"] = {"11016775": [{"id": str(i), "score": s} for i, s in enumerate(scores)]}
    return body


def _weights(weights):
    body = example("dm.recommend-response")
    body["data"] = [{"item": f"i{i}", "weight": w} for i, w in enumerate(weights)]
    return body


def _id(case):
    return f"{case[0]}:{case[1]}:{case[3]}"


@pytest.mark.parametrize("name", ["cre.item", "cre.action", "cre.query", "dm.item", "dm.action", "dm.recommend"])
def test_clean_bodies_have_no_findings(name):
    assert findings(clean(name), name, strict=True) == []


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("rule, name, bad, path, good", [pytest.param(*c, id=_id(c)) for c in CASES])
def test_rule_triggers(rule, name, bad, path, good, strict):
    found = [v for v in findings(bad(), name, strict) if v.rule == rule]
    registered = RULES[rule]
    severity = (registered.strict_severity or registered.severity) if strict else registered.severity
    assert [(v.path, v.severity) for v in found] == [(path, severity)]
    assert "Document:" in found[0].message  # every finding cites the document it rests on


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("rule, name, bad, path, good", [pytest.param(*c, id=_id(c)) for c in CASES])
def test_rule_does_not_trigger(rule, name, bad, path, good, strict):
    assert [v for v in findings(good(), name, strict) if v.rule == rule] == []


# -- uid shapes -------------------------------------------------------------------------------------------

UID_CASES = [
    # (uid_type, uid, shape ok?)
    ("0", "10001", True), ("0", "123456789012", True), ("0", "01234", False), ("0", "1234", False), ("0", "qq10001", False),
    ("3", "861234567890123", True), ("3", "86123456789012", False), ("3", "8612345678901234", False),
    ("3", "6D92078A-8246-4BA4-AE5B-76104861E7DC", True), ("3", "6d92078a-8246-4ba4-ae5b-76104861e7dc", True),
    ("3", "6D92078A82464BA4AE5B76104861E7DC", True), ("3", "40379db889f9124819228947faaeb1f7", True),
    ("3", "40379db889f9124819228947faaeb1f", False), ("3", "6D92078A-8246-4BA4-AE5B-76104861E7DG", False), ("3", "userId", False),
    ("4", "13800138000", True), ("4", "8613800138000", True), ("4", "+8613800138000", True), ("4", "+14155550123", True),
    ("4", "12800138000", False), ("4", "1380013800", False), ("4", "138-0013-8000", False),
    ("1", "anything_goes", True), ("2", "000000000000000000000000401EEEC1", True), ("5", "x", True),
]


@pytest.mark.parametrize("uid_type, uid, ok", UID_CASES)
def test_uid_shape_cre_action(uid_type, uid, ok):
    found = [v for v in findings(cre_action(uid_type=uid_type, uid=uid), "cre.action") if v.rule == "uid-shape"]
    assert [(v.path, v.severity) for v in found] == ([] if ok else [("/data/0/uid", WARNING)])


@pytest.mark.parametrize("uid_type, uid, ok", [c for c in UID_CASES if c[0] != "6"])
def test_uid_shape_cre_query(uid_type, uid, ok):
    found = [v for v in findings(with_fields("cre.query", uid_type=uid_type, user_id=uid), "cre.query") if v.rule == "uid-shape"]
    assert [(v.path, v.severity) for v in found] == ([] if ok else [("/user_id", WARNING)])


def test_uid_shape_cre_query_empty_user_id_is_cold_start():
    assert [v for v in findings(with_fields("cre.query", uid_type="0", user_id=""), "cre.query", strict=True)] == []


@pytest.mark.parametrize("name", ["dm.action", "dm.recommend"])
@pytest.mark.parametrize("uid_type, uid, ok", [(int(t), u, ok) for t, u, ok in UID_CASES if t in ("0", "3", "4")])
def test_uid_shape_dm(name, uid_type, uid, ok):
    found = [v for v in findings(with_fields(name, uid_type=uid_type, uid=uid), name) if v.rule == "uid-shape"]
    assert [(v.path, v.severity) for v in found] == ([] if ok else [("/uid", WARNING)])


@pytest.mark.parametrize("name", ["dm.action", "dm.recommend"])
@pytest.mark.parametrize("uid, ok", [("861234567890123", True), ("40379db889f9124819228947faaeb1f7", True),
                                     ("13800138000", False), ("userId", False)])
def test_uid_shape_dm_absent_uid_type_means_device(name, uid, ok):
    body = without(with_fields(name, uid=uid), "uid_type")
    found = [v for v in findings(body, name) if v.rule == "uid-shape"]
    assert [(v.path, v.severity) for v in found] == ([] if ok else [("/uid", WARNING)])


def test_uid_shape_stays_a_warning_in_strict_mode():
    found = findings(cre_action(uid_type="0", uid="not-a-qq"), "cre.action", strict=True)
    assert [(v.rule, v.severity) for v in found] == [("uid-shape", WARNING)]


# -- the registry ---------------------------------------------------------------------------------------

def test_every_registered_rule_is_exercised_here():
    covered = {c[0] for c in CASES} | {"uid-shape"}
    assert covered == set(RULES), "a new semantic rule needs a triggering and a non-triggering case"


def test_every_rule_has_a_one_line_summary_and_one_without_is_refused():
    from mockcre.contracts.semantic import rule

    assert all(r.summary and "\n" not in r.summary for r in RULES.values())
    with pytest.raises(ValueError, match="docstring"):
        rule("no-summary", WARNING, [("cre", "item")], "cited")(lambda record, parts, ctx: iter(()))
    assert "no-summary" not in RULES


def test_tags_separator_is_an_error_only_in_strict_mode():
    body = with_fields("dm.item", tags="a,b")
    assert [v.severity for v in validate(body, "dm", "item") if v.rule == "tags-separator"] == [WARNING]
    assert [v.severity for v in validate(body, "dm", "item", strict=True) if v.rule == "tags-separator"] == [ERROR]


def test_semantic_rules_do_not_crash_on_wrong_types():
    # Schema errors are reported; the rules must skip values of the wrong type instead of raising.
    strange = [None, True, 1.5, [], {}, "", "0"]
    for value in strange:
        for name, fields in [("cre.item", ["pool_id", "item_time", "expire_time", "item_id"]),
                             ("cre.action", ["source", "uid", "uid_type", "oper_time"]),
                             ("dm.action", ["item_id", "uid", "uid_type", "action_time"]),
                             ("dm.item", ["tags", "pool_id", "item_time", "expire_time"])]:
            for field in fields:
                body = clean(name)
                (body["data"][0] if name.startswith("cre.") else body)[field] = value
                findings(body, name)
    for value in [None, "x", [1], {"item": "a", "weight": "high"}]:
        findings({"request_id": "r", "code": 0, "algid": 1, "scene_id": "1", "data": [value, value]}, "dm.recommend-response")
        findings({"code": "0", "test_id": "t", "abtag": "a", "trace_id": "t", "rec": {"p": [value, value]}}, "cre.query-response")
