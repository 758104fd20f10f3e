"""Hypothesis strategies for both dialects, generated from the JSON Schemas in ``schemas/``.

Why schema-driven: the schemas are the contract, so a generator read from them cannot drift from
what ``mockcre.contracts.validate`` checks. Three layers, each replaceable on its own:

1. ``from_schema`` turns the keyword subset the schema files use into valid instances;
2. small domain vocabularies (ids, uids, timestamps, pools, free text) replace the values a schema
   can only describe loosely, through ``overrides`` keyed by field path or field name;
3. per-kind fix-ups repair what a schema cannot express at all: the semantic rules of
   ``mockcre.contracts.semantic`` (pool "0", expiry order, uid shapes, unique batch ids, ...).

Public strategies: ``requests(dialect, kind, valid=True)``, ``responses(dialect, kind)`` and
``mutations(dialect, kind)``, which yields ``(body, Defect)`` pairs: a valid body with exactly one
targeted defect and a description of where it is and which rule must catch it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import re
import string
import time
from dataclasses import dataclass
from functools import cache
from typing import Callable, Mapping

from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from mockcre.contracts.schema_check import registry as schema_registry
from mockcre.contracts.violations import display_path, pointer
from mockcre.dialects import DIALECTS
from mockcre.common.domain import (CRE_DEFAULT_TTL, DAY, DM_DEFAULT_TTL, DM_DEFAULT_UID_TYPE, GLOBAL_POOL, REQUEST_KINDS,
                            RESPONSE_KINDS)
from mockcre.common.resources import load_schema

__all__ = [
    "Defect", "from_schema", "requests", "responses", "mutations", "sign",
    "identifiers", "free_text", "cities", "timestamps", "request_ids", "md5_hex", "tokens",
    "pool_ids", "pool_id_lists", "item_ids", "item_id_lists", "dm_tags", "cre_tags", "uids",
    "numeric_strings", "urls", "qq_numbers", "device_ids", "phone_numbers", "readable_text", "FREE_TEXT_FIELDS",
]

# -- alphabets: small, so failures are readable ---------------------------------------------------

_ID_CHARS = string.ascii_lowercase + string.digits + "_-"
_READABLE = string.ascii_letters + string.digits + " _-."
_REGEX_ALPHABET = string.ascii_letters + string.digits + "_-.+:/;,"  # with the separators patterns spell out
# No comma of either width: dm tags use these words and must not contain ',' or '，'.
_HANZI = "推荐物料上报测试深圳北京上海广州杭州男装女装休闲裤情侣装电器科技电子手机苹果黑色最新款店铺品牌视频音乐游戏新闻体育美食旅行"
_EMOJI = ("😀", "🎉", "🔥", "👍", "📱", "🍎", "✨", "🚀", "🧧")
_CITIES = ("深圳", "北京", "上海", "广州", "杭州", "成都", "Shenzhen", "Beijing", "city name", "香港")
_TAG_WORDS = ("男装", "休闲裤", "情侣装", "电器", "科技", "电子", "手机", "sports", "news", "music", "🎮游戏")

#: Plain-string fields that carry human text: they get Chinese text and emoji sometimes.
FREE_TEXT_FIELDS = frozenset({
    "describe", "vender", "big_type", "middle_type", "small_type", "lv1class", "lv2class", "lv2calss",
    "lv3class", "device", "item_type", "message", "msg", "action_value",
})

_MAX_AGE = 15 * 365 * DAY  # how far back generated timestamps reach


# -- domain vocabularies (one function per concern; issue 6 extends these) ------------------------

def identifiers(min_size: int = 1, max_size: int = 12) -> st.SearchStrategy[str]:
    """Short lowercase ids: readable in failure reports, never empty unless asked."""
    return st.text(alphabet=_ID_CHARS, min_size=min_size, max_size=max_size)


def readable_text(min_size: int = 0, max_size: int = 16) -> st.SearchStrategy[str]:
    """ASCII words and spaces for free strings nobody reads."""
    return st.text(alphabet=_READABLE, min_size=min_size, max_size=max_size)


def free_text(max_size: int = 24) -> st.SearchStrategy[str]:
    """Human text: ASCII, Chinese, or Chinese with emoji, because real describe/vender values are."""
    pieces = st.one_of(st.text(alphabet=_HANZI, min_size=1, max_size=6), st.sampled_from(_EMOJI))
    return st.one_of(
        readable_text(0, min(max_size, 16)),
        st.text(alphabet=_HANZI, min_size=1, max_size=max(1, min(max_size, 12))),
        st.lists(pieces, min_size=1, max_size=4).map("".join).filter(lambda s: len(s) <= max_size),
    )


def cities() -> st.SearchStrategy[str]:
    """City names as clients send them: mostly Chinese, some pinyin."""
    return st.one_of(st.sampled_from(_CITIES), free_text(12))


def timestamps(as_string: bool = True, max_age: int = _MAX_AGE) -> st.SearchStrategy:
    """10-digit UTC seconds no later than the moment of drawing (rule timestamp-future).

    The age is drawn, not the time: bounds that moved with the clock would make Hypothesis see a
    different strategy on every run. The default 15 years keeps every value at 10 digits.
    """

    @st.composite
    def draw_seconds(draw):
        seconds = int(time.time()) - draw(st.integers(0, max_age))
        return str(seconds) if as_string else seconds

    return draw_seconds()


def request_ids() -> st.SearchStrategy[str]:
    """dm request_id: 毫秒级时间戳_随机数, a 13-digit millisecond timestamp, '_', 3+ random digits."""

    @st.composite
    def draw_request_id(draw):
        ms = int(time.time() * 1000) - draw(st.integers(0, _MAX_AGE * 1000))
        return f"{ms}_{draw(st.from_regex(r'[0-9]{3,6}', fullmatch=True))}"

    return draw_request_id()


def md5_hex() -> st.SearchStrategy[str]:
    """32 lowercase hex digits, as md5(bid&request_id&TOKEN) prints."""
    return st.binary(max_size=16).map(lambda b: hashlib.md5(b).hexdigest())


def tokens() -> st.SearchStrategy[str]:
    """cre tokens look like UUIDs (例如 7d10d09d-be62-4979-9ee0-414f7a23086a)."""
    return st.uuids().map(str)


def numeric_strings() -> st.SearchStrategy[str]:
    """cre decimal strings such as "0", "99" or "9.99"."""
    return st.one_of(st.integers(0, 1000).map(str), st.integers(0, 100_000).map(lambda c: f"{c / 100:.2f}"))


def pool_ids() -> st.SearchStrategy[str]:
    """One pool id; never "0", the global pool that items must not report (rule item-pool-zero)."""
    return identifiers(1, 8).filter(lambda p: p != GLOBAL_POOL)


def pool_id_lists(separator: str = ";") -> st.SearchStrategy[str]:
    """Pool ids joined by the dialect's separator, with no empty member."""
    return st.lists(pool_ids(), min_size=1, max_size=3).map(separator.join)


