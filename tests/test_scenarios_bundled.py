"""The bundled scenarios (scenarios/*.yaml), each doing what its description says (issue 4).

shop: a catalogue of 300+ items in several pools, in cre production, cre test and dm business
"shop", where a shopper's recommendations follow their categories. news-feed: expired articles
never come back. errors: every code on every endpoint by header or user id. flaky: fails twice,
then recovers, reproducibly. cold-start: empty answers in both dialects. strict-auth: tokens, MD5
and the strict contract. Each runs on a real server (ThreadedServer on a free port).
"""

from __future__ import annotations

from collections import Counter

import pytest
import requests
import yaml

import mockcre
from mockcre.faces.app import create_app as _app_factory
from mockcre.common.resources import scenarios_dir
from mockcre.faces.server import ThreadedServer

from httpkit import (Client, cre_action, cre_item, cre_query, cre_upload, dm_action, dm_item, dm_recommend, fixed_clock,
                     md5, stop_soon)

SHOP_NOW = 1_795_000_000  # 2026-11: after every item and action of shop.yaml, before any expiry
BUNDLED = ["shop", "news-feed", "errors", "flaky", "cold-start", "strict-auth"]


def create_app(config):
    return getattr(mockcre, "create_app", _app_factory)(config)


def bundled(name: str) -> str:
    return str(scenarios_dir() / f"{name}.yaml")


def start(*names: str, now: float = SHOP_NOW, **config) -> Client:
    server = ThreadedServer(create_app({"clock": fixed_clock(now), "scenarios": [bundled(n) for n in names], **config}))
    server.start()
    client = Client(server.url)
    client.server = server
    client.service = server.service
    return client


@pytest.fixture
def serve():
    clients = []

    def factory(*names, **config) -> Client:
        client = start(*names, **config)
        clients.append(client)
        return client

    yield factory
    for client in clients:
        stop_soon(client.server)


def description(name: str) -> str:
    return yaml.safe_load(open(bundled(name), encoding="utf-8"))["description"]


@pytest.mark.parametrize("name", BUNDLED)
def test_each_bundled_scenario_loads_and_describes_itself(serve, name):
    client = serve(name)
    (info,) = client.service.scenarios.describe()
    assert info["name"] == name and len(info["description"]) > 80
    assert client.session.get(client.url + "/__admin/scenarios", timeout=10).json()["scenarios"][0]["name"] == name


# -- shop ----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def shop():
    client = start("shop")
    yield client
    stop_soon(client.server)


