"""The integration-quality report: what Tencent's integration engineer would have told you.

"上报物料后，联系联调的同学查看上报物料数据质量" — after reporting, the real onboarding asks an
engineer to look at the data. This module gives that verdict at once, from the store (what is
held) and the journal (what was sent and answered, in order). Each finding has a rule id (one of
:data:`RULES`), a severity, a count, up to five examples (journal sequence numbers and values)
and the sentence of the document it rests on. Section scores are defined in docs/report.md
("Scores") and computed by :func:`_scores`.

Items held in the store with no accepted report in the journal were preloaded (scenario
fixtures, ``--state``, or reports older than the journal keeps): they are judged as arriving at
report time, with no sequence number. Their actions are not in the journal, so the action and
request rules never see them; a ``--journal`` report sees only what was sent over HTTP.
"""

from __future__ import annotations

import contextlib

from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field

from mockcre.common import domain
from mockcre.common.text import plural, utc_date
from mockcre.contracts.violations import json_type
from mockcre.dialects import DIALECTS
from mockcre.model.store import Item, Store
from mockcre.pipeline.journal import is_cut

ERROR, WARNING, INFO = "error", "warning", "info"
SEVERITY_WEIGHT = {ERROR: 40, WARNING: 15, INFO: 0}
SECTIONS = ("items", "actions", "requests")
MAX_EXAMPLES = 5
LATE_AFTER = domain.DAY  # an action reported more than a day after it happened
FUTURE_AFTER = 300  # an action dated more than five minutes after it was received (clock skew allowance)
COARSE_SHARE = 0.5  # one tag on more than half the items of a pool
MIN_ITEMS_FOR_TAG_RULES = 10  # coarse: below this "more than half" is a handful (2 of 3 is chance; 6 of 10 a pattern)
MIN_ITEMS_FOR_FINE_TAGS = 20  # fine: in fewer items most tags are one-offs however good (news-feed's 10 articles)
UNCHANGED_RUN = 3  # an item reported this many times in a row with identical fields
COLD_SHARE = 0.5  # cold-start requests above this share are a warning, else information
#: Per dialect: the rule for scene ids actions copied that no request issued, and (dm only: a cre
#: answer's ids are the engine's, not the client's) for a requested scene no action carries.
SCENE_UNKNOWN_RULES = {"cre": "cre-scene-ids-unknown", "dm": "dm-scene-unrequested"}
SCENE_UNUSED_RULES = {"dm": "dm-scene-without-actions"}

DOC_TAGS = "tags 要有区分性…tags 不能太粗，否则没有区分性，特征作用不大；也不能太细，否则没有共性，曝光不充分，起不到冷启动的目的"
DOC_TRACE = "trace_id：跟踪点击和曝光的自定义会话 ID，为了保证点击跟曝光是同一个用户对同一个 item 的操作行为；强烈建议每次曝光分配一个 trace_id"
DOC_SCENE = "scene_id：推荐场景 ID，请求服务的场景 Id，需要跟行为上报时的 ID 一致"


@dataclass(frozen=True)
class Rule:
    id: str
    section: str
    severity: str
    title: str
    cites: str


