"""Checks a JSON Schema cannot express, each a named rule that cites the document it rests on."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from functools import cache
from typing import Callable, Iterator

from mockcre.common.domain import DAY, GLOBAL_POOL

from . import country
from .violations import ERROR, WARNING, Violation, display_path, pointer


@dataclass(frozen=True)
class Rule:
    id: str
    severity: str
    cites: str
    kinds: tuple
    check: Callable
    summary: str
    per_record: bool = True
    strict_severity: str | None = None


RULES: dict[str, Rule] = {}


def rule(rule_id: str, severity: str, kinds, cites: str, per_record: bool = True, strict_severity: str | None = None):
    """Register a check ``(record, parts, ctx) -> iterator of (parts, message)`` for some (dialect, kind)s.

    A ``per_record=False`` check gets the whole body once instead of each record. The check's docstring
    is the rule's one-line summary, which the OpenAPI export lists under each operation.
    """

    def register(fn):
        if not fn.__doc__:
            raise ValueError(f"semantic rule {rule_id}: its check needs a one-line docstring (the rule's summary)")
        RULES[rule_id] = Rule(rule_id, severity, cites, tuple(kinds), fn, fn.__doc__.strip(), per_record, strict_severity)
        return fn

    return register


@dataclass
class Context:
    dialect: str
    kind: str
    strict: bool
    now: float
    body: dict


def records(dialect: str, kind: str, body) -> Iterator[tuple[list, dict]]:
    """The records of a body with their path: ``data[i]`` for cre uploads, the body itself otherwise."""
    if dialect == "cre" and kind in ("item", "action"):
        data = body.get("data")
        if isinstance(data, list):
            for i, record in enumerate(data):
                if isinstance(record, dict):
                    yield ["data", i], record
    elif isinstance(body, dict):
        yield [], body


def semantic_violations(dialect: str, kind: str, body, strict: bool = False, now: float | None = None) -> list[Violation]:
    ctx = Context(dialect, kind, strict, time.time() if now is None else now, body)
    each_record, whole = list(records(dialect, kind, body)), [([], body)]
    out = []
    for r in _rules_for(dialect, kind):
        severity = (r.strict_severity or r.severity) if strict else r.severity
        for parts, record in each_record if r.per_record else whole:
            for where, message in r.check(record, parts, ctx):
                out.append(Violation(pointer(where), f"{display_path(where)}: {message}. Document: {r.cites}", severity, r.id))
    return out


@cache
def _rules_for(dialect: str, kind: str) -> tuple[Rule, ...]:
    """The rules that judge a (dialect, kind), in the catalogue's order (first asked once every rule is registered)."""
    return tuple(r for r in RULES.values() if (dialect, kind) in r.kinds)


def _seconds(value) -> int | None:
    text = str(value) if isinstance(value, (str, int)) and not isinstance(value, bool) else ""
    return int(text) if text.isdigit() and len(text) == 10 else None


# -- items -------------------------------------------------------------------------------------

@rule("item-pool-zero", ERROR, [("cre", "item"), ("dm", "item")],
      '注意不要使用 "0" 作为 pool_id，"0" 表示全局 pool_id，任意物料都会加一个为 "0" 的 pool_id')
def _pool_zero(record, parts, ctx):
    """pool_id must not name pool "0": that is the global pool every item joins anyway."""
    pools = record.get("pool_id")
    if isinstance(pools, str) and GLOBAL_POOL in pools.split(";"):
        yield parts + ["pool_id"], ('pool "0" is the global pool every item joins anyway; '
                                    f"do not report it (got {pools!r})")


@rule("item-expiry-order", ERROR, [("cre", "item"), ("dm", "item")],
      "expire_time：item 的过期时间，推荐结果会进行商品的过期过滤")
def _expiry_order(record, parts, ctx):
    """expire_time must be after item_time, or the item is expired on arrival."""
    start, end = _seconds(record.get("item_time")), _seconds(record.get("expire_time"))
    if start is not None and end is not None and end <= start:
        yield parts + ["expire_time"], f"expire_time {end} is not after item_time {start}: the item would be expired on arrival"


