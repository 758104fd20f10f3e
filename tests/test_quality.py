"""The data-quality report (issue 7), read from ``GET /__admin/report`` of real servers.

Every rule of ``mockcre.tools.quality.RULES`` has a case: a short integration over HTTP, clean except
for one knob. With the knob turned (``bad=True``) the report holds exactly that finding (rule
id, severity, count, an example naming the journal seq and the value, the document cited) and
the section scores follow the formula of docs/report.md; with the knob left alone (``bad=False``) the same
data raises nothing. Then the bundled scenarios: a realistic shop session in both dialects is
clean apart from the off-shelf items shop.yaml plants on purpose, and news-feed shows exactly
its two expired articles.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import requests

from mockcre.common.text import utc_date
from mockcre.tools import quality
from mockcre.common.resources import scenarios_dir

from httpkit import (DAY, NOW, TIMEOUT, Client, cre_item, cre_query, cre_upload, dm_action, dm_item, dm_recommend,  # noqa: F401
                     serve)

T = NOW  # the servers' fixed clock
TYPES = ["衬衫", "夹克", "休闲裤", "针织衫"]
BRANDS = ["优衣库", "太平鸟", "李宁"]
WEIGHT = {"error": 40, "warning": 15, "info": 0}  # docs/report.md's severity weights, spelled out again on purpose


@dataclass
class Answer:
    ids: list
    trace: str  # cre: the answer's trace_id; dm: the trace the client assigns to this page
    test_id: str | None = None
    rule_id: str | None = None
    scene: str | None = None


class Integration:
    """A business integrating with one fresh server over HTTP; ``seq`` is the journal seq of the last POST.

    Users are made known by browsing (an exposure and a click outside any recommendation: cre
    source "1", dm source "bus" in scene "search") before they ask for recommendations, so
    requests are not cold starts; every exposure carries a trace, clicks follow exposures.
    """

    def __init__(self, client: Client):
        self.c = client
        self.seq = 0  # the journal numbers every POST of a fresh server from 1

    def post(self, path: str, body: dict, ok: bool = True) -> dict:
        reply = self.c.ok(path, body) if ok else self.c.call(path, body)
        self.seq += 1
        return reply

    def report(self, **params) -> dict:
        resp = self.c.session.get(self.c.url + "/__admin/report", params=params, timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text[:300]
        return resp.json()

    # -- cre -------------------------------------------------------------------------------

    @staticmethod
    def cre_item(n: int, drop=(), pool="p1", **fields) -> dict:
        fields = {"tags": {TYPES[n % 4]: "1", BRANDS[n % 3]: "0.8"}, "lv1class": "服装", "lv2class": "男装",
                  "lv3class": TYPES[n % 4], "describe": f"{BRANDS[n % 3]} {TYPES[n % 4]}", "item_time": str(T - DAY),
                  "expire_time": str(T + 365 * DAY), **fields}
        record = cre_item(f"c{n}", pool_id=pool, **fields)
        for name in drop:
            record.pop(name)
        return record

    def cre_items(self, *records) -> int:
        self.post("/upload", cre_upload("1", list(records)))
        return self.seq

    def cre_catalogue(self, n: int = 4) -> int:
        return self.cre_items(*(self.cre_item(i) for i in range(n)))

    @staticmethod
    def cre_record(uid, action_id, entries, ans: Answer | None = None, oper_time=T - 30, **fields) -> dict:
        """One action record; ``entries`` are item_action objects; ``ans`` supplies test_id/rule_id (source "0")."""
        record = {"uid_type": "5", "uid": uid, "oper_time": str(oper_time), "source": "0" if ans else "1",
                  "action_id": action_id, "item_action": entries}
        if ans:
            record.update(test_id=ans.test_id, rule_id=ans.rule_id)
        record.update(fields)
        return record

    def cre_actions(self, *records) -> int:
        self.post("/upload", cre_upload("2", list(records)))
        return self.seq

    def cre_browse(self, uid, items=("c0",)) -> int:
        trace = f"browse-{uid}"
        self.cre_actions(self.cre_record(uid, "101", [{"item_id": i, "trace_id": trace} for i in items]))
        return self.cre_actions(self.cre_record(uid, "102", [{"item_id": items[0], "trace_id": trace}]))

    def cre_recommend(self, uid, pool="p1", num=3) -> Answer:
        reply = self.post("/query", cre_query(user_id=uid, pool_id=pool, request_num=num))
        return Answer([e["id"] for e in reply["rec"][pool]], reply["trace_id"], reply["test_id"], reply["abtag"])

    def cre_expose(self, uid, ans: Answer, ids=None, **fields) -> int:
        ids = ans.ids if ids is None else ids
        entries = [{"item_id": i, "position_id": str(p), "trace_id": ans.trace} for p, i in enumerate(ids)]
        return self.cre_actions(self.cre_record(uid, "101", entries, ans, **fields))

    def cre_act(self, uid, action_id, item, ans: Answer, trace=None, **fields) -> int:
        return self.cre_actions(self.cre_record(uid, action_id, [{"item_id": item, "trace_id": trace or ans.trace}], ans,
                                                **fields))

    def cre_loop(self, uid, browse=True) -> Answer:
        """Browse, ask, show the answer in order, click the first item, buy it."""
        if browse:
            self.cre_browse(uid)
        ans = self.cre_recommend(uid)
        self.cre_expose(uid, ans)
        self.cre_act(uid, "102", ans.ids[0], ans)
        self.cre_act(uid, "123", ans.ids[0], ans)
        return ans

    # -- dm --------------------------------------------------------------------------------

    @staticmethod
    def dm_item(n: int, drop=(), **fields) -> dict:
        fields = {"pool_id": "p1", "big_type": "服装", "middle_type": "男装", "small_type": TYPES[n % 4],
                  "describe": f"{BRANDS[n % 3]} {TYPES[n % 4]}", "item_time": str(T - DAY), "expire_time": T + 30 * DAY,
                  "score": 0.5, **fields}
        body = dm_item(f"d{n}", tags=[TYPES[n % 4], BRANDS[n % 3]], **fields)
        for name in drop:
            body.pop(name)
        return body

    def dm_items(self, *bodies) -> int:
        for body in bodies:
            self.post("/dm/data", body)
        return self.seq

    def dm_catalogue(self, n: int = 4) -> int:
        return self.dm_items(*(self.dm_item(i) for i in range(n)))

    def dm_act(self, uid, action_type, ids, trace, scene="1001", source="tx", **fields) -> int:
        self.post("/dm/data", dm_action(uid, action_type, ids, trace_id=trace, scene_id=scene, source=source,
                                        action_time=str(fields.pop("action_time", T - 30)), **fields))
        return self.seq

    def dm_browse(self, uid) -> int:
        self.dm_act(uid, 1, ["d0"], f"browse-{uid}", scene="search", source="bus")
        return self.dm_act(uid, 2, ["d0"], f"browse-{uid}", scene="search", source="bus")

    def dm_recommend(self, uid, scene="1001", num=3, ok=True, **fields) -> Answer:
        reply = self.post("/dm/service", dm_recommend(uid=uid, pool_id=fields.pop("pool_id", "p1"), scene_id=scene,
                                                      request_num=num, **fields), ok=ok)
        return Answer([e["item"] for e in reply.get("data", [])], f"page-{uid}-{self.seq}", scene=scene)

    def dm_expose(self, uid, ans: Answer, ids=None) -> int:
        return self.dm_act(uid, 1, ans.ids if ids is None else ids, ans.trace, scene=ans.scene)

    def dm_loop(self, uid, browse=True) -> Answer:
        if browse:
            self.dm_browse(uid)
        ans = self.dm_recommend(uid)
        self.dm_expose(uid, ans)
        self.dm_act(uid, 2, ans.ids[:1], ans.trace)
        self.dm_act(uid, 3, ans.ids[:1], ans.trace)
        return ans


@dataclass
class Plant:
    """What a planted case expects: the count, and one example's seq (None: no one entry to blame) and value."""

    count: int
    seq: int | None
    value: str
    also: frozenset = frozenset()  # info findings the same data raises unavoidably, planted or not