#: Every finding the report can make, in report order within a section.
RULES: dict[str, Rule] = {r.id: r for r in (
    Rule("item-tags-missing", "items", WARNING, "items without tags", DOC_TAGS),
    Rule("item-tags-coarse", "items", WARNING, "a tag on more than half the items of a pool: too coarse to tell them apart",
         DOC_TAGS),
    Rule("item-tags-fine", "items", WARNING, "most tags of a pool used by a single item: too fine to share exposure", DOC_TAGS),
    Rule("item-category-missing", "items", WARNING, "items without categories (lv1class…/big_type…)",
         "默认 tags 字段需要上报：三级类目、品牌 / big_type：大类，需要类目的中文，不能使用 id"),
    Rule("item-describe-missing", "items", INFO, "items without describe text",
         "describe：物料的描述信息…使用 NLP 技术，进行分词、提取关键词，作为 item 的特征使用。例如物料属于资讯类，这里可以是文章内容"),
    Rule("item-global-pool-only", "items", INFO, 'items in no pool but the global pool "0"',
         "pool_id：物料池…获取推荐结果时，可以在指定 pool 中计算推荐结果"),
    Rule("item-off-shelf-on-arrival", "items", INFO, "items first reported off shelf", 'publish："2" - 下架 / 0：下架'),
    Rule("item-expired-on-arrival", "items", WARNING, "items already expired when reported",
         "expire_time：item 的过期时间，推荐结果会进行商品的过期过滤"),
    Rule("item-repeated-unchanged", "items", INFO, "the same item reported again and again unchanged",
         "相同的物料可以重复上报，字段信息以最后一次上报为准"),
    Rule("item-type-drift", "items", WARNING, "fields changing JSON type between reports of an item", "字段类型及含义如下表所示"),
    Rule("click-without-exposure", "actions", WARNING, "clicks with no exposure of the same item and trace_id before them",
         DOC_TRACE),
    Rule("exposure-without-trace", "actions", WARNING, "exposures without trace_id", DOC_TRACE),
    Rule("trace-shared-by-users", "actions", WARNING, "one trace_id used by several users", DOC_TRACE),
    Rule("action-unknown-item", "actions", WARNING, "actions on items never reported", "上报物料后…上报用户行为"),
    Rule("action-late", "actions", WARNING, "actions reported more than a day after they happened",
         "action_time：不能延迟太久，尽量实时上报，否则会影响推荐结果的准确性"),
    Rule("action-future", "actions", WARNING, "actions dated in the future", "action_time：行为发生的时间戳，秒级时间戳"),
    Rule("uid-shape", "actions", WARNING, "uids that do not look like their uid_type",
         "如果是 imei 号，则是15位数字字符串；如果是 IFA 号，则是8-4-4-4-12"),
    Rule("cre-scene-ids-unknown", "actions", ERROR,
         'test_id / rule_id of source "0" actions that no recommendation answer returned',
         "test_id/rule_id：推荐场景必须填写，此时该字段由推荐引擎的请求接口返回，业务上报时原样拷贝即可"),
    Rule("dm-scene-unrequested", "actions", ERROR, 'scene_id of source "tx" actions that no recommendation request used',
         DOC_SCENE),
    Rule("exposure-order-differs", "actions", INFO, "exposures in another order than the recommendation they followed",
         "data：推荐结果 (the answer is ranked best first)"),
    Rule("request-num-over-200", "requests", WARNING, "dm request_num over 200",
         "request_num：目前最多支持200个的 item 返回，如果返回个数更多，会影响性能，容易超时"),
    Rule("pool-empty", "requests", WARNING, "recommendations asked from pools that hold no items",
         "pool_id：需要展示哪个 pool_id 下的商品，要跟上报的 item 的 pool_id 一致"),
    Rule("cold-start-share", "requests", WARNING, "recommendation requests for empty or unknown users (cold start)",
         "user_id：若为空则当冷启动处理"),
    Rule("closed-loop-missing", "requests", WARNING, "recommendation requests of users who never report an action",
         "使用 Action 行为上报 API 上报用户行为…通过推荐结果 API 获取推荐结果"),
    Rule("dm-scene-without-actions", "requests", INFO, "recommendation requests of a scene_id that no action carries",
         DOC_SCENE),
)}


@dataclass
class Finding:
    rule: str
    section: str
    severity: str
    title: str
    cites: str
    count: int = 0
    examples: list = field(default_factory=list)

    def add(self, seq, value, n: int = 1) -> None:
        """``n`` more records hit; ``value`` (at journal entry ``seq``, None when no one entry is to blame) is an example."""
        self.count += n
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


class _Findings:
    """The findings of one analysis, each created from its :data:`RULES` entry on first use."""

    def __init__(self):
        self.found: dict[str, Finding] = {}

    def __call__(self, rule_id: str, severity: str | None = None) -> Finding:
        if rule_id not in self.found:
            r = RULES[rule_id]
            self.found[rule_id] = Finding(r.id, r.section, severity or r.severity, r.title, r.cites)
        return self.found[rule_id]


def replay(entries) -> Store:
    """A store rebuilt from journal entries: every report that was answered code 0, in order."""
    store = Store()
    for e in entries:
        if not (_accepted(e, "item") or _accepted(e, "action")):
            continue
        store.apply_report(tuple(e["partition"]), DIALECTS[e["dialect"]], e["kind"], e["body"], int(e.get("time", 0)))
    return store