def item_ids() -> st.SearchStrategy:
    """An item id: a string or a number, as both documents allow (数值和字符串都可以)."""
    return st.one_of(identifiers(1, 10), st.integers(0, 10**9))


def item_id_lists() -> st.SearchStrategy:
    """dm action item_id: ids joined by ';' with no empty member (rule dm-action-empty-item), or one number."""
    return st.one_of(st.lists(identifiers(1, 8), min_size=1, max_size=4).map(";".join), st.integers(0, 10**9))


def _tag_words() -> st.SearchStrategy[str]:
    return st.one_of(st.sampled_from(_TAG_WORDS), st.text(alphabet=_HANZI, min_size=1, max_size=4), identifiers(1, 6))


def dm_tags() -> st.SearchStrategy[str]:
    """dm tags: words joined by ';' and never by a comma (rule tags-separator)."""
    return st.lists(_tag_words(), min_size=0, max_size=4).map(";".join)


def cre_tags() -> st.SearchStrategy[dict]:
    """cre tags: tag → weight string, as the document's example sends ({"男装": "1"})."""
    return st.dictionaries(_tag_words(), st.one_of(numeric_strings(), st.sampled_from(["1", "0.8", "0.5"])), max_size=4)


def qq_numbers() -> st.SearchStrategy[str]:
    """QQ numbers: 5 to 12 digits, no leading zero."""
    return st.integers(10_000, 999_999_999_999).map(str)


def device_ids() -> st.SearchStrategy[str]:
    """IMEI (15 digits), IDFA (8-4-4-4-12 hex) or an MD5 of either (32 hex digits)."""
    return st.one_of(st.from_regex(r"[0-9]{15}", fullmatch=True), st.uuids().map(lambda u: str(u).upper()), md5_hex())


def phone_numbers() -> st.SearchStrategy[str]:
    """Mainland mobile numbers, optionally with 86/+86, or international +numbers."""
    mainland = st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True)
    return st.one_of(mainland, st.tuples(st.sampled_from(["86", "+86"]), mainland).map("".join),
                     st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))


def uids(uid_type) -> st.SearchStrategy[str]:
    """A user id of the shape uid_type names (rule uid-shape); free ids for types without a shape."""
    kind = str(uid_type)
    if kind == "0":
        return qq_numbers()
    if kind == "3":
        return device_ids()
    if kind == "4":
        return phone_numbers()
    if kind == "1":  # WeChat id (微信号)
        return st.from_regex(r"[a-z][a-z0-9_-]{5,19}", fullmatch=True)
    if kind in ("2", "6"):  # openids
        return st.one_of(st.from_regex(r"o[A-Za-z0-9_-]{27}", fullmatch=True), md5_hex().map(str.upper))
    return identifiers(1, 16)