@rule("batch-duplicate-item", WARNING, [("cre", "item")], "相同的物料可以重复上报，字段信息以最后一次上报为准", per_record=False)
def _duplicate_items(body, parts, ctx):
    """An item_id repeated within one batch: only its last record is kept."""
    first_seen = {}
    for where, record in records("cre", "item", body):
        item_id = record.get("item_id")
        if isinstance(item_id, (str, int)) and not isinstance(item_id, bool):
            key = str(item_id)
            if key in first_seen:
                yield where + ["item_id"], (f"item {key!r} appears again in this batch (first at "
                                            f"{display_path(first_seen[key])}); only the last record is kept")
            else:
                first_seen[key] = where


# -- data_type ---------------------------------------------------------------------------------

# Fields that define the other record kind: a record carrying one says data_type is wrong. (A stray
# uid on an item proves nothing; an action_type does.)
_ITEM_DEFINING = ("pool_id", "publish", "item_time", "expire_time")
_KIND_FIELDS = {
    ("cre", "item"): ("action_id", "item_action", "oper_time"),
    ("cre", "action"): _ITEM_DEFINING,
    ("dm", "item"): ("action_type", "trace_id", "action_time"),
    ("dm", "action"): _ITEM_DEFINING + ("tags",),
}


@rule("data-type-mismatch", ERROR, list(_KIND_FIELDS), "data_type：协议类型：1：item，2：action")
def _data_type_mismatch(record, parts, ctx):
    """A record carrying the other kind's fields (action_id on an item, pool_id on an action) has the wrong data_type."""
    found = [name for name in _KIND_FIELDS[(ctx.dialect, ctx.kind)] if name in record]
    if found:
        other = "action" if ctx.kind == "item" else "item"
        where = ["data_type"] if ctx.dialect == "dm" else parts
        yield where, (f"data_type says {ctx.kind}, but the record carries {other} fields ({', '.join(found)}); "
                      f"send data_type {'2' if other == 'action' else '1'} for an {other}")


# -- actions -----------------------------------------------------------------------------------

@rule("dm-action-empty-item", ERROR, [("dm", "action")], "item_id：物料列表，多个物料用 ; 号隔开")
def _empty_item(record, parts, ctx):
    """item_id joins ids with single ';': no empty member."""
    items = record.get("item_id")
    if isinstance(items, str) and items and "" in [s.strip() for s in items.split(";")]:
        yield parts + ["item_id"], f"item list {items!r} has an empty member; join item ids with single ';'"


@rule("scene-ids-missing", WARNING, [("cre", "action")],
      'test_id/rule_id：推荐场景必须填写，此时该字段由推荐引擎的请求接口返回，业务上报时原样拷贝即可')
def _scene_ids(record, parts, ctx):
    """An action with source "0" (a recommendation scene) needs test_id and rule_id copied from the recommendation."""
    if record.get("source") == "0":
        for name in ("test_id", "rule_id"):
            if not record.get(name):
                yield parts + [name], (f'source "0" marks an action in a recommendation scene, which needs {name} '
                                       "copied from the recommendation answer (test_id, abtag)")


_TIME_FIELDS = {("cre", "action"): ["oper_time"], ("cre", "item"): ["item_time"],
                ("dm", "action"): ["action_time"], ("dm", "item"): ["item_time"]}


@rule("timestamp-future", WARNING, list(_TIME_FIELDS), "UTC 时间，10 位的秒级时间戳 (action_time：尽量实时上报)")
def _future(record, parts, ctx):
    """A time more than a day ahead: the clock or the unit is off."""
    for name in _TIME_FIELDS[(ctx.dialect, ctx.kind)]:
        seconds = _seconds(record.get(name))
        if seconds is not None and seconds > ctx.now + DAY:
            yield parts + [name], f"{seconds} is {(seconds - ctx.now) / DAY:.1f} days in the future; clocks or units are off"


# -- users -------------------------------------------------------------------------------------

