"""cre (seed 000, 云推荐引擎): token, versioned envelope, every value a string."""

from __future__ import annotations

import uuid

from mockcre.common import domain, jsontext
from mockcre.model.recommend import RecRequest, Ranking
from mockcre.model.store import Action, Item

from .base import (Dialect, ReportedAction, Route, coordinates, ids, number, once, report_kind, scalar_id, seconds,
                   split, text)

ROUTES = {
    "cre.upload": Route("cre.upload", ("item", "action"), "prod", "upload-response"),
    "cre.test_upload": Route("cre.test_upload", ("item", "action"), "test", "upload-response"),
    "cre.query": Route("cre.query", ("query",), "prod", "query-response"),
    "cre.test_query": Route("cre.test_query", ("query",), "test", "query-response"),
}
STRATEGY_PERSONALISED, STRATEGY_COLD_START, STRATEGY_RANK_ITEMS, STRATEGY_SCRIPTED = "9001", "9002", "9003", "9004"


class Cre(Dialect):
    name = "cre"
    routes = ROUTES
    echo_field = "seq_no"
    auth_field = "token"
    message_field = "message"
    error_kind = "upload-response"  # cre errors are the upload reply's {seq_no, code, message}
    ok_code = "0"  # every cre value is a string
    empty_answer_code = domain.CODE_OK  # with message "empty result"
    identifying = {
        "item": ("data_type", "data[0].item_id"),
        "action": ("data_type", "data[0].uid", "data[0].action_id", "data[0].item_action[0].item_id"),
        "query": ("user_id", "scn_id", "pool_id", "request_num"),
    }
    echoed = ("seq_no", "data[0].item_time", "data[0].expire_time", "data[0].oper_time")
    record_paths = ("data[*]", "data[*].item_action[*]")  # a batch's records, and the items each acts on

    def kind_for(self, route: Route, body) -> str:
        if route.kinds == ("query",):
            return "query"
        return report_kind(body, '"1"', '"2"')

    def partition_key(self, route: Route, body) -> tuple:
        """cre data is kept per namespace (production /upload vs test /cre_test_upload); busi_id stays on each record."""
        return ("cre", route.namespace)

    def items(self, body: dict, now: int) -> list[Item]:
        out = []
        for record in body["data"]:
            item_time = seconds(record.get("item_time"), now)
            out.append(Item(
                item_id=str(record["item_id"]),
                pools=tuple(p for p in split(record.get("pool_id"), ";") if p != domain.GLOBAL_POOL),
                tags=_tags(record.get("tags")),
                categories=tuple(c for c in (text(record.get("lv1class")), text(record.get("lv2class", record.get("lv2calss"))),
                                             text(record.get("lv3class"))) if c),
                vendor=text(record.get("vender")),
                score=number(record.get("score")),
                item_time=item_time,
                expire_time=seconds(record.get("expire_time"), item_time + domain.CRE_DEFAULT_TTL),
                on_shelf=str(record.get("publish", "1")) != "2",
                lat=coordinates(record.get("geo"))[0],
                lon=coordinates(record.get("geo"))[1],
                reported=jsontext.dumps_kept(record),
            ))
        return out

    def actions(self, body: dict, now: int):
        for record in body["data"]:
            yield from _record_actions(record, now)

    def reported_actions(self, body: dict, now: int | None) -> list[ReportedAction]:
        """Records of source "0" (this engine) claim the test_id / rule_id a query answer gave them."""
        out = []
        for r, record in enumerate(body["data"]):
            claims = tuple((name, str(record[name])) for name in ("test_id", "rule_id")
                           if str(record.get("source")) == "0" and record.get(name))
            out += [ReportedAction.of(action, counter, r, claims) for action, counter in _record_actions(record, now)]
        return out

    def rec_request(self, body: dict) -> RecRequest:
        pool = body.get("pool") if isinstance(body.get("pool"), dict) else {}
        lat, lon = coordinates(body.get("geo"))
        limit = body.get("request_num")
        return RecRequest(
            uid=text(body.get("user_id")) or None,
            pools=split(body.get("pool_id"), ",，") or [domain.GLOBAL_POOL],
            items=[str(i) for i in pool["items"]] if isinstance(pool.get("items"), list) else None,
            lat=lat, lon=lon,
            limit=max(int(number(limit)), 0) if limit is not None else None,
        )

    def accepted(self, body) -> dict:
        return self._envelope(self.echo(body), {"code": self.ok_code, "message": "success"})

    def rankings_wanted(self, req: RecRequest, body: dict) -> dict[str, RecRequest]:
        """One ranking per requested pool; with pool.items one ranking of those items, under pool_id (default "0")."""
        if req.items is not None:
            return dict.fromkeys(split(body.get("pool_id"), ",，")[:1] or [domain.GLOBAL_POOL], req)
        return {pool: req.in_pool(pool) for pool in req.pools}

    def recommended(self, body: dict, req: RecRequest, rankings: dict[str, Ranking], trace_id: str) -> dict:
        """One ranked list per requested pool (with pool.items: one list under pool_id, default "0")."""
        rec = {pool: [{"id": item_id, "score": f"{relevance * 100:.2f}"} for item_id, relevance in r.entries]
               for pool, r in rankings.items()}
        if req.items is not None:
            abtag = STRATEGY_RANK_ITEMS
        else:
            abtag = STRATEGY_PERSONALISED if any(r.personalised for r in rankings.values()) else STRATEGY_COLD_START
        return self._rec_reply(body, rec, abtag, trace_id)

    def canned(self, body: dict, entries: list, apply_limit: bool, trace_id: str) -> dict:
        """A scenario's ranking ``[(id, score or None)]``, the same list under every requested pool."""
        req = self.rec_request(body)
        limit = req.limit if apply_limit else None
        ranked = [{"id": item_id, "score": str(score) if score is not None else str(len(entries) - i)}
                  for i, (item_id, score) in enumerate(entries)][:limit]
        return self._rec_reply(body, {pool: list(ranked) for pool in self.rankings_wanted(req, body)}, STRATEGY_SCRIPTED,
                               trace_id)

    def _rec_reply(self, body: dict, rec: dict, abtag: str, trace_id: str) -> dict:
        return self._envelope(self.echo(body), {
            "code": self.ok_code, "message": "success" if any(rec.values()) else "empty result",
            "test_id": str(body.get("scn_id", "")), "abtag": abtag, "trace_id": trace_id, "rec": rec,
        })

    def error(self, echo, code: int, message: str) -> dict:
        return {"seq_no": echo, "code": str(code), "message": message}  # seq_no always, null when unreadable

    def check_auth(self, accounts, body: dict) -> str | None:
        if not accounts.cre_tokens or body.get("token") in accounts.cre_tokens:
            return None
        return "token: unknown token; it must be one assigned by the engine (token：用作鉴权，由云推荐引擎分配)"

    def signed(self, body: dict, account: str) -> dict:
        return {**body, "token": account}

    def users(self, body: dict) -> list[str]:
        found = ids(body.get("user_id"))
        data = body.get("data")  # (every journaled request asks: a query has none, and returns at once)
        if not isinstance(data, list):
            return found
        found += [scalar_id(record.get("uid")) for record in data if isinstance(record, dict)]
        return once(found)

    def item_ids(self, body: dict) -> list[str]:
        found = []
        data = body.get("data")
        for record in data if isinstance(data, list) else ():
            if isinstance(record, dict):
                found.append(scalar_id(record.get("item_id")))
                actions = record.get("item_action")
                if isinstance(actions, list):
                    found += [scalar_id(entry.get("item_id")) for entry in actions if isinstance(entry, dict)]
        pool = body.get("pool")
        if isinstance(pool, dict) and isinstance(pool.get("items"), list):
            found += [scalar_id(item_id) for item_id in pool["items"]]
        return once(found)

    def beyond_limit(self, body: dict) -> None:
        return None  # cre documents no maximum: request_num defaults to all

    def ranked_lists(self, body: dict, reply: dict) -> dict[str, list[tuple]]:
        rec = reply.get("rec") or {}
        return {pool: [(str(r.get("id")), r.get("score")) for r in entries] for pool, entries in rec.items()}

    def issued_scene_ids(self, body: dict, reply: dict) -> set:
        """A successful answer's test_id and abtag, which actions copy as test_id and rule_id."""
        if str(reply.get("code")) != self.ok_code:
            return set()
        return {("test_id", str(reply.get("test_id"))), ("rule_id", str(reply.get("abtag")))}

    def sample_item(self, business, item_id, pools, on_shelf, item_time, expire_time) -> dict:
        record = {"busi_id": "conformance", "test_id": "conformance", "item_id": item_id, "pool_id": ";".join(pools),
                  "publish": "1" if on_shelf else "2", "item_time": str(item_time), "expire_time": str(expire_time),
                  "tags": {"conformance": "1"}}
        return {"version": "1", "seq_no": uuid.uuid4().hex[:12], "data_type": "1", "token": "conformance", "data": [record]}

    def sample_click(self, business, uid, item_id, when) -> dict:
        record = {"uid_type": "5", "uid": uid, "oper_time": str(when), "source": "1", "action_id": domain.CRE_CLICK,
                  "item_action": [{"item_id": item_id, "trace_id": uuid.uuid4().hex[:8]}]}
        return {"version": "1", "data_type": "2", "token": "conformance", "data": [record]}

    def sample_query(self, business, uid, pools, request_num) -> dict:
        return {"seq_no": uuid.uuid4().hex[:12], "token": "conformance", "proj_id": "conformance", "scn_id": "conformance",
                "uid_type": "5", "user_id": uid, "pool_id": ",".join(pools), "request_num": str(request_num)}

    @staticmethod
    def _envelope(echo, fields: dict) -> dict:
        return {"seq_no": echo, **fields} if echo is not None else fields