def analyse(store: Store, entries: list, now: float, lock=contextlib.nullcontext()) -> Report:
    """The report of ``store`` and the journal ``entries``. ``lock`` (the live store's) is held only while
    the store is read: the journal, however long, is parsed before, and the report is put together after."""
    found = _Findings()
    entries = sorted(entries, key=lambda e: e.get("seq", 0))
    journal = [(e, _actions_of(e) if _accepted(e, "action") else None) for e in entries]  # actions parsed once
    reported = _item_reports(entries, found)
    with lock:
        _items_held(store, reported, now, found)
        _actions(journal, store, found)
        _requests(journal, store, found)
        totals = _totals(store, entries)
        charts = _charts(journal, store)
    order = list(RULES)
    findings = sorted(found.found.values(), key=lambda f: (SECTIONS.index(f.section), -SEVERITY_WEIGHT[f.severity],
                                                            order.index(f.rule)))
    return Report(findings, _scores(findings, totals), totals, charts)


def _accepted(e: dict, kind: str) -> bool:
    """A report of ``kind`` that passed the contract and was answered code 0 (so the store holds it), with its
    body kept whole by the journal (one over the journal's bound per entry cannot be read back)."""
    return e.get("kind") == kind and _readable(e) and str((e.get("reply") or {}).get("code")) == "0"


def _is_request(e: dict) -> bool:
    """A recommendation request that passed the contract (whatever its answer), its body kept whole."""
    return e.get("kind") in ("query", "recommend") and _readable(e)


def _readable(e: dict) -> bool:
    return bool(e.get("partition")) and not is_cut(e.get("body"))


def _ref(key: tuple, item_id: str) -> str:
    return f"{'/'.join(key)}:{item_id}"


# -- items -------------------------------------------------------------------------------------

def _item_reports(entries, found) -> dict:
    """Findings on the reports themselves; returns the seq of each item's last accepted report."""
    last: dict[tuple, dict] = {}
    run: Counter = Counter()  # identical reports in a row, after the first
    reported: dict[tuple, int] = {}
    for e in entries:
        if not _accepted(e, "item"):
            continue
        key, received = tuple(e["partition"]), int(e.get("time", 0))
        adapter = DIALECTS[e["dialect"]]
        for item in adapter.items(e["body"], received):
            where = (key, item.item_id)
            ref = _ref(key, item.item_id)
            fields = {k: v for k, v in item.record.items() if k not in adapter.report_fields}
            before = last.get(where)
            if before is None:
                _arrival(item, received, e["seq"], ref, "", found)
            else:
                run[where] = run[where] + 1 if fields == before else 0
                if run[where] == UNCHANGED_RUN - 1:
                    found("item-repeated-unchanged").add(e["seq"], f"{ref} reported {UNCHANGED_RUN} times unchanged")
                for name in sorted(set(before) & set(fields)):
                    was, became = json_type(before[name]), json_type(fields[name])
                    if was != became:
                        found("item-type-drift").add(e["seq"], f"{ref}.{name}: {was} → {became}")
            last[where] = fields
            reported[where] = e["seq"]
    return reported


def _arrival(item: Item, received: float, seq, ref: str, note: str, found) -> None:
    if not item.on_shelf:
        found("item-off-shelf-on-arrival").add(seq, ref + note)
    if item.expire_time <= received:
        found("item-expired-on-arrival").add(seq, f"{ref} expired {utc_date(item.expire_time)}{note}")


def _items_held(store: Store, reported: dict, now: float, found) -> None:
    for key, part in store.partitions.items():
        for item in part.items.values():
            ref = _ref(key, item.item_id)
            seq = reported.get((key, item.item_id))
            if seq is None:  # preloaded: it arrives, for the report, now
                _arrival(item, now, None, ref, " (preloaded, judged at report time)", found)
            if not item.tags:
                found("item-tags-missing").add(seq, ref)
            if not item.categories:
                found("item-category-missing").add(seq, ref)
            if not item.record.get("describe"):
                found("item-describe-missing").add(seq, ref)
            if not item.pools:
                found("item-global-pool-only").add(seq, ref)
        for pool in part.pool_names():
            _tag_granularity("/".join(key), pool, [part.items[i] for i in part.pool_members(pool) if i in part.items], found)