CASES: dict[str, tuple] = {}  # "rule-id" or "rule-id/variant" -> (rule id, case function)


def case(rule_id: str, variant: str = ""):
    def register(fn):
        CASES[f"{rule_id}/{variant}" if variant else rule_id] = (rule_id, fn)
        return fn

    return register


# -- items -------------------------------------------------------------------------------------

@case("item-tags-missing")
def _tags_missing(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue(4)
    seq = s.cre_items(s.cre_item(4, drop=["tags"] if bad else []))
    return Plant(1, seq, "cre/prod:c4")


@case("item-category-missing")
def _category_missing(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue(4)
    seq = s.dm_items(s.dm_item(4, drop=["big_type", "middle_type", "small_type"] if bad else []))
    return Plant(1, seq, "dm/b_demo:d4")


@case("item-describe-missing")
def _describe_missing(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue(4)
    seq = s.cre_items(s.cre_item(4, drop=["describe"] if bad else []))
    return Plant(1, seq, "cre/prod:c4")


@case("item-global-pool-only")
def _global_pool_only(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue(4)
    seq = s.dm_items(s.dm_item(4, drop=["pool_id"] if bad else []))  # cre requires pool_id, and "0" is rejected
    return Plant(1, seq, "dm/b_demo:d4")


def _tagged_pool(s: Integration, tags_of) -> None:
    """20 items (twice the minimum for tag statistics) in pool p1 of cre/prod, tagged by ``tags_of(n)``."""
    s.cre_items(*(s.cre_item(n, tags={t: "1" for t in tags_of(n)}) for n in range(20)))


@case("item-tags-coarse")
def _tags_coarse(s: Integration, bad: bool) -> Plant:
    # a type (5 items each) and a brand (6 or 7 each); planted: "爆款" on 11 of the 20
    _tagged_pool(s, lambda n: [TYPES[n % 4], BRANDS[n % 3]] + (["爆款"] if bad and n < 11 else []))
    return Plant(1, None, "cre/prod pool p1: tag '爆款' on 11 of 20 items")


@case("item-tags-fine")
def _tags_fine(s: Integration, bad: bool) -> Plant:
    # planted: besides its type, each item has a tag of its own, so 20 of 24 tags are used once
    _tagged_pool(s, lambda n: [TYPES[n % 4]] + ([f"款式{n}"] if bad else [BRANDS[n % 3]]))
    return Plant(2, None, "cre/prod pool p1: 20 of 24 tags on one item only")  # pool p1 and the global pool "0"


@case("item-off-shelf-on-arrival")
def _off_shelf(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue(4)
    seq = s.cre_items(s.cre_item(4, publish="2" if bad else "1"))
    s.cre_items(s.cre_item(4, publish="2"))  # taken off shelf later: fine either way
    return Plant(1, seq, "cre/prod:c4")


@case("item-expired-on-arrival")
def _expired(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue(4)
    seq = s.cre_items(s.cre_item(4, item_time=str(T - 90 * DAY), expire_time=str(T - DAY if bad else T + DAY)))
    return Plant(1, seq, f"cre/prod:c4 expired {utc_date(T - DAY)}")


@case("item-repeated-unchanged")
def _repeated(s: Integration, bad: bool) -> Plant:
    # dm: each report is a new request (request_id, MD5) of the same item fields
    s.dm_catalogue(4)
    scores = [0.5, 0.5, 0.5] if bad else [0.5, 0.5, 0.6, 0.6]  # clean: never three identical reports in a row
    seq = s.dm_items(*(s.dm_item(4, score=score) for score in scores))
    return Plant(1, seq, "dm/b_demo:d4 reported 3 times unchanged")


@case("item-type-drift")
def _type_drift(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue(4)
    s.dm_items(s.dm_item(4, score=0.5))
    seq = s.dm_items(s.dm_item(4, score="0.5" if bad else 1))  # 0.5 then 1: both JSON numbers
    return Plant(1, seq, "dm/b_demo:d4.score: number → string")


# -- actions -----------------------------------------------------------------------------------

@case("click-without-exposure", "cre")
def _click_cre(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    s.cre_expose("u1", ans)
    seq = s.cre_act("u1", "102", ans.ids[1], ans, trace="another-trace" if bad else None)
    return Plant(1, seq, f"u1 102 {ans.ids[1]} trace 'another-trace'")


@case("click-without-exposure", "dm")
def _click_dm(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue()
    s.dm_browse("u1")
    ans = s.dm_recommend("u1")
    s.dm_expose("u1", ans)
    seq = s.dm_act("u1", 2, ans.ids[:1], "another-trace" if bad else ans.trace)
    return Plant(1, seq, f"u1 2 {ans.ids[0]} trace 'another-trace'")


@case("exposure-without-trace")
def _exposure_without_trace(s: Integration, bad: bool) -> Plant:
    # cre only: dm requires trace_id, so an exposure without one is rejected there
    s.cre_catalogue()
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    entries = [{"item_id": i, "position_id": str(p), "trace_id": ans.trace} for p, i in enumerate(ans.ids)]
    if bad:
        del entries[2]["trace_id"]
    seq = s.cre_actions(s.cre_record("u1", "101", entries, ans))
    return Plant(1, seq, f"u1 101 {ans.ids[2]}")


@case("trace-shared-by-users")
def _trace_shared(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    first = s.cre_loop("u1")
    s.cre_browse("u2")
    ans = s.cre_recommend("u2")
    if bad:
        ans.trace = first.trace
    seq = s.cre_expose("u2", ans)
    return Plant(1, seq, f"cre/prod trace '{first.trace}': u1, u2")


@case("action-unknown-item")
def _unknown_item(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    seq = s.cre_browse("u1", items=("c0", "ghost" if bad else "c1"))
    return Plant(1, seq - 1, "u1 101 ghost")


@case("action-late")
def _late(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    s.cre_expose("u1", ans)
    seq = s.cre_act("u1", "102", ans.ids[0], ans, oper_time=T - 2 * DAY if bad else T - 3600)
    return Plant(1, seq, f"u1 102 {ans.ids[0]}: 2.0 days late")


@case("action-future")
def _future(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue()
    s.dm_browse("u1")
    ans = s.dm_recommend("u1")
    s.dm_expose("u1", ans)
    seq = s.dm_act("u1", 2, ans.ids[:1], ans.trace, action_time=T + 3600 if bad else T + 60)  # 5 minutes of skew allowed
    return Plant(1, seq, f"u1 2 {ans.ids[0]} at {utc_date(T + 3600)}, received {utc_date(T)}")


@case("uid-shape")
def _uid_shape(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    s.cre_expose("u1", ans)
    seq = s.cre_act("u1", "102", ans.ids[0], ans, uid_type="3" if bad else "5")  # 3: IMEI/IDFA, and "u1" is neither
    return Plant(1, seq, "data[0].uid: uid_type 3 wants an IMEI")


@case("cre-scene-ids-unknown")
def _cre_scene(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    seq = s.cre_expose("u1", ans, rule_id="200723" if bad else ans.rule_id)  # the document's example, not the answer's abtag
    s.cre_act("u1", "102", ans.ids[0], ans)
    return Plant(3, seq, "cre/prod rule_id '200723' in 3 actions")  # the three items of the exposure


@case("dm-scene-unrequested")
def _dm_scene(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue()
    s.dm_browse("u1")
    ans = s.dm_recommend("u1")
    seq = s.dm_act("u1", 1, ans.ids, ans.trace, scene="9999" if bad else "1001")
    s.dm_act("u1", 2, ans.ids[:1], ans.trace)
    return Plant(3, seq, "dm/b_demo scene_id '9999' in 3 actions")


@case("exposure-order-differs", "cre")
def _order_cre(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    shown = list(reversed(ans.ids)) if bad else ans.ids
    seq = s.cre_expose("u1", ans, ids=shown)
    return Plant(1, seq, f"u1: shown {list(reversed(ans.ids))}, answered {ans.ids}")


@case("exposure-order-differs", "dm")
def _order_dm(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue()
    s.dm_browse("u1")
    ans = s.dm_recommend("u1")
    shown = [ans.ids[1], ans.ids[0], ans.ids[2]] if bad else ans.ids
    seq = s.dm_expose("u1", ans, ids=shown)
    return Plant(1, seq, f"u1: shown {shown}, answered {ans.ids}")


# -- requests ----------------------------------------------------------------------------------

@case("request-num-over-200")
def _request_num(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue()
    s.dm_loop("u1")
    s.dm_recommend("u1", num=300 if bad else 200)
    return Plant(1, s.seq, "request_num 300")


@case("pool-empty")
def _pool_empty(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_loop("u1")
    s.cre_recommend("u1", pool="nothing" if bad else "p1")
    return Plant(1, s.seq, "cre/prod pool 'nothing'")


@case("cold-start-share")
def _cold_start(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_loop("u1")  # a known user's request
    first = s.seq + 1
    for _ in range(3):  # planted: three of four requests for nobody (empty user_id: cold start)
        s.cre_recommend("" if bad else "u1")
    return Plant(3, first, "3 of 4 requests (75%)")


@case("closed-loop-missing")
def _closed_loop(s: Integration, bad: bool) -> Plant:
    s.cre_catalogue()
    s.cre_loop("u1")
    s.cre_recommend("u1")
    s.cre_recommend("u1")
    ans = s.cre_recommend("u9")  # u9 asks (a cold start: one request of four, information only)
    if not bad:
        s.cre_expose("u9", ans)  # and shows the answer, closing the loop
    return Plant(1, s.seq if bad else None, "cre/prod: u9 (1 request)", also=frozenset({"cold-start-share"}))


@case("dm-scene-without-actions")
def _scene_without_actions(s: Integration, bad: bool) -> Plant:
    s.dm_catalogue()
    s.dm_loop("u1")
    ans = s.dm_recommend("u1", scene="banner")
    seq = s.seq
    if not bad:
        s.dm_expose("u1", ans)
    return Plant(1, seq, "dm/b_demo scene_id 'banner' in 1 request")


# -- the tests ---------------------------------------------------------------------------------

def findings_of(report: dict) -> dict:
    return {f["rule"]: f for f in report["findings"]}


def formula(report: dict) -> dict:
    """docs/report.md's scores, recomputed from the report's own findings and totals."""
    scores = {}
    for section in quality.SECTIONS:
        total = report["totals"][section]
        penalty = sum(WEIGHT[f["severity"]] * min(1.0, f["count"] / total)
                      for f in report["findings"] if f["section"] == section) if total else 0
        scores[section] = round(max(0.0, 100 - penalty), 1) if total else None
    known = [v for v in scores.values() if v is not None]
    scores["overall"] = round(sum(known) / len(known), 1) if known else None
    return scores


def test_every_rule_has_a_planted_case():
    assert {rule for rule, _ in CASES.values()} == set(quality.RULES)


@pytest.mark.parametrize("name", list(CASES))
def test_planted_problem_raises_exactly_its_finding(serve, name):  # noqa: F811
    rule_id, plant_it = CASES[name]
    s = Integration(serve())
    plant = plant_it(s, True)
    report = s.report()
    found = findings_of(report)
    assert set(found) == {rule_id} | plant.also, [(f["rule"], f["examples"]) for f in report["findings"]]
    f = found[rule_id]
    rule = quality.RULES[rule_id]
    assert (f["section"], f["severity"], f["count"]) == (rule.section, rule.severity, plant.count), f
    assert f["cites"] == rule.cites and f["cites"].strip()
    assert any(ex["seq"] == plant.seq and plant.value in str(ex["value"]) for ex in f["examples"]), f["examples"]
    assert report["scores"] == formula(report)
    if WEIGHT[rule.severity]:
        assert report["scores"][rule.section] < 100
    assert all(report["scores"][other] in (100.0, None) for other in quality.SECTIONS if other != rule.section)


@pytest.mark.parametrize("name", list(CASES))
def test_the_same_data_without_the_problem_is_clean(serve, name):  # noqa: F811
    rule_id, plant_it = CASES[name]
    s = Integration(serve())
    plant = plant_it(s, False)
    report = s.report()
    assert set(findings_of(report)) <= plant.also, [(f["rule"], f["examples"]) for f in report["findings"]]
    assert {f["severity"] for f in report["findings"]} <= {"info"}
    assert all(report["scores"][k] in (100.0, None) for k in report["scores"])


def test_a_clean_integration_in_both_dialects_scores_100_everywhere(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_catalogue(6)
    s.dm_catalogue(6)
    for uid in ("u1", "u2", "u3"):
        s.cre_loop(uid)
        s.dm_loop(uid)
    report = s.report()
    assert report["findings"] == []
    assert report["scores"] == {"items": 100.0, "actions": 100.0, "requests": 100.0, "overall": 100.0}
    assert report["totals"] == {"items": 12, "actions": 3 * 2 * (2 + 3 + 1 + 1), "requests": 6, "journal_entries": s.seq}
    assert report["charts"]["exposures"] == 3 * 2 * (1 + 3) and report["charts"]["clicks"] == 3 * 2 * 2


def test_scores_fall_by_weight_times_share_of_the_section(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_items(*(s.cre_item(n) for n in range(4)), s.cre_item(4, drop=["tags"]))  # a warning on 1 of 5 items
    s.cre_browse("u1")  # 2 actions
    ans = s.cre_recommend("u1")
    s.cre_expose("u1", ans, rule_id="200723")  # an error on 3 of the 6 actions
    s.cre_act("u1", "102", ans.ids[0], ans)
    report = s.report()
    assert report["totals"]["items"] == 5 and report["totals"]["actions"] == 6 and report["totals"]["requests"] == 1
    assert report["scores"] == {"items": 100 - 15 * 1 / 5,  # 97.0
                                "actions": 100 - 40 * 3 / 6,  # 80.0
                                "requests": 100.0,
                                "overall": round((97.0 + 80.0 + 100.0) / 3, 1)}  # 92.3


def test_a_section_with_nothing_in_it_has_no_score_and_a_penalty_stops_at_zero(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_items(*(s.cre_item(n, drop=["tags", "lv1class", "lv2class", "lv3class"]) for n in range(3)))
    report = s.report()
    # two warnings on every item: 100 - 15 - 15; no actions or requests: no score, and overall is the items'
    assert report["scores"] == {"items": 70.0, "actions": None, "requests": None, "overall": 70.0}
    s.cre_recommend("nobody", pool="nothing")
    scores = s.report()["scores"]
    # pool-empty, closed-loop-missing (warnings) and a 100 % cold-start share (a warning): each on 1 of 1 request
    assert scores["requests"] == 100 - 3 * 15 and scores["overall"] == round((70 + 55) / 2, 1)


def test_cold_start_share_is_information_up_to_half_of_the_requests(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_catalogue()
    s.cre_loop("u1")
    s.cre_recommend("")  # one of two requests
    (f,) = s.report()["findings"]
    assert (f["rule"], f["severity"], f["count"]) == ("cold-start-share", "info", 1)
    assert f["examples"] == [{"seq": s.seq, "value": "1 of 2 requests (50%)"}]
    s.cre_recommend("")  # two of three: now a warning
    (f,) = s.report()["findings"]
    assert (f["severity"], f["count"]) == ("warning", 2)


def test_a_request_is_cold_when_its_user_had_no_action_yet(serve):  # noqa: F811
    """Knowledge is judged in journal order: a user's first request before any action is a cold start."""
    s = Integration(serve())
    s.cre_catalogue()
    s.cre_loop("u1", browse=False)  # asks first (cold), then shows, clicks, buys
    s.cre_recommend("u1")
    s.cre_recommend("u1")
    (f,) = s.report()["findings"]
    assert (f["rule"], f["severity"], f["count"]) == ("cold-start-share", "info", 1)
    assert f["examples"][0]["seq"] == 2  # the query right after the catalogue


def test_a_cre_query_that_brings_its_own_items_asks_no_pool(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_catalogue()
    s.cre_browse("u1")
    s.post("/query", cre_query(user_id="u1", pool_id="nothing", pool={"item_type": "1", "items": ["c0", "c1"]}))
    assert s.report()["findings"] == []


def test_exposures_of_two_users_in_one_upload_are_each_checked_against_their_own_answer(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_catalogue()
    s.cre_browse("u1")
    s.cre_browse("u2")
    a1, a2 = s.cre_recommend("u1"), s.cre_recommend("u2", num=2)
    record = lambda uid, ans, ids: s.cre_record(  # noqa: E731
        uid, "101", [{"item_id": i, "position_id": str(p), "trace_id": ans.trace} for p, i in enumerate(ids)], ans)
    s.cre_actions(record("u1", a1, a1.ids), record("u2", a2, list(reversed(a2.ids))))
    (f,) = s.report()["findings"]
    assert (f["rule"], f["count"]) == ("exposure-order-differs", 1) and f["examples"][0]["value"].startswith("u2:")


def test_exposure_order_follows_position_id_not_list_order(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_catalogue()
    s.cre_browse("u1")
    ans = s.cre_recommend("u1")
    entries = [{"item_id": i, "position_id": str(p), "trace_id": ans.trace} for p, i in enumerate(ans.ids)]
    s.cre_actions(s.cre_record("u1", "101", list(reversed(entries)), ans))  # listed backwards, positioned right
    assert s.report()["findings"] == []


def test_rejected_requests_count_for_nothing(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_catalogue()
    s.post("/upload", cre_upload("1", [s.cre_item(9, drop=["tags", "pool_id"])]), ok=False)  # -1: pool_id is required
    s.post("/dm/service", dm_recommend(uid="", scene_id="x"), ok=False)  # -1: empty uid
    report = s.report()
    assert report["findings"] == [] and report["totals"]["requests"] == 0 and report["totals"]["items"] == 4


def test_ten_items_sharing_one_tag_are_coarse_and_nine_are_too_few_to_judge(serve):  # noqa: F811
    assert quality.MIN_ITEMS_FOR_TAG_RULES == 10
    for n, expected in ((9, []), (10, ["cre/prod pool p: tag '衬衫' on 10 of 10 items"])):
        s = Integration(serve())
        s.cre_items(*(s.cre_item(i, pool="p", tags={"衬衫": "1"}) for i in range(n)))
        found = [ex["value"] for f in s.report()["findings"] if f["rule"] == "item-tags-coarse" for ex in f["examples"]]
        assert found == expected, (n, found)
    s = Integration(serve())  # one-off tags in 10 items: too few to call them too fine (that waits for 20)
    s.cre_items(*(s.cre_item(i, pool="p", tags={f"款式{i}": "1"}) for i in range(10)))
    assert [f["rule"] for f in s.report()["findings"] if f["rule"].startswith("item-tags")] == []


# -- the bundled scenarios ---------------------------------------------------------------------

SHOP_NOW = 1_795_000_000  # after every item and action of shop.yaml, before any expiry


def scenario_server(serve, name, now):  # noqa: F811
    return Integration(serve({"clock": lambda: now, "scenarios": [str(scenarios_dir() / f"{name}.yaml")]}))


def test_a_realistic_shop_session_raises_only_the_documented_off_shelf_information(serve):  # noqa: F811
    s = scenario_server(serve, "shop", SHOP_NOW)
    for path, shoppers in (("/query", ("shopper000", "shopper001", "shopper002")), ("/test-query", ("shopper003",))):
        for uid in shoppers:
            for pool in ("home", "digital"):
                reply = s.post(path, cre_query(user_id=uid, pool_id=pool, request_num=5))
                ans = Answer([e["id"] for e in reply["rec"][pool]], reply["trace_id"], reply["test_id"], reply["abtag"])
                upload = "/upload" if path == "/query" else "/cre_test_upload"
                at = lambda dt: str(SHOP_NOW - 60 + dt)  # noqa: E731
                entries = [{"item_id": i, "position_id": str(p), "trace_id": ans.trace} for p, i in enumerate(ans.ids)]
                s.post(upload, cre_upload("2", [s.cre_record(uid, "101", entries, ans, oper_time=at(0)),
                                                s.cre_record(uid, "102", entries[1:2], ans, oper_time=at(10)),
                                                s.cre_record(uid, "123", entries[1:2], ans, oper_time=at(40))]))
    for n, uid in enumerate(("shopper010", "shopper011", "shopper012")):
        reply = s.post("/dm/service", dm_recommend(uid=uid, bid="shop", pool_id="food", scene_id="guess-you-like",
                                                   request_num=5))
        ids, trace = [e["item"] for e in reply["data"]], f"dm-{uid}-{n}"
        for action_type, shown in ((1, ids), (2, ids[:1]), (3, ids[:1])):
            s.post("/dm/data", dm_action(uid, action_type, shown, bid="shop", scene_id="guess-you-like",
                                         trace_id=trace, action_time=str(SHOP_NOW - 30)))
    report = s.report()
    assert {f["severity"] for f in report["findings"]} == {"info"}, report["findings"]
    (f,) = report["findings"]
    # shop.yaml plants items reported off shelf (publish "2", n % 16 == 5 of each category): 20 in each of its
    # three partitions. Fixtures are not journaled: they count as arriving at report time, with no seq.
    assert f["rule"] == "item-off-shelf-on-arrival" and f["count"] == 60
    assert f["examples"][0] == {"seq": None, "value": "cre/prod:apparel-005 (preloaded, judged at report time)"}
    assert report["scores"] == {"items": 100.0, "actions": 100.0, "requests": 100.0, "overall": 100.0}
    assert report["totals"]["requests"] == 11 and report["charts"]["clicks"] == 11


def test_news_feed_shows_exactly_its_two_expired_articles(serve):  # noqa: F811
    s = scenario_server(serve, "news-feed", 1_767_830_800)  # just after the fixture readers' actions
    for uid, pool in (("r001", "tech"), ("r002", "sports")):
        reply = s.post("/dm/service", dm_recommend(uid=uid, bid="news", pool_id=pool, scene_id="feed", request_num=3))
        ids = [e["item"] for e in reply["data"]]
        assert not {"n9001", "n9002"} & set(ids)  # expired: never recommended
        s.post("/dm/data", dm_action(uid, 1, ids, bid="news", scene_id="feed", trace_id=f"tr-{uid}-2",
                                     action_time="1767830790"))
        s.post("/dm/data", dm_action(uid, 2, ids[:1], bid="news", scene_id="feed", trace_id=f"tr-{uid}-2",
                                     action_time="1767830795"))
    report = s.report()
    (f,) = report["findings"]
    assert (f["rule"], f["severity"], f["count"]) == ("item-expired-on-arrival", "warning", 2)
    assert [e["value"] for e in f["examples"]] == [
        "dm/news:n9001 expired 2013-12-13 06:56:03 UTC (preloaded, judged at report time)",
        "dm/news:n9002 expired 2013-12-13 06:56:03 UTC (preloaded, judged at report time)"]
    assert all(e["seq"] is None for e in f["examples"])  # fixtures are not in the journal
    assert report["scores"]["items"] == 100 - 15 * 2 / 10


def test_the_html_and_text_views_of_the_admin_report(serve):  # noqa: F811
    s = Integration(serve())
    s.cre_catalogue()
    s.cre_items(cre_item("<script>alert(1)</script>", pool_id="p1"))  # no tags, no categories, no describe
    page = requests.get(s.c.url + "/__admin/report", params={"format": "html"}, timeout=TIMEOUT)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html")
    assert "<script>alert(1)</script>" not in page.text and "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text
    assert "http://" not in page.text and "https://" not in page.text
    assert 'href="requests/2"' in page.text  # each example links to its journal entry
    text = requests.get(s.c.url + "/__admin/report", params={"format": "text"}, timeout=TIMEOUT).text
    assert "WARNING item-tags-missing  ×1" in text and "#2 cre/prod:<script>alert(1)</script>" in text
    assert "\033[" not in text