@pytest.fixture(scope="module")
def shop_data() -> dict:
    return yaml.load(open(bundled("shop"), encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _category(item_id: str) -> str:
    return item_id.split("-")[0]  # shop ids are <pool>-NNN; the pool is the item's category


def test_shop_catalogue_is_loaded_into_three_partitions(shop, shop_data):
    items = shop_data["fixtures"]["items"]
    assert len(items) >= 300
    pools = Counter(p for item in items for p in item["pool_id"].split(";"))
    assert {"apparel", "digital", "home", "food", "sports", "sale"} <= set(pools)
    assert min(pools[p] for p in ("apparel", "digital", "home", "food", "sports")) >= 50
    state = shop.session.get(shop.url + "/__admin/state", params={"limit": 1}, timeout=10).json()
    partitions = {tuple(p["partition"]): p for p in state["partitions"]}
    assert set(partitions) == {("cre", "prod"), ("cre", "test"), ("dm", "shop")}
    for part in partitions.values():
        assert part["totals"]["items"] == len(items)
        assert part["totals"]["users"] == 40
        assert part["totals"]["actions"] >= len(shop_data["fixtures"]["actions"])
        assert {"apparel", "digital", "home", "food", "sports", "sale"} <= set(part["pools"])


def test_shop_pools_answer_with_their_items(shop):
    for pool in ("apparel", "digital", "home", "food", "sports"):
        ids = shop.cre_ids(pool=pool, pool_id=pool, request_num=20)
        assert len(ids) == 20 and all(_category(i) == pool for i in ids)
    sale = shop.cre_ids(pool="sale", pool_id="sale", request_num=200)
    assert len(sale) >= 30 and len({_category(i) for i in sale}) == 5
    assert len(shop.dm_ids(bid="shop", pool_id="digital", request_num=10)) == 10


def _favourites(shop_data) -> dict:
    """Each shopper's two most clicked / bought categories, from the fixture's actions."""
    counts: dict[str, Counter] = {}
    for action in shop_data["fixtures"]["actions"]:
        if action["action_id"] in ("102", "123"):
            for entry in action["item_action"]:
                counts.setdefault(action["uid"], Counter())[_category(entry["item_id"])] += 1
    return {uid: {c for c, _ in counter.most_common(2)} for uid, counter in counts.items()}


def test_shop_shoppers_get_their_categories_cre(shop, shop_data):
    favourites = _favourites(shop_data)
    assert len(favourites) == 40
    cold = shop.cre_query(user_id="", request_num=10)
    assert cold["abtag"] == "9002"
    cold_ids = [e["id"] for e in cold["rec"]["0"]]
    for path in ("/query", "/test-query"):
        for uid, liked in sorted(favourites.items()):
            reply = shop.cre_query(path=path, user_id=uid, request_num=10)
            ids = [e["id"] for e in reply["rec"]["0"]]
            assert reply["abtag"] == "9001", uid  # personalised
            assert ids != cold_ids, uid
            assert sum(_category(i) in liked for i in ids) >= 8, (uid, liked, ids)


def test_shop_shoppers_get_their_categories_dm(shop, shop_data):
    favourites = _favourites(shop_data)
    cold = shop.dm_recommend(bid="shop", uid="walk-in", request_num=10)
    assert cold["algid"] == 19
    cold_ids = [e["item"] for e in cold["data"]]
    for uid, liked in sorted(favourites.items())[:20]:
        reply = shop.dm_recommend(bid="shop", uid=uid, request_num=10)
        ids = [e["item"] for e in reply["data"]]
        assert reply["algid"] == 13 and ids != cold_ids, uid
        assert sum(_category(i) in liked for i in ids) >= 8, (uid, liked, ids)


def test_shop_never_recommends_off_shelf_items(shop, shop_data):
    off = {i["item_id"] for i in shop_data["fixtures"]["items"] if i.get("publish") == "2"}
    assert off
    ids = shop.cre_ids(request_num=500) + shop.dm_ids(bid="shop", uid="shopper001", request_num=200)
    assert len(ids) > 300 and not off & set(ids)


# -- news-feed -----------------------------------------------------------------------------------

EXPIRED = {"n9001", "n9002"}


def test_news_feed_never_returns_expired_articles(serve):
    client = serve("news-feed")
    seen = set()
    for uid in ("r001", "r002", "r003", "new-reader"):
        for pool in ("tech", "sports", "finance", "headline", "0", "tech;sports"):
            for service_type in (0, 1, 2, 3, 4):
                reply = client.dm_recommend(bid="news", uid=uid, pool_id=pool, request_num=50, service_type=service_type)
                assert reply["code"] in (0, -3), reply
                seen |= {e["item"] for e in reply.get("data", [])}
        for cid in ("n1001", "n9001", "n2001"):  # detail pages, even of an expired article
            seen |= {e["item"] for e in client.dm_recommend(bid="news", uid=uid, cid=cid, request_num=50).get("data", [])}
    assert not seen & EXPIRED
    assert seen == {"n1001", "n1002", "n1003", "n2001", "n2002", "n2003", "n3001", "n3002"}


def test_news_feed_readers_read_their_topics(serve):
    client = serve("news-feed")
    assert client.dm_ids(bid="news", uid="r001", request_num=3)[0].startswith("n1")  # tech reader
    assert client.dm_ids(bid="news", uid="r002", request_num=3)[0].startswith("n2")  # sports reader
    items = client.session.get(client.url + "/__admin/state", params={"partition": "dm:news"}, timeout=10).json()
    items = items["partitions"][0]["items"]
    assert {i for i, v in items.items() if v["expired"]} == EXPIRED
    assert set(items) >= EXPIRED  # they are kept, only never recommended


# -- errors --------------------------------------------------------------------------------------

def _error_requests(uid: str):
    """(path, body, dialect) for every endpoint, about user ``uid``."""
    return [
        ("/upload", cre_upload("2", [cre_action(uid, "102", ["i1"])], seq_no="s-up"), "cre"),
        ("/cre_test_upload", cre_upload("2", [cre_action(uid, "102", ["i1"])], seq_no="s-tup"), "cre"),
        ("/query", cre_query(user_id=uid, seq_no="s-q"), "cre"),
        ("/test-query", cre_query(user_id=uid, seq_no="s-tq"), "cre"),
        ("/dm/data", dm_action(uid, 2, ["i1"], request_id="r-data"), "dm"),
        ("/dm/service", dm_recommend(uid=uid, request_id="r-svc"), "dm"),
    ]


def _assert_envelope(reply: dict, body: dict, dialect: str, code: int):
    if dialect == "cre":
        assert reply["seq_no"] == body["seq_no"] and reply["code"] == str(code) and reply["message"], reply
        assert set(reply) == {"seq_no", "code", "message"}
    else:
        assert reply["request_id"] == body["request_id"] and reply["code"] == code and reply["msg"], reply
        assert set(reply) == {"request_id", "code", "msg"}


@pytest.fixture(scope="module")
def errors():
    client = start("errors")
    yield client
    stop_soon(client.server)


@pytest.mark.parametrize("code", [-1, -2, -3])
def test_errors_by_user_id_on_every_endpoint(errors, code):
    for path, body, dialect in _error_requests(f"error{code}"):
        reply = errors.call(path, body)
        _assert_envelope(reply, body, dialect, code)
        if code in (-1, -2):
            assert f"error{code}" in reply.get("message", reply.get("msg"))  # the templated user id


@pytest.mark.parametrize("code", [-1, -2, -3])
def test_errors_by_header_on_every_endpoint(errors, code):
    for header in ("X-Mockcre-Code", "x-mockcre-code"):
        for path, body, dialect in _error_requests("plain-user"):
            reply = errors.call(path, body, headers={header: str(code)})
            _assert_envelope(reply, body, dialect, code)
    body = cre_upload("1", [cre_item("i1")], seq_no="s-item")  # item uploads too: they carry no user
    _assert_envelope(errors.call("/upload", body, headers={"X-Mockcre-Code": str(code)}), body, "cre", code)
    body = dm_item("i1", request_id="r-item")
    _assert_envelope(errors.call("/dm/data", body, headers={"X-Mockcre-Code": str(code)}), body, "dm", code)


def test_errors_leave_other_requests_to_the_engine(errors):
    for path, body, _ in _error_requests("plain-user"):
        reply = errors.call(path, body, headers={"X-Mockcre-Code": "0"})
        assert int(reply["code"]) in (0, -3), (path, reply)  # -3: dm's empty result
    assert errors.call("/dm/service", dm_recommend(uid="error-9"))["code"] in (0, -3)
    assert errors.call("/query", cre_query(user_id="not-error-1"))["code"] == "0"


def test_errors_description_matches_the_rules():
    text = description("errors")
    assert "X-Mockcre-Code" in text and all(f"error-{n}" in text for n in (1, 2, 3))


# -- flaky ---------------------------------------------------------------------------------------

def _outcome(client: Client, path: str, body: dict):
    """The reply's code, or "reset" when the connection was dropped."""
    try:
        resp = requests.post(client.url + path, json=body, timeout=10)
    except requests.exceptions.ConnectionError:
        return "reset"
    return int(resp.json()["code"])


def test_flaky_fails_twice_then_recovers(serve):
    client = serve("flaky")
    client.cre_items(cre_item("a"), path="/cre_test_upload")
    client.dm_item("d1")  # uploads are not recommendations: no boot failure
    assert client.service.scenarios.describe()[0]["state"] == "Started"
    first = client.call("/query", cre_query(seq_no="q1"))
    second = client.call("/dm/service", dm_recommend(request_id="r2"))
    assert (first["code"], second["code"]) == ("-2", -2)
    assert "system busy" in first["message"] and "system busy" in second["msg"]
    third = client.call("/test-query", cre_query())
    assert third["code"] == "0" and [e["id"] for e in third["rec"]["0"]] == ["a"]  # the engine answers
    assert client.service.scenarios.describe()[0]["state"] == "Recovered"
    decisions = [e["scenario"][0] for e in client.journal() if e["scenario"]]
    assert [(d["rule"], d["item"]) for d in decisions] == [("boot failures, then recovery", n) for n in range(3)]
    assert decisions[2]["next_state"] == "Recovered"


def test_flaky_after_recovery_every_fifth_recommendation_fails(serve):
    client = serve("flaky")
    client.dm_item("d1")
    outcomes = [_outcome(client, "/dm/service", dm_recommend()) for _ in range(3 + 20)]
    assert outcomes[:3] == [-2, -2, 0]
    after = outcomes[3:]
    assert [n for n, o in enumerate(after, 1) if o == -2] == [5, 10, 15, 20]
    assert set(after) <= {0, -2, "reset"}
    slow = [e["scenario"][0] for e in client.journal() if e["scenario"] and e["scenario"][0]["rule"] == "slow answers"]
    assert slow and all(d["delay_ms"] > 0 for d in slow)  # lognormal delays, median 20 ms
    assert 5 <= sorted(d["delay_ms"] for d in slow)[len(slow) // 2] <= 80


def _flaky_run(serve) -> tuple:
    client = serve("flaky")
    client.dm_item("d1")
    outcomes = []
    for n in range(70):
        if n % 3 == 0:
            outcomes.append(_outcome(client, "/dm/data", dm_action(f"u{n}", 1, ["d1"], request_id=f"a{n}")))
        else:
            outcomes.append(_outcome(client, "/dm/service", dm_recommend(uid=f"u{n}", request_id=f"r{n}")))
    decisions = [e["scenario"] for e in client.journal()]
    return outcomes, decisions


def test_flaky_is_reproducible(serve):
    first, again = _flaky_run(serve), _flaky_run(serve)
    assert first == again  # seed 42: the same resets, the same errors, the same delays
    assert "reset" in first[0]  # about one request in twenty is dropped
    assert sum(o == "reset" for o in first[0]) <= 12


# -- cold-start ----------------------------------------------------------------------------------

def test_cold_start_answers_empty_in_both_dialects(serve):
    client = serve("cold-start")
    for path in ("/query", "/test-query"):
        reply = client.call(path, cre_query(user_id="first-user", pool_id="p1,p2"))
        assert reply["code"] == "0" and reply["rec"] == {"p1": [], "p2": []}
        assert reply["message"] == "empty result"
    reply = client.call("/dm/service", dm_recommend(uid="first-user", request_id="r-empty"))
    assert reply == {"request_id": "r-empty", "code": -3, "msg": "empty result"}


def test_cold_start_after_reports_ranks_by_popularity(serve):
    client = serve("cold-start")
    client.cre_items(cre_item("a"), cre_item("b"), cre_item("c"))
    client.cre_actions(cre_action("crowd1", "102", ["c"]), cre_action("crowd2", "102", ["c", "b"]))
    reply = client.cre_query(user_id="stranger")
    assert reply["abtag"] == "9002" and [e["id"] for e in reply["rec"]["0"]] == ["c", "b", "a"]
    for item in "abc":
        client.dm_item(item)
    client.dm_action("crowd", 2, ["b"])
    reply = client.dm_recommend(uid="stranger")
    assert reply["algid"] == 19 and [e["item"] for e in reply["data"]][0] == "b"


# -- strict-auth ---------------------------------------------------------------------------------

STRICT_CRE_TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"
STRICT_BID, STRICT_DM_TOKEN = "b_demo", "secret-token"


def _signed(body: dict, token: str = STRICT_DM_TOKEN) -> dict:
    return {**body, "MD5": md5(f"{body['bid']}&{body['request_id']}&{token}")}


def test_strict_auth_description_names_the_accounts():
    text = description("strict-auth")
    assert STRICT_CRE_TOKEN in text and STRICT_BID in text and STRICT_DM_TOKEN in text


def test_strict_auth_cre_tokens(serve):
    client = serve("strict-auth")
    wrong = client.call("/query", cre_query(token="00000000-0000-0000-0000-000000000000"))
    assert wrong["code"] == "-1" and "token" in wrong["message"]
    right = client.call("/query", cre_query(token=STRICT_CRE_TOKEN))
    assert right["code"] == "0" and {e["id"] for e in right["rec"]["0"]} == {"abcde", "fghij"}  # the fixtures
    assert client.call("/test-query", cre_query(token=STRICT_CRE_TOKEN))["code"] == "0"
    assert client.call("/upload", cre_upload("1", [cre_item("new")], token="nope"))["code"] == "-1"
    assert client.call("/upload", cre_upload("1", [cre_item("new")], token=STRICT_CRE_TOKEN))["code"] == "0"


def test_strict_auth_dm_signatures(serve):
    client = serve("strict-auth")
    body = dm_recommend(uid="u1")  # strict: request_id is <13-digit ms timestamp>_<digits>
    assert client.call("/dm/service", _signed(body, "wrong-token"))["code"] == -1
    reply = client.call("/dm/service", _signed(body))
    assert reply["code"] == 0 and {e["item"] for e in reply["data"]} == {"abcde", "fghij"}
    assert client.call("/dm/service", {**_signed(body), "MD5": _signed(body)["MD5"].upper()})["code"] == 0
    assert client.call("/dm/data", _signed(dm_item("x1")))["code"] == 0
    assert client.call("/dm/data", _signed(dm_item("x2"), "bad"))["code"] == -1
    other = _signed(dm_recommend(bid="b_other"))
    assert client.call("/dm/service", other)["code"] == -1  # no account for that business


def test_strict_auth_rejects_a_number_sent_as_a_string(serve):
    lenient = serve()
    strict = serve("strict-auth")
    for path, body, field in (("/dm/service", dm_recommend(request_num="5"), "request_num"),
                              ("/dm/service", dm_recommend(service_type="3"), "service_type"),
                              ("/dm/data", dm_action("u", "2", ["abcde"]), "action_type")):
        body = _signed(body)
        assert lenient.call(path, body)["code"] in (0, -3), body
        reply = strict.call(path, body)
        assert reply["code"] == -1, (body, reply)
        assert field in reply["msg"] and "1 problem" in reply["msg"], reply
        assert strict.call(path, _signed({**body, field: int(body[field]), "request_id": body["request_id"] + "1"}))["code"] in (0, -3)


def test_strict_auth_rejects_undocumented_fields(serve):
    client = serve("strict-auth")
    reply = client.call("/query", cre_query(token=STRICT_CRE_TOKEN, my_extra="x"))
    assert reply["code"] == "-1" and "my_extra" in reply["message"]
    assert client.call("/dm/service", _signed(dm_recommend(my_extra=1)))["code"] == -1
    assert client.call("/dm/service", _signed(dm_recommend()))["code"] == 0