# -- the schema walker -----------------------------------------------------------------------------

def _field_of(path: tuple) -> str | None:
    names = [p for p in path if p != "*"]
    return names[-1] if names else None


class _Builder:
    """Turns one schema (and what it references) into a strategy; ``overrides`` win by path, then name."""

    def __init__(self, registry: Registry, overrides: Mapping[str, st.SearchStrategy]):
        self.registry = registry
        self.overrides = dict(overrides)

    def build(self, schema, resolver, path: tuple) -> st.SearchStrategy:
        key = "/".join(path)
        if key in self.overrides:
            return self.overrides[key]
        field = _field_of(path)
        if path and path[-1] != "*" and field in self.overrides:
            return self.overrides[field]
        if schema is True or schema == {}:
            return readable_text()
        if "$ref" in schema:
            resolved = resolver.lookup(schema["$ref"])
            merged = {**resolved.contents, **{k: v for k, v in schema.items() if k != "$ref"}}
            return self.build(merged, resolved.resolver, path)
        if "const" in schema:
            return st.just(copy.deepcopy(schema["const"]))
        if "enum" in schema:
            return st.sampled_from(list(schema["enum"]))
        types = schema.get("type")
        if isinstance(types, list):
            return st.one_of([self.build({**schema, "type": t}, resolver, path) for t in types])
        if types is None:
            types = "object" if "properties" in schema else "string"
        builder = {"string": self._string, "integer": self._integer, "number": self._number,
                   "boolean": lambda *_: st.booleans(), "null": lambda *_: st.none(),
                   "object": self._object, "array": self._array}[types]
        return builder(schema, resolver, path)

    def _string(self, schema, resolver, path):
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        fits = (lambda s: lo <= len(s) and (hi is None or len(s) <= hi))
        if "pattern" in schema:
            return st.from_regex(schema["pattern"], fullmatch=True, alphabet=_REGEX_ALPHABET).filter(fits)
        field = _field_of(path)
        if field == "city":
            return cities().filter(fits)
        if field in FREE_TEXT_FIELDS:
            return free_text(min(hi or 24, 24)).filter(fits)
        return readable_text(lo, max(lo, min(hi if hi is not None else 16, 16)))

    @staticmethod
    def _bounds(schema, default_span):
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        if lo is None:
            lo = 0 if hi is None or hi >= 0 else hi - default_span
        if hi is None:
            hi = lo + default_span
        return lo, hi

    def _integer(self, schema, resolver, path):
        lo, hi = self._bounds(schema, 10**6)
        strategy = st.integers(int(lo), int(hi))
        if "exclusiveMinimum" in schema or "exclusiveMaximum" in schema:
            strategy = strategy.filter(lambda n: n != schema.get("exclusiveMinimum") and n != schema.get("exclusiveMaximum"))
        return strategy

    def _number(self, schema, resolver, path):
        lo, hi = self._bounds(schema, 10**6)
        floats = st.floats(lo, hi, allow_nan=False, allow_infinity=False).map(lambda x: round(x, 6))
        floats = floats.filter(lambda x: lo <= x <= hi)  # rounding never leaves integer bounds; be sure anyway
        if math.ceil(lo) > math.floor(hi):
            return floats
        return st.one_of(floats, st.integers(math.ceil(lo), math.floor(hi)))

    def _array(self, schema, resolver, path):
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", lo + 3)
        items = self.build(schema.get("items", {}), resolver, path + ("*",))
        return st.lists(items, min_size=lo, max_size=hi)

    def _object(self, schema, resolver, path):
        props = {name: self.build(sub, resolver, path + (name,)) for name, sub in schema.get("properties", {}).items()}
        required = list(schema.get("required", []))
        extra = schema.get("additionalProperties")
        extras = None
        if isinstance(extra, dict):
            extras = st.dictionaries(identifiers(1, 8), self.build(extra, resolver, path + ("*",)), max_size=3)
        for name in required:  # a required name the table does not describe: anything readable
            props.setdefault(name, readable_text())
        dependent = schema.get("dependentRequired", {})
        branch = self._branches(schema)

        @st.composite
        def draw_object(draw):
            out = {}
            if extras is not None:
                out.update({k: v for k, v in draw(extras).items() if k not in props})
            for name, strategy in props.items():
                if name in required or draw(st.booleans()):
                    out[name] = draw(strategy)
            for name, needs in dependent.items():
                if name in out:
                    for need in needs:
                        if need not in out:
                            out[need] = draw(props.get(need, readable_text()))
            if branch is not None:
                for need in branch(out):
                    if need not in out:
                        out[need] = draw(props.get(need, readable_text()))
            return out

        return draw_object()

    def _branches(self, schema) -> Callable[[dict], list] | None:
        """if/then/else of the response schemas: which fields the branch the instance falls in requires.

        Only ``required`` of then/else is applied; filling them never changes the ``if`` outcome
        because the schemas' conditions look at other fields (``code``).
        """
        if "if" not in schema:
            return None
        condition = Draft202012Validator(schema["if"], registry=self.registry)
        then, otherwise = schema.get("then", {}), schema.get("else", {})
        return lambda out: (then if condition.is_valid(out) else otherwise).get("required", [])


