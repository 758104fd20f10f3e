"""dm (seed 001, 智能推荐): MD5 signature, one record per request, integer codes."""

from __future__ import annotations

import hashlib
import hmac
import time
import uuid

from mockcre.common import domain, jsontext
from mockcre.model.recommend import RecRequest, Ranking
from mockcre.model.store import Action, Item

from .base import (Dialect, ReportedAction, Route, WrongKind, coordinates, ids, integer, masked_body, number, once,
                   report_kind, seconds, split, text)

ROUTES = {
    "dm.data": Route("dm.data", ("item", "action"), "data", "report-response"),
    "dm.service": Route("dm.service", ("recommend",), "service", "recommend-response"),
}
VARIANTS = {0: "pctr", 1: "popularity", 2: "pcvr", 3: "personalised", 4: "quality"}
ALGID_BASE = 10  # algid = 10 + service_type; 19 when a personalised request fell back to cold start
ALGID_COLD_START = 19
ALGID_SCRIPTED = 90  # a scenario's canned ranking
SIGNATURE_FORMULA = "MD5 must be md5(bid&request_id&TOKEN) in hex (MD5（BID&request_id&TOKEN）)"


class Dm(Dialect):
    name = "dm"
    routes = ROUTES
    echo_field = "request_id"
    auth_field = "MD5"
    message_field = "msg"
    error_kind = "error-response"
    ok_code = domain.CODE_OK
    empty_answer_code = domain.CODE_ALGORITHM_ERROR  # -3, "empty result"
    report_fields = frozenset({"MD5", "request_id", "data_type", "bid"})  # an item report is one request per item
    identifying = {
        "item": ("data_type", "item_id"),
        "action": ("data_type", "uid", "action_type", "item_id"),
        "recommend": ("uid", "scene_id", "pool_id", "service_type", "request_num", "cid"),
    }
    echoed = ("request_id", "item_time", "expire_time", "action_time")  # request_id embeds a timestamp

    def kind_for(self, route: Route, body) -> str:
        if route.kinds == ("recommend",):
            if isinstance(body, dict) and "data_type" in body:
                raise WrongKind("data_type: a recommendation request has no data_type; item and action reports go to "
                                "the data host (http://data.dm.qcloud.com:8088, mockcre: /dm/data)", "/data_type")
            return "recommend"
        return report_kind(body, "1", "2")

    def route_for_root(self, host: str, body) -> str:
        """The real dm hosts both take POST /: data.* reports, service.* recommends; else the body decides."""
        name = (host or "").split(":")[0].lower()
        if name.startswith("data."):
            return "dm.data"
        if name.startswith("service."):
            return "dm.service"
        return "dm.data" if isinstance(body, dict) and "data_type" in body else "dm.service"

    def partition_key(self, route: Route, body) -> tuple:
        return ("dm", str(body.get("bid")))

    def items(self, body: dict, now: int) -> list[Item]:
        item_time = seconds(body.get("item_time"), now)
        lat, lon = coordinates(body.get("geo") or body)
        return [Item(
            item_id=str(body["item_id"]),
            pools=tuple(p for p in split(body.get("pool_id"), ";") if p != domain.GLOBAL_POOL),
            tags=dict.fromkeys(split(body.get("tags"), ";,，"), 1.0),
            categories=tuple(c for c in (text(body.get(k)) for k in ("big_type", "middle_type", "small_type")) if c),
            vendor=text(body.get("vender")),
            score=number(body.get("score")),
            item_time=item_time,
            expire_time=seconds(body.get("expire_time"), item_time + domain.DM_DEFAULT_TTL),
            on_shelf=number(body.get("publish"), 1) != 0,
            lat=lat, lon=lon,
            reported=jsontext.dumps_kept(masked_body(body)),  # the MD5 signature is a secret
        )]

    def actions(self, body: dict, now: int):
        code = int(number(body.get("action_type")))
        uid, action, when = str(body["uid"]), str(code), seconds(body.get("action_time"), now)  # one object each, shared
        trace_id, scene = text(body.get("trace_id")), text(body.get("scene_id"))
        for position, item_id in enumerate(split(body.get("item_id"), ";")):
            yield Action(
                uid=uid,
                item_id=item_id,
                action=action,
                weight=domain.DM_ACTION_WEIGHTS.get(code, 0.0),
                time=when,
                trace_id=trace_id,
                scene=scene,
                position=position,
                purchase=1 if code == domain.DM_CONVERSION else 0,
            ), {domain.DM_EXPOSURE: "exposure", domain.DM_CLICK: "click", domain.DM_CONVERSION: "conversion"}.get(code, "other")

    def reported_actions(self, body: dict, now: int | None) -> list[ReportedAction]:
        """Actions of source "tx" (this service's recommendation) claim the scene_id they were recommended in."""
        scene = text(body.get("scene_id"))
        claims = (("scene_id", scene),) if scene and body.get("source") == "tx" else ()
        return [ReportedAction.of(action, counter, 0, claims) for action, counter in self.actions(body, now)]

    def rec_request(self, body: dict) -> RecRequest:
        lat, lon = coordinates(body.get("geo") or body)
        limit = int(number(body.get("request_num"), domain.DM_DEFAULT_REQUEST_NUM))
        service_type = int(number(body.get("service_type"), domain.DM_DEFAULT_SERVICE_TYPE))
        return RecRequest(
            uid=text(body.get("uid")) or None,
            pools=split(body.get("pool_id"), ";") or [domain.GLOBAL_POOL],
            cid=text(body.get("cid")) or None,
            lat=lat, lon=lon,
            limit=min(max(limit, 1), domain.DM_MAX_REQUEST_NUM),
            variant=VARIANTS.get(service_type, "personalised"),
        )

    def accepted(self, body) -> dict:
        return {"request_id": self.echo(body), "code": self.ok_code, "msg": "true"}

    def rankings_wanted(self, req: RecRequest, body: dict) -> dict[str, RecRequest]:
        """One ranking across all requested pools: dm answers a single list."""
        return {";".join(req.pools): req}

    def recommended(self, body: dict, req: RecRequest, rankings: dict[str, Ranking], trace_id: str) -> dict:
        """The one ranking as data[] (dm replies carry no trace id); none found is the documented -3."""
        (ranking,) = rankings.values()
        if not ranking.entries:
            return self.error(self.echo(body), domain.CODE_ALGORITHM_ERROR, "empty result")
        service_type = int(number(body.get("service_type"), domain.DM_DEFAULT_SERVICE_TYPE))
        cold = req.variant == "personalised" and not ranking.personalised
        return self._data_reply(body, [{"item": item_id, "weight": weight(relevance)} for item_id, relevance in ranking.entries],
                                ALGID_COLD_START if cold else ALGID_BASE + service_type)

    def canned(self, body: dict, entries: list, apply_limit: bool, trace_id: str) -> dict:
        """A scenario's ranking ``[(id, weight or None)]``; an empty one is the documented -3."""
        limit = self.rec_request(body).limit if apply_limit else None
        data = [{"item": item_id, "weight": int(number(w)) if w is not None else max(domain.DM_WEIGHT_MAX - 1000 * i, 0)}
                for i, (item_id, w) in enumerate(entries)][:limit]
        if not data:
            return self.error(self.echo(body), domain.CODE_ALGORITHM_ERROR, "empty result")
        return self._data_reply(body, data, ALGID_SCRIPTED)

    def _data_reply(self, body: dict, data: list, algid: int) -> dict:
        return {"request_id": self.echo(body), "algid": algid, "code": self.ok_code, "scene_id": str(body.get("scene_id", "")), "data": data}

    def error(self, echo, code: int, message: str) -> dict:
        return {"request_id": echo, "code": code, "msg": message}

    def check_auth(self, accounts, body: dict) -> str | None:
        if not accounts.dm_tokens:
            return None
        bid = body.get("bid")
        if bid not in accounts.dm_tokens:
            return f"bid: unknown business id {str(bid)[:40]!r}; no account is configured for it"
        expected = signature(str(bid), str(body.get("request_id", "")), accounts.dm_tokens[bid])
        sent = body.get("MD5")
        if isinstance(sent, str) and hmac.compare_digest(sent.lower(), expected):
            return None
        return f"MD5: signature mismatch; {SIGNATURE_FORMULA}"

    def signed(self, body: dict, account: tuple) -> dict:
        bid, token = account
        return {**body, "bid": bid, "MD5": signature(bid, str(body.get("request_id", "")), token)}

    def users(self, body: dict) -> list[str]:
        return once(ids(body.get("uid")))

    def item_ids(self, body: dict) -> list[str]:
        return once([*ids(body.get("item_id"), ";"), *ids(body.get("cid"))])

    def beyond_limit(self, body: dict) -> int | None:
        asked = integer(body.get("request_num"))
        return asked if asked is not None and asked > domain.DM_MAX_REQUEST_NUM else None

    def ranked_lists(self, body: dict, reply: dict) -> dict[str, list[tuple]]:
        """The one list, under the request's own pool_id."""
        return {str(body.get("pool_id", "")): [(str(r.get("item")), r.get("weight")) for r in reply.get("data") or []]}

    def issued_scene_ids(self, body: dict, reply: dict) -> set:
        """The request's own scene_id, which its actions must repeat."""
        return {("scene_id", str(body.get("scene_id")))}

    def sample_item(self, business, item_id, pools, on_shelf, item_time, expire_time) -> dict:
        return {"MD5": "0" * 32, "request_id": _request_id(), "data_type": 1, "bid": business, "item_id": item_id,
                "pool_id": ";".join(pools), "publish": 1 if on_shelf else 0, "item_time": str(item_time),
                "expire_time": expire_time, "tags": "conformance"}

    def sample_click(self, business, uid, item_id, when) -> dict:
        return {"MD5": "0" * 32, "request_id": _request_id(), "data_type": 2, "bid": business, "uid_type": 1, "uid": uid,
                "item_id": item_id, "scene_id": "conformance", "action_type": domain.DM_CLICK, "source": "tx",
                "trace_id": uuid.uuid4().hex[:8], "action_time": str(when)}

    def sample_query(self, business, uid, pools, request_num) -> dict:
        return {"MD5": "0" * 32, "request_id": _request_id(), "service_type": 3, "bid": business, "uid_type": 1, "uid": uid,
                "scene_id": "conformance", "pool_id": ";".join(pools), "request_num": request_num}


def signature(bid: str, request_id: str, token: str) -> str:
    """The documented MD5（BID&request_id&TOKEN）, in lower-case hex."""
    return hashlib.md5(f"{bid}&{request_id}&{token}".encode("utf-8")).hexdigest()


def _request_id() -> str:
    """The documented request_id shape: milliseconds, underscore, three digits."""
    return f"{int(time.time() * 1000)}_{uuid.uuid4().int % 1000:03d}"


def weight(relevance: float) -> int:
    """Relevance (>= 0, unbounded) onto the documented weight range [0, 1000000], order preserved."""
    relevance = max(relevance, 0.0)
    return int(domain.DM_WEIGHT_MAX * relevance / (relevance + 10.0))


DIALECT = Dm()