def _tags(value) -> dict:
    """cre tags: {tag: weight} (a non-numeric value is one more tag); a joined string in lenient mode."""
    if isinstance(value, dict):
        tags = {}
        for key, weight in value.items():
            as_number = number(weight, float("nan"))
            if as_number == as_number:  # numeric: a weight
                tags[str(key)] = as_number
            else:
                tags[str(key)] = 1.0
                if text(weight):
                    tags[str(weight)] = 1.0
        return tags
    return dict.fromkeys(split(value, ";,"), 1.0)


def _record_actions(record: dict, now: int):
    code = str(record["action_id"])
    uid, when, scene = str(record["uid"]), seconds(record.get("oper_time"), now), text(record.get("test_id"))
    for position, entry in enumerate(record["item_action"]):
        yield Action(
            uid=uid,
            item_id=str(entry["item_id"]),
            action=code,
            weight=domain.CRE_ACTION_WEIGHTS.get(code, 0.0),
            time=when,
            trace_id=text(entry.get("trace_id")),
            scene=scene,
            position=int(number(entry.get("position_id"), position)),
            purchase=1 if code in domain.CRE_PURCHASE_ACTIONS else -1 if code == domain.CRE_PURCHASE_UNDO else 0,
        ), _counter(code)


def _counter(code: str) -> str:
    if code == domain.CRE_EXPOSURE:
        return "exposure"
    if code == domain.CRE_CLICK:
        return "click"
    return "conversion" if code in domain.CRE_PURCHASE_ACTIONS else "other"


DIALECT = Cre()