def from_schema(schema: dict, registry: Registry | None = None, *, base_uri: str | None = None,
                overrides: Mapping[str, st.SearchStrategy] | None = None) -> st.SearchStrategy:
    """A strategy of instances valid against ``schema`` (the keyword subset of ``schemas/``).

    ``$ref`` is resolved through ``registry`` (default: the contracts' registry of every schema
    file) from ``base_uri`` (default: the schema's ``$id``). ``overrides`` maps a field path
    (``"data/*/uid"``, ``*`` for array items and map values) or a bare field name to a strategy
    used instead of the schema there; the caller vouches that it yields valid values. Optional
    properties are present about half the time. Cyclic ``$ref`` chains are not supported (the
    schema files have none).
    """
    registry = registry if registry is not None else schema_registry()
    if base_uri is None:
        base_uri = schema.get("$id") or _ANONYMOUS
        if base_uri not in registry:  # a schema of its own: its "#/..." references point into itself
            registry = registry.with_resource(base_uri, Resource.from_contents(schema, default_specification=DRAFT202012))
    resolver = registry.resolver(base_uri=base_uri)
    return _Builder(registry, overrides or {}).build(schema, resolver, ())


_ANONYMOUS = "urn:mockcre:strategies:anonymous-schema"


# -- per-kind domain overrides and fix-ups -----------------------------------------------------------

def _check_kind(dialect: str, kind: str, kinds: Mapping[str, tuple]) -> None:
    if dialect not in kinds:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {', '.join(kinds)}")
    if kind not in kinds[dialect]:
        raise ValueError(f"unknown kind {kind!r} for {dialect}; expected one of {', '.join(kinds[dialect])}")


def urls() -> st.SearchStrategy[str]:
    """Item URLs: the domain is a feature (URL 的域名，本身就可以作为特征使用), so keep it varied."""
    return st.builds("https://www.{}.com/{}".format, identifiers(1, 6), identifiers(0, 8))


def _digit_ids(high: int = 10**7) -> st.SearchStrategy[str]:
    return st.integers(1, high).map(str)


# Vocabularies: per request kind, the fields whose schema says too little (paths as in from_schema).

def _cre_envelope_vocabulary() -> dict:
    return {"token": tokens(), "seq_no": st.integers(0, 10**9).map(str), "busi_id": _digit_ids(),
            "test_id": _digit_ids(), "rule_id": _digit_ids()}


def _cre_item_vocabulary() -> dict:
    return {**_cre_envelope_vocabulary(), "data/*/pool_id": pool_id_lists(";"), "data/*/item_id": item_ids(),
            "data/*/item_time": timestamps(), "data/*/expire_time": timestamps(), "data/*/tags": cre_tags(),
            "data/*/score": numeric_strings(), "data/*/price": numeric_strings(), "url": urls()}


def _cre_action_vocabulary() -> dict:
    return {**_cre_envelope_vocabulary(), "data/*/oper_time": timestamps(), "data/*/uid": identifiers(),
            "data/*/source": st.one_of(st.just("0"), st.sampled_from(["1", "2", "biz"])),
            "data/*/item_action/*/item_id": item_ids(), "data/*/item_action/*/trace_id": identifiers(1, 10),
            "data/*/item_action/*/position_id": st.integers(0, 50).map(str)}


def _cre_query_vocabulary() -> dict:
    # 多个池子以，分割: the document's separator is the full-width comma; mockcre splits on both.
    return {**_cre_envelope_vocabulary(), "proj_id": _digit_ids(), "scn_id": _digit_ids(10**9),
            "pool_id": st.one_of(st.just(GLOBAL_POOL), pool_id_lists(","), pool_id_lists("，")),
            "pool/items/*": item_ids(), "request_num": st.integers(1, 500).map(str), "user_id": identifiers()}


def _dm_vocabulary() -> dict:
    return {"request_id": request_ids(), "MD5": md5_hex(), "bid": identifiers(1, 10), "scene_id": _digit_ids(10**5),
            "uid": identifiers()}


def _dm_item_vocabulary() -> dict:
    return {**_dm_vocabulary(), "pool_id": pool_id_lists(";"), "item_id": item_ids(), "item_time": timestamps(),
            "expire_time": timestamps(as_string=False), "tags": dm_tags(), "url": urls()}