_QQ = re.compile(r"[1-9][0-9]{4,11}")
_DEVICE = re.compile(r"[0-9]{15}|[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}|[0-9A-Fa-f]{32}")
_PHONE = re.compile(r"(\+?86)?1[3-9][0-9]{9}|\+[1-9][0-9]{6,14}")
# uid_type -> (pattern, what it should look like); only the shapes the documents define.
_UID_SHAPES = {
    "0": (_QQ, "a QQ number (5 to 12 digits)"),
    "3": (_DEVICE, "an IMEI (15 digits), an IDFA (8-4-4-4-12 hex) or an MD5 (32 hex digits)"),
    "4": (_PHONE, "a phone number (11-digit mainland mobile or +country number)"),
}
_UID_FIELDS = {("cre", "action"): "uid", ("cre", "query"): "user_id", ("dm", "action"): "uid", ("dm", "recommend"): "uid"}


@rule("uid-shape", WARNING, list(_UID_FIELDS),
      "如果是 imei 号，则是15位数字字符串；如果是 IFA 号，则是8-4-4-4-12，32个字符串；如果是 MD5（uid），则是32位的0-f的字符串")
def _uid_shape(record, parts, ctx):
    """A uid must look like its uid_type: a QQ number, an IMEI/IDFA/MD5, a phone number."""
    name = _UID_FIELDS[(ctx.dialect, ctx.kind)]
    uid, uid_type = record.get(name), record.get("uid_type", 3 if ctx.dialect == "dm" else None)
    shape = _UID_SHAPES.get(str(uid_type)) if not isinstance(uid_type, bool) else None
    if shape and isinstance(uid, str) and uid and not shape[0].fullmatch(uid):
        yield parts + [name], f"uid_type {uid_type} wants {shape[1]}; got {uid[:40]!r}"


# -- geo ---------------------------------------------------------------------------------------

@rule("country-code", WARNING, [("cre", "item"), ("cre", "action"), ("cre", "query"), ("dm", "item"), ("dm", "action"),
                                ("dm", "recommend")], 'country：ISO 3166-1 alpha-3 编码，例如 "CHN"（中国）', strict_severity=ERROR)
def _flat_country(record, parts, ctx):
    """A flat ``country`` (beside flat latitude/longitude, as real clients send it); geo.country is the schema's."""
    value = record.get("country")
    if isinstance(value, str) and not country.is_code(value):
        yield parts + ["country"], f"{value!r} is not an ISO 3166-1 alpha-3 country code; {country.advice(value)}"


# -- tags --------------------------------------------------------------------------------------

@rule("tags-separator", WARNING, [("dm", "item")], "tags：多个 tag 用 ; 号隔开", strict_severity=ERROR)
def _tags_separator(record, parts, ctx):
    """tags are joined by ';', not ','."""
    tags = record.get("tags")
    if isinstance(tags, str) and ("," in tags or "，" in tags):
        yield parts + ["tags"], f"tags are joined by ';', not ','; got {tags[:60]!r}"


# -- replies -----------------------------------------------------------------------------------

@rule("rec-order", ERROR, [("cre", "query-response"), ("dm", "recommend-response")],
      "rec：为对当前池子（pool_id）打分后的物品列表 / data.weight：推荐物品的权重")
def _rec_order(record, parts, ctx):
    """A ranked list goes best first: score (cre) or weight (dm) never rises."""
    lists = []
    if ctx.dialect == "cre" and isinstance(record.get("rec"), dict):
        lists = [(["rec", pool], entries, "score") for pool, entries in record["rec"].items()]
    elif ctx.dialect == "dm":
        lists = [(["data"], record.get("data"), "weight")]
    for where, entries, key in lists:
        if not isinstance(entries, list):
            continue
        values = [_number(e.get(key)) if isinstance(e, dict) else None for e in entries]
        for i in range(1, len(values)):
            if values[i] is not None and values[i - 1] is not None and values[i] > values[i - 1]:
                yield where + [i, key], f"{key} {values[i]} is higher than the {values[i - 1]} before it; lists are ranked best first"
                break


def _number(value):
    try:
        return float(value) if not isinstance(value, bool) else None
    except (TypeError, ValueError):
        return None