def _tag_granularity(where: str, pool: str, items: list, found) -> None:
    if len(items) < MIN_ITEMS_FOR_TAG_RULES:
        return
    use = Counter(tag for item in items for tag in item.tags)
    if not use:
        return
    tag, n = use.most_common(1)[0]
    if pool != domain.GLOBAL_POOL and n > COARSE_SHARE * len(items):
        found("item-tags-coarse").add(None, f"{where} pool {pool}: tag {tag!r} on {n} of {len(items)} items")
    singles = sum(1 for c in use.values() if c == 1)
    if len(items) >= MIN_ITEMS_FOR_FINE_TAGS and singles > len(use) / 2:
        found("item-tags-fine").add(None, f"{where} pool {pool}: {singles} of {len(use)} tags on one item only")


# -- actions -----------------------------------------------------------------------------------

def _actions(journal, store: Store, found) -> None:
    """``journal``: (entry, its actions or None when it is no accepted action report), in seq order."""
    exposed: set = set()  # (partition, trace, item)
    trace_users: dict = defaultdict(dict)  # (partition, trace) -> {uid: first seq}
    answers: dict = {}  # (partition, uid) -> ordered item ids of the last answer
    asked: dict = defaultdict(dict)  # partition -> {(name, value): [first seq, requests]} that requests used
    claimed: dict = defaultdict(dict)  # partition -> {(name, value): [first seq, actions]} that actions copied
    acted_scenes: dict = defaultdict(set)  # partition -> dm scene ids in any action
    for e, actions in journal:
        if _is_request(e):
            key, adapter, reply = tuple(e["partition"]), DIALECTS[e["dialect"]], e.get("reply") or {}
            for pair in adapter.issued_scene_ids(e["body"], reply):
                asked[key].setdefault(pair, [e["seq"], 0])[1] += 1
            if str(reply.get("code")) == "0":
                answers[(key, _request_uid(e))] = [item for ranked in adapter.ranked_lists(e["body"], reply).values()
                                                   for item, _ in ranked]
            continue
        if actions is None:
            continue
        key, received = tuple(e["partition"]), int(e.get("time", 0))
        part = store.peek(key)
        for v in e.get("violations", []):
            if v["rule"] == "uid-shape":
                found("uid-shape").add(e["seq"], v["message"].split(". Document")[0])
        for action in actions:
            ref = f"{action.uid} {action.action} {action.item}"
            if action.trace:
                trace_users[(key, action.trace)].setdefault(action.uid, e["seq"])
            if action.kind == "exposure":
                if action.trace:
                    exposed.add((key, action.trace, action.item))
                else:
                    found("exposure-without-trace").add(e["seq"], ref)
            elif action.kind == "click" and (key, action.trace, action.item) not in exposed:
                found("click-without-exposure").add(e["seq"], f"{ref} trace {action.trace!r}")
            if part is not None and action.item not in part.items:
                found("action-unknown-item").add(e["seq"], ref)
            if action.time is not None and received - action.time > LATE_AFTER:
                found("action-late").add(e["seq"], f"{ref}: {(received - action.time) / domain.DAY:.1f} days late")
            elif action.time is not None and action.time - received > FUTURE_AFTER:
                found("action-future").add(e["seq"], f"{ref} at {utc_date(action.time)}, received {utc_date(received)}")
            for pair in action.claims:
                claimed[key].setdefault(pair, [e["seq"], 0])[1] += 1
            if action.scene is not None:
                acted_scenes[key].add(action.scene)
        _exposure_order(e, key, actions, answers, found)
    for (key, trace), users in trace_users.items():
        if len(users) > 1:
            found("trace-shared-by-users").add(list(users.values())[1],
                                               f"{'/'.join(key)} trace {trace!r}: {', '.join(list(users)[:5])}")
    _scene_mismatch(asked, claimed, acted_scenes, found)


def _scene_mismatch(asked: dict, claimed: dict, acted_scenes: dict, found) -> None:
    """Scene ids that actions copied but no request made valid, and dm scenes requested that no action carries."""
    for key, claims in claimed.items():
        for (name, value), (seq, n) in claims.items():
            if (name, value) not in asked[key]:
                found(SCENE_UNKNOWN_RULES[key[0]]).add(seq, f"{'/'.join(key)} {name} {value!r} in {plural(n, 'action')}", n)
    for key, scenes in asked.items():
        rule_id = SCENE_UNUSED_RULES.get(key[0])
        for (name, value), (seq, n) in scenes.items():
            if rule_id and value not in acted_scenes[key]:
                found(rule_id).add(seq, f"{'/'.join(key)} {name} {value!r} in {plural(n, 'request')}", n)