def _dm_action_vocabulary() -> dict:
    return {**_dm_vocabulary(), "item_id": item_id_lists(), "action_time": timestamps(), "trace_id": identifiers(1, 12)}


def _dm_recommend_vocabulary() -> dict:
    return {**_dm_vocabulary(), "pool_id": st.one_of(st.just(GLOBAL_POOL), pool_id_lists(";")), "cid": item_ids(),
            "request_num": st.integers(1, 200)}


# Fix-ups: each takes (draw, body) and repairs one semantic rule in place.

def _records(dialect: str, kind: str, body: dict) -> list[dict]:
    if dialect == "cre" and kind in ("item", "action"):
        return [r for r in body.get("data", []) if isinstance(r, dict)]
    return [body]


def _fix_uid(draw, record: dict, field: str, default_type) -> None:
    """Give the uid the shape its uid_type names (rule uid-shape; dm's absent uid_type means 3)."""
    if field in record:
        record[field] = draw(uids(record.get("uid_type", default_type)))


def _fix_expiry(draw, record: dict, ttl: int) -> None:
    """expire_time strictly after item_time (rule item-expiry-order), usually item_time + the default TTL."""
    if "expire_time" not in record or "item_time" not in record:
        return
    start = int(record["item_time"])  # at most now: start + 20 years stays at 10 digits until 2150
    end = start + draw(st.one_of(st.just(ttl), st.integers(1, 20 * 365 * DAY)))
    record["expire_time"] = str(end) if isinstance(record["expire_time"], str) else end


def _fix_scene_ids(draw, record: dict) -> None:
    """source "0" marks a recommendation scene, which needs test_id and rule_id (rule scene-ids-missing)."""
    if record.get("source") == "0":
        for name in ("test_id", "rule_id"):
            if not record.get(name):
                record[name] = draw(_digit_ids())


def _fix_unique_items(draw, body: dict) -> None:
    """One record per item id in a cre batch (rule batch-duplicate-item): later duplicates are dropped."""
    seen, kept = set(), []
    for record in body["data"]:
        key = str(record.get("item_id"))
        if key not in seen:
            seen.add(key)
            kept.append(record)
    body["data"] = kept


def _fix_cre_item_expiry(draw, body: dict) -> None:
    for record in body["data"]:
        _fix_expiry(draw, record, CRE_DEFAULT_TTL)


def _fix_cre_actions(draw, body: dict) -> None:
    for record in body["data"]:
        _fix_uid(draw, record, "uid", None)
        _fix_scene_ids(draw, record)


def _fix_cre_query_user(draw, body: dict) -> None:
    """user_id of the uid_type's shape, and now and then empty: 若为空则当冷启动处理 (cold start)."""
    _fix_uid(draw, body, "user_id", None)
    if draw(st.integers(0, 9)) == 0:
        body["user_id"] = ""


def _fix_pool_items(draw, body: dict) -> None:
    """pool.item_type "0" announces integer ids: make the ids to rank integers (or digit strings)."""
    pool = body.get("pool")
    if isinstance(pool, dict) and pool.get("item_type") == "0" and "items" in pool:
        ids = st.one_of(st.integers(0, 10**6), st.integers(0, 10**6).map(str))
        pool["items"] = draw(st.lists(ids, min_size=len(pool["items"]), max_size=len(pool["items"])))


def _fix_dm_item_expiry(draw, body: dict) -> None:
    _fix_expiry(draw, body, DM_DEFAULT_TTL)


def _fix_dm_uid(draw, body: dict) -> None:
    _fix_uid(draw, body, "uid", DM_DEFAULT_UID_TYPE)


#: (dialect, kind) -> (vocabulary, fix-ups applied in order)
_REQUEST_DOMAIN: dict[tuple[str, str], tuple[Callable[[], dict], tuple]] = {
    ("cre", "item"): (_cre_item_vocabulary, (_fix_unique_items, _fix_cre_item_expiry)),
    ("cre", "action"): (_cre_action_vocabulary, (_fix_cre_actions,)),
    ("cre", "query"): (_cre_query_vocabulary, (_fix_cre_query_user, _fix_pool_items)),
    ("dm", "item"): (_dm_item_vocabulary, (_fix_dm_item_expiry,)),
    ("dm", "action"): (_dm_action_vocabulary, (_fix_dm_uid,)),
    ("dm", "recommend"): (_dm_recommend_vocabulary, (_fix_dm_uid,)),
}


def _fix_rec_order(body: dict) -> dict:
    """Ranked lists best first (rule rec-order): sort by score (cre) or weight (dm), descending."""
    if isinstance(body.get("rec"), dict):
        for entries in body["rec"].values():
            entries.sort(key=lambda e: float(e["score"]), reverse=True)
    if isinstance(body.get("data"), list):
        body["data"].sort(key=lambda e: e["weight"], reverse=True)
    return body


