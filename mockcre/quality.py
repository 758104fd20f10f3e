"""The integration-quality report: what Tencent's integration engineer would have told you.

"上报物料后，联系联调的同学查看上报物料数据质量" — after reporting, the real onboarding asks an
engineer to look at the data. This module gives that verdict at once, from the store (what is
held) and the journal (what was sent and answered, in order). Each finding has a rule id, a
severity, a count, up to five examples (journal sequence numbers and values) and the sentence
of the document it rests on. Section scores are defined in the README ("Data-quality report").
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from mockcre import domain
from mockcre.dialects import DIALECTS
from mockcre.dialects.base import split
from mockcre.store import Store

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_WEIGHT = {ERROR: 40, WARNING: 15, INFO: 0}
SECTIONS = ("items", "actions", "requests")
MAX_EXAMPLES = 5
LATE_AFTER = domain.DAY  # an action reported more than a day after it happened
COARSE_SHARE = 0.5  # one tag on more than half the items of a pool
MIN_ITEMS_FOR_TAG_RULES = 6

DOC_TAGS = "tags 要有区分性…tags 不能太粗，否则没有区分性，特征作用不大；也不能太细，否则没有共性，曝光不充分，起不到冷启动的目的"
DOC_TRACE = "trace_id：跟踪点击和曝光的自定义会话 ID，为了保证点击跟曝光是同一个用户对同一个 item 的操作行为；强烈建议每次曝光分配一个 trace_id"
DOC_SCENE = "scene_id：推荐场景 ID，请求服务的场景 Id，需要跟行为上报时的 ID 一致"
DOC_CRE_SCENE = "test_id/rule_id：推荐场景必须填写，此时该字段由推荐引擎的请求接口返回，业务上报时原样拷贝即可"


@dataclass
class Finding:
    rule: str
    section: str
    severity: str
    title: str
    cites: str
    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, seq, value) -> None:
        self.count += 1
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append({"seq": seq, "value": value})


@dataclass
class Report:
    findings: list
    scores: dict
    totals: dict
    charts: dict

    def to_dict(self) -> dict:
        return {"scores": self.scores, "totals": self.totals,
                "findings": [asdict(f) for f in self.findings if f.count], "charts": self.charts}

    @classmethod
    def from_dict(cls, data: dict) -> "Report":
        """A report read back from its JSON form (``mockcre report --url``)."""
        return cls([Finding(**f) for f in data["findings"]], data["scores"], data["totals"], data["charts"])

    def worst(self) -> str | None:
        present = {f.severity for f in self.findings if f.count}
        return next((s for s in (ERROR, WARNING, INFO) if s in present), None)


class _Rules:
    """The findings of one analysis, created on first use so every rule id is written once."""

    def __init__(self):
        self.found: dict[str, Finding] = {}

    def __call__(self, rule, section, severity, title, cites) -> Finding:
        if rule not in self.found:
            self.found[rule] = Finding(rule, section, severity, title, cites)
        return self.found[rule]


def replay(entries) -> Store:
    """A store rebuilt from journal entries: every report that was answered code 0, in order."""
    store = Store()
    for e in entries:
        reply = e.get("reply") or {}
        if e.get("kind") not in ("item", "action") or str(reply.get("code")) != "0" or not e.get("partition"):
            continue
        adapter = DIALECTS[e["dialect"]]
        part = store.partition(tuple(e["partition"]))
        now = int(e.get("time", 0))
        if e["kind"] == "item":
            for item in adapter.items(e["body"], now):
                part.upsert(item)
        else:
            for action, counter in adapter.actions(e["body"], now):
                part.add(action, counter)
    return store


def analyse(store: Store, entries: list, now: float) -> Report:
    rule = _Rules()
    entries = sorted(entries, key=lambda e: e.get("seq", 0))
    _items_held(store, now, rule)
    _item_reports(entries, now, rule)
    answers = _actions(entries, store, rule)
    _requests(entries, store, answers, rule)
    findings = sorted(rule.found.values(), key=lambda f: (SECTIONS.index(f.section), -SEVERITY_WEIGHT[f.severity], f.rule))
    totals = _totals(store, entries)
    return Report(findings, _scores(findings, totals), totals, _charts(entries, store))


# -- items -------------------------------------------------------------------------------------

def _items_held(store: Store, now: float, rule) -> None:
    for key, part in store.partitions.items():
        where = "/".join(key)
        for item in part.items.values():
            ref = f"{where}:{item.item_id}"
            if not item.tags:
                rule("item-tags-missing", "items", WARNING, "items without tags", DOC_TAGS).add(None, ref)
            if not item.categories:
                rule("item-category-missing", "items", WARNING, "items without categories (lv1class…/big_type…)",
                     "默认 tags 字段需要上报：三级类目、品牌 / big_type：大类，需要类目的中文").add(None, ref)
            if not item.record.get("describe"):
                rule("item-describe-missing", "items", INFO, "items without describe text",
                     "describe：物料的描述信息…使用 NLP 技术，进行分词、提取关键词，作为 item 的特征使用").add(None, ref)
            if not item.pools:
                rule("item-global-pool-only", "items", INFO, 'items in no pool but the global pool "0"',
                     "pool_id：物料池…获取推荐结果时，可以在指定 pool 中计算推荐结果").add(None, ref)
        for pool in part.pool_names():
            _tag_granularity(where, pool, [part.items[i] for i in part.pool_members(pool) if i in part.items], rule)


def _tag_granularity(where: str, pool: str, items: list, rule) -> None:
    if len(items) < MIN_ITEMS_FOR_TAG_RULES:
        return
    use = Counter(tag for item in items for tag in item.tags)
    if not use:
        return
    tag, n = use.most_common(1)[0]
    if pool != domain.GLOBAL_POOL and n > COARSE_SHARE * len(items):
        rule("item-tags-coarse", "items", WARNING, "a tag on more than half the items of a pool: too coarse to tell them apart",
             DOC_TAGS).add(None, f"{where} pool {pool}: tag {tag!r} on {n} of {len(items)} items")
    singles = sum(1 for c in use.values() if c == 1)
    if singles > len(use) / 2:
        rule("item-tags-fine", "items", WARNING, "most tags used by a single item: too fine to share exposure",
             DOC_TAGS).add(None, f"{where} pool {pool}: {singles} of {len(use)} tags on one item only")


def _item_reports(entries, now, rule) -> None:
    last: dict[tuple, dict] = {}
    unchanged: Counter = Counter()
    for e in entries:
        if e.get("kind") != "item" or str((e.get("reply") or {}).get("code")) != "0":
            continue
        records = e["body"]["data"] if e["dialect"] == "cre" else [e["body"]]
        received = int(e.get("time", now))
        for record in records:
            key = (tuple(e["partition"] or ()), str(record.get("item_id")))
            first = key not in last
            if first and _off_shelf(e["dialect"], record):
                rule("item-off-shelf-on-arrival", "items", INFO, "items first reported off shelf",
                     'publish："2" - 下架 / 0：下架').add(e["seq"], key[1])
            expire = _int(record.get("expire_time"))
            if first and expire is not None and expire <= received:
                rule("item-expired-on-arrival", "items", WARNING, "items already expired when reported",
                     "expire_time：item 的过期时间，推荐结果会进行商品的过期过滤").add(e["seq"], f"{key[1]} expired {expire}")
            before = last.get(key)
            if before is not None:
                if before == record:
                    unchanged[key] += 1
                    if unchanged[key] == 2:  # a third identical report
                        rule("item-repeated-unchanged", "items", INFO, "the same item reported again and again unchanged",
                             "相同的物料可以重复上报，字段信息以最后一次上报为准").add(e["seq"], key[1])
                for name in set(before) & set(record):
                    if type(before[name]) is not type(record[name]):
                        rule("item-type-drift", "items", WARNING, "fields changing JSON type between reports of an item",
                             "字段类型及含义如下表所示").add(e["seq"], f"{key[1]}.{name}: {type(before[name]).__name__} → "
                                                                   f"{type(record[name]).__name__}")
            last[key] = record


def _off_shelf(dialect: str, record: dict) -> bool:
    return str(record.get("publish", "1")) == ("2" if dialect == "cre" else "0")


# -- actions -----------------------------------------------------------------------------------

def _actions(entries, store: Store, rule) -> dict:
    """Action findings; returns the last recommendation answer per (partition, user) for the request rules."""
    exposures_by_trace: set = set()
    trace_users: dict = defaultdict(set)
    answers: dict = {}  # (partition, uid) -> ordered item ids of the last answer
    answered_scene_ids: dict = defaultdict(set)  # partition -> test_ids / abtags / dm scene ids that requests used
    action_scene_ids: dict = defaultdict(set)
    for e in entries:
        code = str((e.get("reply") or {}).get("code"))
        if e.get("kind") in ("query", "recommend") and code == "0":
            key = tuple(e.get("partition") or ())
            reply, body = e["reply"], e["body"]
            if e["dialect"] == "cre":
                answered_scene_ids[key] |= {("test_id", reply.get("test_id")), ("rule_id", reply.get("abtag"))}
                ids = [r["id"] for lst in (reply.get("rec") or {}).values() for r in lst]
                uid = body.get("user_id")
            else:
                answered_scene_ids[key].add(("scene_id", body.get("scene_id")))
                ids = [r["item"] for r in reply.get("data") or []]
                uid = body.get("uid")
            answers[(key, str(uid))] = ids
            continue
        if e.get("kind") != "action" or code != "0":
            continue
        key = tuple(e["partition"])
        part = store.peek(key)
        received = int(e.get("time", 0))
        for v in e.get("violations", []):
            if v["rule"] == "uid-shape":
                rule("uid-shape", "actions", WARNING, "uids that do not look like their uid_type",
                     "如果是 imei 号，则是15位数字字符串；如果是 IFA 号，则是8-4-4-4-12").add(e["seq"], v["message"].split(". Document")[0])
        for action in _actions_of(e):
            ref = f"{action['uid']} {action['action']} {action['item']}"
            if action["trace"]:
                trace_users[action["trace"]].add(action["uid"])
            if action["kind"] == "exposure":
                if action["trace"]:
                    exposures_by_trace.add((action["trace"], action["item"]))
                else:
                    rule("exposure-without-trace", "actions", WARNING, "exposures without trace_id", DOC_TRACE).add(e["seq"], ref)
            elif action["kind"] == "click" and (action["trace"], action["item"]) not in exposures_by_trace:
                rule("click-without-exposure", "actions", WARNING, "clicks with no exposure of the same item and trace_id before them",
                     DOC_TRACE).add(e["seq"], f"{ref} trace {action['trace']!r}")
            if part is not None and action["item"] not in part.items:
                rule("action-unknown-item", "actions", WARNING, "actions on items never reported",
                     "上报物料后…上报用户行为").add(e["seq"], ref)
            if action["time"] is not None and received - action["time"] > LATE_AFTER:
                rule("action-late", "actions", WARNING, "actions reported more than a day after they happened",
                     "action_time：不能延迟太久，尽量实时上报，否则会影响推荐结果的准确性").add(
                    e["seq"], f"{ref}: {(received - action['time']) / domain.DAY:.1f} days late")
            elif action["time"] is not None and action["time"] - received > 300:
                rule("action-future", "actions", WARNING, "actions dated in the future",
                     "action_time：行为发生的时间戳，秒级时间戳").add(e["seq"], f"{ref} at {action['time']}")
        action_scene_ids[key] |= _scene_ids_of(e)
        _exposure_order(e, answers, rule)
    for trace, users in trace_users.items():
        if len(users) > 1:
            rule("trace-shared-by-users", "actions", WARNING, "one trace_id used by several users", DOC_TRACE).add(
                None, f"{trace}: {', '.join(sorted(users)[:5])}")
    _scene_mismatch(answered_scene_ids, action_scene_ids, rule)
    return answers


def _actions_of(e) -> list[dict]:
    body = e["body"]
    out = []
    if e["dialect"] == "cre":
        for record in body.get("data", []):
            code = str(record.get("action_id"))
            kind = "exposure" if code == domain.CRE_EXPOSURE else "click" if code == domain.CRE_CLICK else "other"
            for entry in record.get("item_action", []):
                out.append({"uid": str(record.get("uid")), "action": code, "kind": kind, "item": str(entry.get("item_id")),
                            "trace": entry.get("trace_id"), "time": _int(record.get("oper_time"))})
    else:
        code = _int(body.get("action_type"))
        kind = "exposure" if code == domain.DM_EXPOSURE else "click" if code == domain.DM_CLICK else "other"
        for item in split(body.get("item_id"), ";"):
            out.append({"uid": str(body.get("uid")), "action": str(code), "kind": kind, "item": item,
                        "trace": body.get("trace_id"), "time": _int(body.get("action_time"))})
    return out


def _scene_ids_of(e) -> set:
    body = e["body"]
    if e["dialect"] == "cre":
        return {(name, r.get(name)) for r in body.get("data", []) if r.get("source") == "0"
                for name in ("test_id", "rule_id") if r.get(name)}
    return {("scene_id", body.get("scene_id"))}


def _scene_mismatch(answered, used, rule) -> None:
    for key in set(answered) | set(used):
        if key and key[0] == "cre":
            for name, value in sorted(used.get(key, set()) - answered.get(key, set())):
                rule("cre-scene-ids-unknown", "actions", WARNING, "test_id / rule_id values no recommendation answer returned",
                     DOC_CRE_SCENE).add(None, f"{name} {value!r}")
        elif key:
            for _, value in sorted(used.get(key, set()) - answered.get(key, set())):
                rule("dm-scene-unrequested", "actions", WARNING, "scene_id in actions that no recommendation request used",
                     DOC_SCENE).add(None, value)
            for _, value in sorted(answered.get(key, set()) - used.get(key, set())):
                rule("dm-scene-without-actions", "requests", INFO, "scene_id requested but never in an action",
                     DOC_SCENE).add(None, value)


def _exposure_order(e, answers, rule) -> None:
    """An exposure listing several items of the last answer to that user in another order."""
    exposures = [a for a in _actions_of(e) if a["kind"] == "exposure"]
    if len(exposures) < 2:
        return
    shown = [a["item"] for a in exposures]
    answer = answers.get((tuple(e["partition"]), exposures[0]["uid"]))
    if not answer:
        return
    rank = {item: i for i, item in enumerate(answer)}
    common = [i for i in shown if i in rank]
    if len(common) >= 2 and [rank[i] for i in common] != sorted(rank[i] for i in common):
        rule("exposure-order-differs", "actions", INFO, "exposures in another order than the recommendation they followed",
             "data：推荐结果 (the answer is ranked best first)").add(e["seq"], f"shown {common[:5]} vs answered order")


# -- requests ----------------------------------------------------------------------------------

def _requests(entries, store: Store, answers, rule) -> None:
    asked_by: dict = defaultdict(set)  # partition -> users who asked
    acted: dict = defaultdict(set)
    cold = total = 0
    for e in entries:
        if e.get("kind") == "action" and e.get("partition"):
            acted[tuple(e["partition"])] |= {a["uid"] for a in _actions_of(e)}
        if e.get("kind") not in ("query", "recommend") or not e.get("partition"):
            continue
        body, key = e["body"], tuple(e["partition"])
        total += 1
        uid = body.get("user_id" if e["dialect"] == "cre" else "uid")
        part = store.peek(key)
        if not uid or part is None or str(uid) not in part.users:
            cold += 1
        if uid:
            asked_by[key].add(str(uid))
        num = _int(body.get("request_num"))
        if e["dialect"] == "dm" and num is not None and num > domain.DM_MAX_REQUEST_NUM:
            rule("request-num-over-200", "requests", WARNING, "dm request_num over 200",
                 "request_num：目前最多支持200个的 item 返回，如果返回个数更多，会影响性能，容易超时").add(e["seq"], num)
        pools = split(body.get("pool_id"), ",，" if e["dialect"] == "cre" else ";") or [domain.GLOBAL_POOL]
        for pool in pools:
            if part is None or not any(True for _ in part.pool_members(pool)):
                rule("pool-empty", "requests", WARNING, "recommendations asked from pools that hold no items",
                     "pool_id：需要展示哪个 pool_id 下的商品，要跟上报的 item 的 pool_id 一致").add(e["seq"], pool)
    if total:
        share = cold / total
        finding = rule("cold-start-share", "requests", WARNING if share > 0.5 else INFO,
                       "share of recommendation requests for unknown or empty users (cold start)",
                       "user_id：若为空则当冷启动处理")
        finding.count = cold
        finding.examples = [{"seq": None, "value": f"{cold} of {total} requests ({share:.0%})"}]
    for key, users in asked_by.items():
        for uid in sorted(users - acted.get(key, set())):
            rule("closed-loop-missing", "requests", WARNING, "users who get recommendations but never report actions",
                 "使用 Action 行为上报 API 上报用户行为…通过推荐结果 API 获取推荐结果").add(None, f"{'/'.join(key)}: {uid}")


# -- scores and charts ---------------------------------------------------------------------------

def _totals(store: Store, entries) -> dict:
    return {
        "items": sum(len(p.items) for p in store.partitions.values()),
        "actions": sum(len(p.actions) for p in store.partitions.values()),
        "requests": sum(1 for e in entries if e.get("kind") in ("query", "recommend")),
        "journal_entries": len(entries),
    }


def _scores(findings, totals) -> dict:
    """Per section: 100 minus, for each finding, its severity weight times the share of records it hits."""
    scores = {}
    for section in SECTIONS:
        base = max(totals[section], 1)
        penalty = sum(SEVERITY_WEIGHT[f.severity] * min(1.0, f.count / base) for f in findings if f.section == section and f.count)
        scores[section] = None if not totals[section] else round(max(0.0, 100.0 - penalty), 1)
    known = [s for s in scores.values() if s is not None]
    scores["overall"] = round(sum(known) / len(known), 1) if known else None
    return scores


def _charts(entries, store: Store) -> dict:
    """Actions per hour by type, and exposure → click rate per pool, for the dashboard's small charts."""
    per_hour: dict = defaultdict(Counter)
    shown: Counter = Counter()
    clicked: Counter = Counter()
    for e in entries:
        if e.get("kind") != "action" or str((e.get("reply") or {}).get("code")) != "0":
            continue
        for a in _actions_of(e):
            if a["time"] is not None:
                per_hour[a["time"] // 3600 * 3600][a["kind"]] += 1
            if a["kind"] in ("exposure", "click"):
                (shown if a["kind"] == "exposure" else clicked)[(tuple(e["partition"]), a["item"])] += 1
    ctr: dict = {}
    for key, part in store.partitions.items():
        for pool in part.pool_names():
            if pool == domain.GLOBAL_POOL:
                continue
            members = part.pool_members(pool)
            exposed = sum(shown[(key, i)] for i in members)
            if exposed:
                ctr[f"{'/'.join(key)} {pool}"] = round(sum(clicked[(key, i)] for i in members) / exposed, 4)
    return {"actions_per_hour": {str(k): dict(v) for k, v in sorted(per_hour.items())},
            "exposures": sum(shown.values()), "clicks": sum(clicked.values()), "ctr_by_pool": ctr}


def _int(value):
    try:
        return int(str(value)) if value is not None and not isinstance(value, bool) else None
    except ValueError:
        return None
