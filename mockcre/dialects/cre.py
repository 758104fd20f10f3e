"""cre (seed 000, 云推荐引擎): token, versioned envelope, every value a string."""

from __future__ import annotations

from mockcre import domain, jsontext
from mockcre.recommend import RecRequest, Ranking
from mockcre.store import Action, Item

from .base import Route, WrongKind, echo_id, coordinates, number, seconds, split, text

ROUTES = {
    "cre.upload": Route("cre.upload", ("item", "action"), "prod"),
    "cre.test_upload": Route("cre.test_upload", ("item", "action"), "test"),
    "cre.query": Route("cre.query", ("query",), "prod"),
    "cre.test_query": Route("cre.test_query", ("query",), "test"),
}
DATA_TYPES = {"1": "item", "2": "action"}
STRATEGY_PERSONALISED, STRATEGY_COLD_START, STRATEGY_RANK_ITEMS, STRATEGY_SCRIPTED = "9001", "9002", "9003", "9004"


class Cre:
    name = "cre"
    echo_field = "seq_no"
    routes = ROUTES

    def echo(self, body):
        return echo_id(body, "seq_no")

    def kind_for(self, route: Route, body) -> str:
        if route.kinds == ("query",):
            return "query"
        data_type = body.get("data_type") if isinstance(body, dict) else None
        kind = DATA_TYPES.get(str(data_type)) if isinstance(data_type, (str, int)) and not isinstance(data_type, bool) else None
        if kind is None:
            got = "it is missing" if not isinstance(body, dict) or "data_type" not in body else f"got {data_type!r}"
            raise WrongKind(f'data_type: expected "1" (item, 物料) or "2" (action, 行为); {got}', "/data_type")
        return kind

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
        return self._envelope(self.echo(body), {"code": "0", "message": "success"})

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
        return self._rec_reply(body, {pool: list(ranked) for pool in self.rec_pools(req, body)}, STRATEGY_SCRIPTED, trace_id)

    def _rec_reply(self, body: dict, rec: dict, abtag: str, trace_id: str) -> dict:
        return self._envelope(self.echo(body), {
            "code": "0", "message": "success" if any(rec.values()) else "empty result",
            "test_id": str(body.get("scn_id", "")), "abtag": abtag, "trace_id": trace_id, "rec": rec,
        })

    def rec_pools(self, req: RecRequest, body: dict) -> list[str]:
        if req.items is not None:
            return split(body.get("pool_id"), ",，")[:1] or [domain.GLOBAL_POOL]
        return list(dict.fromkeys(req.pools))

    def error(self, echo, code: int, message: str) -> dict:
        return {"seq_no": echo, "code": str(code), "message": message}  # seq_no always, null when unreadable

    def check_auth(self, accounts, body: dict):
        return accounts.check_cre(body)

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


def _counter(code: str) -> str:
    if code == domain.CRE_EXPOSURE:
        return "exposure"
    if code == domain.CRE_CLICK:
        return "click"
    return "conversion" if code in domain.CRE_PURCHASE_ACTIONS else "other"


DIALECT = Cre()