def _response_vocabulary(dialect: str) -> dict:
    """Reply fields: cre codes mostly from the documented set, so the success branch is common."""
    if dialect == "cre":
        return {"code": st.one_of(st.sampled_from(["0", "0", "-1", "-2", "-3"]), st.from_regex(r"-?[0-9]{1,3}", fullmatch=True)),
                "rec/*/*/score": numeric_strings(), "rec/*/*/id": identifiers(1, 10), "trace_id": _digit_ids(10**18),
                "seq_no": st.one_of(st.none(), st.integers(0, 10**9).map(str)), "test_id": _digit_ids(), "abtag": _digit_ids()}
    return {"request_id": st.one_of(st.none(), request_ids()), "data/*/item": identifiers(1, 10), "scene_id": _digit_ids(10**5)}


# -- public strategies -----------------------------------------------------------------------------

@cache
def _valid_requests(dialect: str, kind: str) -> st.SearchStrategy[dict]:
    vocabulary, fixups = _REQUEST_DOMAIN[(dialect, kind)]
    base = from_schema(load_schema(f"{dialect}.{kind}"), overrides=vocabulary())

    @st.composite
    def draw_request(draw):
        body = draw(base)
        for fix in fixups:
            fix(draw, body)
        return body

    return draw_request()


def requests(dialect: str, kind: str, valid: bool = True, account=None) -> st.SearchStrategy[dict]:
    """Request bodies of ``schemas/{dialect}.{kind}.schema.json``.

    ``valid=True``: bodies with no violation at all in strict mode, semantic rules included.
    ``valid=False``: a valid body with exactly one targeted defect (see ``mutations``), which both
    modes must reject.
    ``account``: sign the bodies as that account would — a cre token, or a dm ``(bid, token)`` pair
    whose MD5 = md5(bid&request_id&TOKEN) is computed for each body.
    """
    _check_kind(dialect, kind, REQUEST_KINDS)
    if not valid:
        return mutations(dialect, kind, account).map(lambda pair: pair[0])
    return _valid_requests(dialect, kind).map(lambda body: sign(dialect, body, account))


def sign(dialect: str, body: dict, account) -> dict:
    """``body`` as ``account`` sends it (see ``requests``); no account leaves it as it is."""
    return body if account is None else DIALECTS[dialect].signed(body, account)


@cache
def responses(dialect: str, kind: str) -> st.SearchStrategy[dict]:
    """Reply bodies of ``schemas/{dialect}.{kind}.schema.json``, success and error branches alike.

    Besides what the schema allows at random, one draw in three is an edge a parser must survive:
    the documented -1/-2/-3 envelopes, empty results, the maximum of 200 items, weights at 0 and
    1000000, Chinese and emoji ids.
    """
    _check_kind(dialect, kind, RESPONSE_KINDS)
    generated = from_schema(load_schema(f"{dialect}.{kind}"), overrides=_response_vocabulary(dialect)).map(_fix_rec_order)
    return st.one_of(generated, generated, _edge_responses(dialect, kind))


_UNICODE_IDS = ("商品-001", "视频🎬42", "ItemId10", "物料_0", "🧧", "item with space")


def _ranked_ids(max_size: int) -> st.SearchStrategy[list]:
    return st.lists(st.one_of(st.sampled_from(_UNICODE_IDS), identifiers(1, 8)), min_size=0, max_size=max_size, unique=True)


def _edge_responses(dialect: str, kind: str) -> st.SearchStrategy[dict]:
    echo = st.one_of(st.none(), request_ids()) if dialect == "dm" else st.one_of(st.none(), st.just("987654321"))
    lengths = st.sampled_from([0, 1, 2, 200])
    if dialect == "dm":
        envelope = st.builds(lambda rid, code, msg: {"request_id": rid, "code": code, "msg": msg}, echo,
                             st.sampled_from([-1, -2, -3]), st.sampled_from(["empty result", "format error (格式错误)",
                                                                             "system error", "true"]))
        if kind == "error-response":
            return envelope
        if kind == "report-response":
            return st.one_of(envelope, st.builds(lambda rid: {"request_id": rid, "code": 0, "msg": "true"}, echo))

        @st.composite
        def ranked(draw):
            n = draw(lengths)
            ids = draw(_ranked_ids(n)) if n < 200 else [f"物料{i:03d}" for i in range(200)]
            top = draw(st.sampled_from([1_000_000, 974, 0]))
            weights = sorted((draw(st.integers(0, top)) for _ in ids), reverse=True)
            if weights:
                weights[0] = top
            return {"request_id": draw(echo), "algid": draw(st.integers(0, 99)), "code": 0, "scene_id": "1001",
                    "data": [{"item": i, "weight": w} for i, w in zip(ids, weights)]}

        return st.one_of(envelope, ranked())
    envelope = st.builds(lambda seq, code, message: {"seq_no": seq, "code": code, "message": message}, echo,
                         st.sampled_from(["-1", "-2", "-3"]), st.sampled_from([None, "format error (格式错误)", "system error"]))
    if kind != "query-response":
        return st.one_of(envelope, st.builds(lambda seq, message: {"seq_no": seq, "code": "0", "message": message},
                                             echo, st.sampled_from([None, "success"])))

    @st.composite
    def ranked(draw):
        pools = draw(st.lists(st.sampled_from(["0", "11016775", "女装", "p1"]), min_size=1, max_size=3, unique=True))
        rec = {}
        for pool in pools:
            n = draw(lengths)
            ids = draw(_ranked_ids(n)) if n < 200 else [f"{pool}-{i}" for i in range(200)]
            rec[pool] = [{"id": i, "score": str(len(ids) - k)} for k, i in enumerate(ids)]
        return {"seq_no": draw(echo), "code": "0", "message": draw(st.sampled_from([None, "success", "empty result"])),
                "test_id": "123456789", "abtag": "123456789", "trace_id": "737213799686931157", "rec": rec}

    return st.one_of(envelope, ranked())