def _request_uid(e) -> str:
    return DIALECTS[e["dialect"]].rec_request(e["body"]).uid or ""


def _actions_of(e) -> list:
    """The (action, item) pairs of an accepted action report, as the dialect reads them."""
    return DIALECTS[e["dialect"]].reported_actions(e["body"], None)  # an action's time stays unknown when not sent


def _exposure_order(e, key: tuple, actions: list, answers: dict, found) -> None:
    """An exposure record listing several items of the last answer to that user in another order (by position)."""
    records: dict = defaultdict(list)
    for a in actions:
        if a.kind == "exposure":
            records[a.record].append(a)
    for shown in records.values():
        answer = answers.get((key, shown[0].uid))
        if not answer:
            continue
        rank: dict = {}
        for i, item in enumerate(answer):
            rank.setdefault(item, i)
        order = [a.item for a in sorted(shown, key=lambda a: a.position) if a.item in rank]
        expected = sorted(order, key=rank.__getitem__)
        if len(order) >= 2 and order != expected:
            found("exposure-order-differs").add(e["seq"], f"{shown[0].uid}: shown {order[:5]}, answered {expected[:5]}")


# -- requests ----------------------------------------------------------------------------------

def _requests(journal, store: Store, found) -> None:
    known = _preloaded_users(store, journal)  # (partition, uid) with actions from before the journal
    askers: dict = defaultdict(dict)  # (partition, uid) -> [first seq, requests]
    cold, total, first_cold = 0, 0, None
    for e, actions in journal:
        if actions is not None:
            known |= {(tuple(e["partition"]), a.uid) for a in actions}
            continue
        if not _is_request(e):
            continue
        adapter, key, uid = DIALECTS[e["dialect"]], tuple(e["partition"]), _request_uid(e)
        total += 1
        if not uid or (key, uid) not in known:
            cold += 1
            first_cold = e["seq"] if first_cold is None else first_cold
        if uid:
            askers.setdefault((key, uid), [e["seq"], 0])[1] += 1
        num = adapter.beyond_limit(e["body"])
        if num is not None:
            found("request-num-over-200").add(e["seq"], f"request_num {num}")
        part = store.peek(key)
        for pool in _request_pools(e):
            if part is None or not any(True for _ in part.pool_members(pool)):
                found("pool-empty").add(e["seq"], f"{'/'.join(key)} pool {pool!r}")
    if cold:
        share = cold / total
        found("cold-start-share", WARNING if share > COLD_SHARE else INFO).add(
            first_cold, f"{cold} of {total} requests ({share:.0%})", cold)
    for (key, uid), (seq, n) in askers.items():
        part = store.peek(key)
        if part is None or uid not in part.users:
            found("closed-loop-missing").add(seq, f"{'/'.join(key)}: {uid} ({plural(n, 'request')})", n)


def _preloaded_users(store: Store, journal) -> set:
    """Users the store holds more actions of than the journal shows: they were known before it started."""
    journaled = Counter((tuple(e["partition"]), a.uid) for e, actions in journal if actions for a in actions)
    return {(key, uid) for key, part in store.partitions.items() for uid, user in part.users.items()
            if user.actions > journaled[(key, uid)]}


def _request_pools(e) -> list:
    """The pools a request asks from; none when it brings its own items to rank (pool_id is then ignored)."""
    req = DIALECTS[e["dialect"]].rec_request(e["body"])
    return [] if req.items is not None else req.pools


# -- scores and charts ---------------------------------------------------------------------------

def _totals(store: Store, entries) -> dict:
    return {
        "items": sum(len(p.items) for p in store.partitions.values()),
        "actions": sum(len(p.actions) for p in store.partitions.values()),
        "requests": sum(1 for e in entries if _is_request(e)),
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


def _charts(journal, store: Store) -> dict:
    """Actions per hour by type, and exposure → click rate per pool, for the dashboard's small charts."""
    per_hour: dict = defaultdict(Counter)
    shown: Counter = Counter()
    clicked: Counter = Counter()
    for e, actions in journal:
        for a in actions or ():
            if a.time is not None:
                per_hour[a.time // 3600 * 3600][a.kind] += 1
            if a.kind in ("exposure", "click"):
                (shown if a.kind == "exposure" else clicked)[(tuple(e["partition"]), a.item)] += 1
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