# -- mutations: one targeted defect ------------------------------------------------------------------

@dataclass(frozen=True)
class Defect:
    """The one defect a mutation planted: where (JSON pointer), which rule must report it, and what it is."""

    path: str
    rule: str
    description: str


_MUTATION_KINDS = ("remove", "type", "enum", "pattern", "range", "const", "signature")


@dataclass(frozen=True)
class _Site:
    parts: tuple
    kind: str  # remove | type | enum | range | pattern | const
    schema: dict
    candidates: tuple = ()


_WRONG_TYPES = ({}, [], True, False, {"value": "1"}, ["1"])
_BAD_STRINGS = ("", " ", "bogus", "x;;y", "-", "12:30", "1e5", "NaN", "91", "181.5", "1234567890123456", "99", "zz")
_BAD_INTEGERS = (99, -7, 5, 2, 1000, -1)


def _lenient_forgives(schema: dict, value) -> bool:
    """Would lenient mode turn this value's failure into a warning (x-lenient accept or a type coercion)?"""
    lenient = schema.get("x-lenient")
    forms = [value]
    if isinstance(value, str):
        for convert in (int, float):
            try:
                forms.append(convert(value.strip()))
                break
            except ValueError:
                continue
    elif isinstance(value, (int, float)) and not isinstance(value, bool):
        forms.append(str(value))
    for form in forms:
        if Draft202012Validator(schema, registry=schema_registry()).is_valid(form):
            return True
        if lenient is not None and Draft202012Validator(lenient["accept"]).is_valid(form):
            return True
    return False


def _resolve(schema, resolver):
    while isinstance(schema, dict) and "$ref" in schema:
        resolved = resolver.lookup(schema["$ref"])
        schema = {**resolved.contents, **{k: v for k, v in schema.items() if k != "$ref"}}
        resolver = resolved.resolver
    return schema, resolver


def _is_scalar(schema: dict) -> bool:
    types = schema.get("type")
    types = [types] if isinstance(types, str) else types or []
    if "const" in schema or "enum" in schema:
        return True
    return bool(types) and all(t in ("string", "integer", "number") for t in types)


def _scalar_sites(parts: tuple, schema: dict, value):
    """Every one-value defect this scalar field admits, with bad values lenient mode does not forgive."""
    for kind, candidates in _scalar_defects(json.dumps(schema, sort_keys=True), parts[-1] == "data_type"):
        yield _Site(parts, kind, schema, candidates)


@cache
def _scalar_defects(schema_json: str, is_data_type: bool) -> tuple:
    """``(kind, bad values)`` pairs of one scalar schema, computed once per distinct schema."""
    schema = json.loads(schema_json)
    return tuple(_scalar_defects_of(schema, is_data_type))


def _scalar_defects_of(schema: dict, is_data_type: bool):
    wrong = tuple(v for v in _WRONG_TYPES if not _lenient_forgives(schema, v))
    if wrong:
        yield "type", wrong
    if "const" in schema and is_data_type:
        other = {"1": "2", "2": "1", 1: 2, 2: 1}.get(schema["const"])
        if other is not None:
            yield "const", (other,)
    if "enum" in schema:
        pool = _BAD_INTEGERS if all(isinstance(v, int) for v in schema["enum"]) else _BAD_STRINGS
        bad = tuple(v for v in pool if v not in schema["enum"] and not _lenient_forgives(schema, v))
        if bad:
            yield "enum", bad
    if "pattern" in schema:
        bad = tuple(s for s in _BAD_STRINGS if not re.search(schema["pattern"], s) and not _lenient_forgives(schema, s))
        if bad:
            yield "pattern", bad
    if "minimum" in schema or "maximum" in schema:
        step = 1 if schema.get("type") == "integer" else 0.5
        out = []
        if "maximum" in schema:
            out.append(("maximum", schema["maximum"] + step))
        if "minimum" in schema:
            out.append(("minimum", schema["minimum"] - step))
        bad = tuple(pair for pair in out if not _lenient_forgives(schema, pair[1]))
        if bad:
            yield "range", bad


def _sites(node, schema, resolver, parts: tuple = ()):
    """Walk a valid body alongside its schema and list the places one mutation can break."""
    schema, resolver = _resolve(schema, resolver)
    if isinstance(node, dict) and isinstance(schema, dict):
        optional_in_lenient = schema.get("x-lenient-optional", {})
        for name in schema.get("required", []):
            if name in node and name not in optional_in_lenient:
                yield _Site(parts + (name,), "remove", schema)
        for name, value in node.items():
            sub = schema.get("properties", {}).get(name)
            if sub is None:
                continue
            sub, sub_resolver = _resolve(sub, resolver)
            if _is_scalar(sub):
                yield from _scalar_sites(parts + (name,), sub, value)
            else:
                yield from _sites(value, sub, sub_resolver, parts + (name,))
    elif isinstance(node, list) and isinstance(schema, dict) and "items" in schema:
        for i, value in enumerate(node):
            yield from _sites(value, schema["items"], resolver, parts + (i,))


def _set(body, parts: tuple, value) -> None:
    target = body
    for part in parts[:-1]:
        target = target[part]
    if value is _REMOVE:
        del target[parts[-1]]
    else:
        target[parts[-1]] = value


_REMOVE = object()


def _type_rule(schema: dict) -> str:
    """The rule a wrong-typed value breaks: enum/const checks subsume the type check in the contracts."""
    return "schema.const" if "const" in schema else "schema.enum" if "enum" in schema else "schema.type"


@cache
def mutations(dialect: str, kind: str, account=None) -> st.SearchStrategy[tuple[dict, Defect]]:
    """``(body, Defect)``: a valid request with exactly one targeted defect that strict and lenient mode reject.

    Defects: a required field removed (not one lenient mode makes optional), a wrong JSON type
    where a scalar is expected (object/array/boolean; never a number/string swap, which lenient
    mode coerces), an enum value outside the table, a number outside its bounds, a string that
    breaks its pattern, or the other record kind's ``data_type``. With an ``account`` (see
    ``requests``) the bodies are signed, and one more defect is a wrong signature or token, which
    a server that checks accounts must reject (rule ``auth``).
    """
    _check_kind(dialect, kind, REQUEST_KINDS)
    schema = load_schema(f"{dialect}.{kind}")
    valid = _valid_requests(dialect, kind)

    @st.composite
    def draw_mutation(draw):
        body = sign(dialect, copy.deepcopy(draw(valid)), account)
        resolver = schema_registry().resolver(base_uri=schema["$id"])
        by_kind: dict[str, list[_Site]] = {}
        for found in _sites(body, schema, resolver):
            by_kind.setdefault(found.kind, []).append(found)
        if account is not None:
            by_kind["signature"] = [_Site((DIALECTS[dialect].auth_field,), "signature", {})]
        # The kind first, then the place: otherwise wrong-type defects, possible everywhere, crowd out the rest.
        site = draw(st.sampled_from(by_kind[draw(st.sampled_from(sorted(by_kind, key=_MUTATION_KINDS.index)))]))
        where, field = pointer(site.parts), display_path(site.parts)
        if site.kind == "signature":
            wrong = ("f" * 32 if body.get("MD5", "").lower() != "f" * 32 else "e" * 32) if dialect == "dm" else "not-the-token"
            _set(body, site.parts, wrong)
            return body, Defect(where, "auth", f"{'signed with the wrong token' if dialect == 'dm' else 'sent an unknown token'}")
        if site.kind == "remove":
            _set(body, site.parts, _REMOVE)
            return body, Defect(where, "schema.required", f"removed required field {field}")
        value = draw(st.sampled_from(site.candidates))
        if site.kind == "range":
            keyword, value = value
            rule, what = f"schema.{keyword}", f"{value!r}, beyond the {keyword} {site.schema[keyword]}"
        elif site.kind == "type":
            rule, what = _type_rule(site.schema), f"{value!r}, a value of the wrong JSON type"
        else:
            rule = {"enum": "schema.enum", "pattern": "schema.pattern", "const": "schema.const"}[site.kind]
            what = {"enum": f"{value!r}, not one of the allowed values",
                    "pattern": f"{value!r}, which breaks the pattern {site.schema.get('pattern')}",
                    "const": f"{value!r}, the data_type of the other record kind"}[site.kind]
        _set(body, site.parts, value)
        return body, Defect(where, rule, f"set {field} to {what}")

    return draw_mutation()
