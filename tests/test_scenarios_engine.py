"""The scenario engine over real HTTP (issue 4): every ``when`` and every ``then`` kind.

Each test starts its own server (``ThreadedServer`` on a free 127.0.0.1 port, fixed clock) with the
scenario under test, and talks to it with ``requests`` the way a client under test would. The
format is schemas/scenario.schema.json; the bundled scenarios have their own tests in
test_scenarios_bundled.py, lint in test_scenarios_lint.py and the command line in
test_scenarios_cli.py.
"""

from __future__ import annotations

import json
import os
import time

import pytest
import requests
import yaml

import mockcre
from mockcre.faces.app import create_app as _app_factory
from mockcre.faces.server import ThreadedServer

from httpkit import (Client, cre_action, cre_item, cre_query, cre_upload, dm_action, dm_item, dm_recommend, fixed_clock,
                     md5, stop_soon)

ENDPOINT_PATHS = {
    "cre.upload": "/upload",
    "cre.test_upload": "/cre_test_upload",
    "cre.query": "/query",
    "cre.test_query": "/test-query",
    "dm.data": "/dm/data",
    "dm.service": "/dm/service",
}


def create_app(config):
    """``mockcre.create_app`` as documented (the app module's factory while that export is missing)."""
    return getattr(mockcre, "create_app", _app_factory)(config)


@pytest.fixture
def serve():
    """``client = serve(scenario, ..., **config)``: a real server with those scenarios loaded at start."""
    servers = []

    def factory(*scenarios, **config) -> Client:
        config = {"clock": fixed_clock(), **config}
        if scenarios:
            config["scenarios"] = list(scenarios)
        server = ThreadedServer(create_app(config)).start()
        servers.append(server)
        client = Client(server.url)
        client.server = server
        client.service = server.service
        return client

    yield factory
    for server in servers:
        stop_soon(server)


def scenario(*rules, name="under-test", **fields) -> dict:
    return {"name": name, **fields, "rules": list(rules)}


def rule(when=None, then=None, name=None) -> dict:
    out = {"when": when or {}, "then": then or {}}
    if name:
        out["name"] = name
    return out


def write(folder, text: str, name: str = "scenario.yaml"):
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


def code_of(reply: dict):
    """A reply's code as an int, whichever dialect (cre sends strings)."""
    return int(reply["code"])


def sample(endpoint: str, uid: str = "u1", **fields) -> dict:
    """A valid body for an endpoint about user ``uid`` (uploads carry an action of that user)."""
    if endpoint in ("cre.upload", "cre.test_upload"):
        return cre_upload("2", [cre_action(uid, "102", ["i1"])], **fields)
    if endpoint in ("cre.query", "cre.test_query"):
        return cre_query(user_id=uid, **fields)
    if endpoint == "dm.data":
        return dm_action(uid, 2, ["i1"], **fields)
    return dm_recommend(uid=uid, **fields)


# -- three doors, one format -------------------------------------------------------------------

DOOR_YAML = """\
name: doors
rules:
  - name: vip gets a canned list
    when: {endpoint: cre.query, match: {user_id: vip}}
    then:
      recommend: [{id: "gold", score: "99"}, "silver"]
"""


def _check_door(client: Client):
    reply = client.call("/query", cre_query(user_id="vip"))
    assert reply["code"] == "0"
    assert reply["rec"]["0"] == [{"id": "gold", "score": "99"}, {"id": "silver", "score": "1"}]
    other = client.call("/query", cre_query(user_id="somebody"))
    assert other["rec"]["0"] == []  # not matched: the (empty) stateful engine answers


def test_door_config_scenarios_path(serve, tmp_path):
    client = serve(str(write(tmp_path, DOOR_YAML)))
    _check_door(client)
    assert [s["name"] for s in client.service.scenarios.describe()] == ["doors"]


@pytest.mark.parametrize("form", ["yaml-text", "json-text", "mapping", "path"])
def test_door_service_scenarios_load(serve, tmp_path, form):
    client = serve()
    source = {"yaml-text": DOOR_YAML, "json-text": json.dumps(yaml.safe_load(DOOR_YAML), indent=1),
              "mapping": yaml.safe_load(DOOR_YAML), "path": write(tmp_path, DOOR_YAML)}[form]
    assert client.service.scenarios.load(source) == "doors"
    _check_door(client)


def test_door_admin_api_posts_yaml(serve):
    client = serve()
    resp = client.session.post(client.url + "/__admin/scenarios", data=DOOR_YAML.encode(), timeout=10)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "doors"
    _check_door(client)


# -- fixtures ----------------------------------------------------------------------------------

CRE_FIXTURE_ITEMS = [cre_item("a", "p1", tags=["shoes"], score="0.5", item_time="1699990000"),
                     cre_item("b", "p1;p2", tags=["hats"], score="0.2", item_time="1699980000"),
                     cre_item("c", "p2", tags=["shoes", "red"], item_time="1699970000")]
CRE_FIXTURE_ACTIONS = [cre_action("fan", "102", ["a"], oper_time=1699999000),
                       cre_action("crowd", "101", ["b", "c"], oper_time=1699999100),
                       cre_action("crowd", "102", ["c"], oper_time=1699999200)]


def _dm_fixture_items():
    return [{"bid": "shop", "item_id": "x", "pool_id": "p1", "tags": "shoes;red", "item_time": "1699990000", "score": 0.4},
            {"bid": "shop", "item_id": "y", "pool_id": "p1;p2", "tags": "hats", "item_time": "1699980000"}]


def _dm_fixture_actions():
    return [{"bid": "shop", "uid": "fan", "uid_type": 1, "item_id": "y", "scene_id": "1001", "action_type": 2,
             "source": "tx", "trace_id": "t1", "action_time": "1699999000"}]


def _comparable_state(client: Client) -> dict:
    """Every partition as /__admin/state shows it, minus the dm transport fields (request_id, MD5)."""
    resp = client.session.get(client.url + "/__admin/state", params={"limit": 1000, "actions": 1000}, timeout=10)
    assert resp.status_code == 200, resp.text
    out = {}
    for part in resp.json()["partitions"]:
        for item in part["items"].values():
            for key in ("request_id", "MD5", "data_type"):
                item["record"].pop(key, None)
        out[tuple(part["partition"])] = part
    return out


def test_fixtures_preload_exactly_as_if_reported(serve):
    preloaded = serve(scenario(fixtures={"items": CRE_FIXTURE_ITEMS + _dm_fixture_items(),
                                         "actions": CRE_FIXTURE_ACTIONS + _dm_fixture_actions()}))
    reported = serve()
    for path in ("/upload", "/cre_test_upload"):  # cre records go into production and test by default
        reported.ok(path, cre_upload("1", CRE_FIXTURE_ITEMS))
        reported.ok(path, cre_upload("2", CRE_FIXTURE_ACTIONS))
    for record in _dm_fixture_items():
        reported.ok("/dm/data", {"request_id": "r1", "MD5": "0" * 32, "data_type": 1, **record})
    for record in _dm_fixture_actions():
        reported.ok("/dm/data", {"request_id": "r2", "MD5": "0" * 32, "data_type": 2, **record})

    state = _comparable_state(preloaded)
    assert set(state) == {("cre", "prod"), ("cre", "test"), ("dm", "shop")}
    assert state == _comparable_state(reported)
    assert preloaded.journal() == []  # fixtures are not requests
    for client in (preloaded, reported):
        client.cre_ids_seen = [client.cre_ids(pool=p, user_id=u, pool_id=p, path=path)
                               for p in ("p1", "p2") for u in ("fan", "crowd", "") for path in ("/query", "/test-query")]
        client.dm_ids_seen = [client.dm_ids(uid=u, bid="shop", pool_id=p) for p in ("p1", "p2") for u in ("fan", "new")]
    assert preloaded.cre_ids_seen == reported.cre_ids_seen
    assert preloaded.dm_ids_seen == reported.dm_ids_seen
    assert preloaded.cre_ids(pool="p1", pool_id="p1", user_id="fan")[0] == "a"


def test_fixtures_into_chooses_partitions(serve):
    client = serve(scenario(fixtures={"into": ["cre_test", "dm:other"], "items": CRE_FIXTURE_ITEMS}))
    assert set(_comparable_state(client)) == {("cre", "test"), ("dm", "other")}
    assert client.cre_ids(path="/test-query") and client.cre_ids(path="/query") == []
    assert sorted(client.dm_ids(bid="other")) == ["a", "b", "c"]


def test_reset_reapplies_fixtures_and_reset_scenarios_removes_them(serve):
    client = serve(scenario(rule({"match": {"uid": "boom"}}, {"code": -2}),
                            fixtures={"items": CRE_FIXTURE_ITEMS, "actions": CRE_FIXTURE_ACTIONS}))
    before = _comparable_state(client)
    client.cre_items(cre_item("extra", "p1"))
    client.cre_actions(cre_action("late", "102", ["extra"]))
    assert "extra" in _comparable_state(client)[("cre", "prod")]["items"]

    client.service.reset()
    assert _comparable_state(client) == before  # exactly the preloaded data again, nothing reported since
    assert client.journal() == []
    assert code_of(client.call("/query", cre_query(user_id="x"))) == 0
    assert code_of(client.call("/dm/service", dm_recommend(uid="boom"))) == -2  # rules still loaded

    client.service.reset(scenarios=True)
    assert _comparable_state(client) == {}
    assert client.service.scenarios.describe() == []
    assert client.dm_recommend(uid="boom")["code"] == -3  # the empty engine answers now


def test_admin_reset_reapplies_fixtures(serve):
    client = serve(scenario(fixtures={"items": CRE_FIXTURE_ITEMS}))
    client.cre_items(cre_item("extra"))
    assert client.session.post(client.url + "/__admin/reset", timeout=10).status_code == 200
    assert sorted(client.cre_ids()) == ["a", "b", "c"]
    assert client.session.post(client.url + "/__admin/reset?scenarios=1", timeout=10).status_code == 200
    assert client.cre_ids() == []


# -- accounts and strict -----------------------------------------------------------------------

ACCOUNTS = {"cre": {"tokens": ["good-token"]}, "dm": {"bids": {"b_acc": "s3cret"}}}


def _dm_signed(body: dict, token: str) -> dict:
    body = dict(body)
    body["MD5"] = md5(f"{body['bid']}&{body['request_id']}&{token}")
    return body


def test_accounts_turn_auth_on_and_unloading_turns_it_off(serve):
    client = serve()
    assert client.call("/query", cre_query(token="anything"))["code"] == "0"  # no accounts: any token passes

    client.service.scenarios.load(scenario(name="acc", accounts=ACCOUNTS))
    wrong = client.call("/query", cre_query(token="anything"))
    assert wrong["code"] == "-1" and "token" in wrong["message"]
    assert client.call("/query", cre_query(token="good-token"))["code"] == "0"
    assert client.call("/upload", cre_upload("1", [cre_item("a")], token="bad"))["code"] == "-1"
    assert client.call("/upload", cre_upload("1", [cre_item("a")], token="good-token"))["code"] == "0"

    body = dm_recommend(uid="u", bid="b_acc")
    assert client.call("/dm/service", _dm_signed(body, "wrong"))["code"] == -1
    assert client.call("/dm/service", _dm_signed(body, "s3cret"))["code"] in (0, -3)  # auth passed
    item = dm_item("i1", bid="b_acc")
    assert client.call("/dm/data", _dm_signed(item, "wrong"))["code"] == -1
    assert client.call("/dm/data", _dm_signed(item, "s3cret"))["code"] == 0

    client.service.scenarios.unload("acc")
    assert client.call("/query", cre_query(token="anything"))["code"] == "0"


def test_strict_switches_the_contract_mode(serve):
    client = serve()
    lenient = dm_recommend(uid="u", request_num="5")  # a number sent as a string
    assert client.call("/dm/service", lenient)["code"] in (0, -3)
    extra = cre_query(user_id="u", not_in_the_table="x")
    assert client.call("/query", extra)["code"] == "0"

    client.service.scenarios.load(scenario(name="strict", strict=True))
    assert client.call("/dm/service", dict(lenient, request_id="r-strict-1"))["code"] == -1
    assert client.call("/query", extra)["code"] == "-1"
    assert client.journal()[-1]["violations"]

    client.service.scenarios.unload("strict")
    assert client.call("/query", extra)["code"] == "0"


# -- when: endpoint and kind -------------------------------------------------------------------

@pytest.mark.parametrize("target", list(ENDPOINT_PATHS))
def test_when_endpoint_single(serve, target):
    client = serve(scenario(rule({"endpoint": target}, {"code": -2, "msg": "scripted"})))
    for endpoint, path in ENDPOINT_PATHS.items():
        reply = client.call(path, sample(endpoint))
        if endpoint == target:
            assert code_of(reply) == -2, (endpoint, reply)
        else:
            assert code_of(reply) in (0, -3), (endpoint, reply)  # the stateful engine
            assert reply.get("message", reply.get("msg")) != "scripted"


def test_when_endpoint_list_any_and_default(serve):
    client = serve(scenario(
        rule({"endpoint": ["cre.query", "dm.service"], "match": {"uid": "L", "user_id": {"present": False}}}, {"code": -1}),
        rule({"endpoint": ["cre.query", "dm.service"], "match": {"user_id": "L"}}, {"code": -1}),
        rule({"endpoint": "any", "match": {"uid": "A"}}, {"code": -2}),
        rule({"match": {"uid": "D"}}, {"code": 7}),  # endpoint omitted: any
    ))
    for endpoint, path in ENDPOINT_PATHS.items():
        listed = endpoint in ("cre.query", "dm.service")
        assert code_of(client.call(path, sample(endpoint, "L"))) in ((-1,) if listed else (0, -3)), endpoint
        if "query" not in endpoint:  # cre queries name the user user_id, not uid
            assert code_of(client.call(path, sample(endpoint, "A"))) == -2, endpoint
            assert code_of(client.call(path, sample(endpoint, "D"))) == 7, endpoint


def test_when_endpoint_for_dm_root_uses_the_routed_endpoint(serve):
    client = serve(scenario(rule({"endpoint": "dm.service"}, {"code": -2}), rule({"endpoint": "dm.data"}, {"code": -3})))
    assert client.call("/", dm_recommend(uid="u"))["code"] == -2
    assert client.call("/", dm_item("i"))["code"] == -3


def test_when_kind(serve):
    client = serve(scenario(rule({"kind": "action"}, {"code": -2}),
                            rule({"kind": ["query", "recommend"]}, {"code": -3})))
    assert client.call("/upload", cre_upload("1", [cre_item("a")]))["code"] == "0"  # item: engine
    assert client.call("/upload", cre_upload("2", [cre_action("u", "101", ["a"])]))["code"] == "-2"
    assert client.call("/dm/data", dm_item("a"))["code"] == 0
    assert client.call("/dm/data", dm_action("u", 1, ["a"]))["code"] == -2
    assert client.call("/query", cre_query())["code"] == "-3"
    assert client.call("/dm/service", dm_recommend())["code"] == -3
    assert client.call("/cre_test_upload", cre_upload("2", [cre_action("u", "101", ["a"])]))["code"] == "-2"


# -- when: match ---------------------------------------------------------------------------------

def _matcher_server(serve, path: str, spec) -> Client:
    return serve(scenario(rule({"match": {path: spec}}, {"code": -2, "msg": "matched"})))


def _hit(client: Client, path: str, body: dict) -> bool:
    reply = client.call(path, body)
    return reply.get("message", reply.get("msg")) == "matched"


def test_match_equality_compares_text(serve):
    client = _matcher_server(serve, "request_num", 1)  # YAML number 1 matches cre's "1" and dm's 1
    assert _hit(client, "/query", cre_query(request_num="1"))
    assert _hit(client, "/dm/service", dm_recommend(request_num=1))
    assert not _hit(client, "/query", cre_query(request_num="10"))
    assert not _hit(client, "/query", cre_query())  # absent: no match
    client = _matcher_server(serve, "data_type", "1")  # and text "1" matches dm's number 1
    assert _hit(client, "/dm/data", dm_item("i"))
    assert _hit(client, "/upload", cre_upload("1", [cre_item("i")]))
    assert not _hit(client, "/dm/data", dm_action("u", 1, ["i"]))


def test_match_equals_operator_and_nested_path(serve):
    client = _matcher_server(serve, "geo.city", {"equals": "深圳"})
    assert _hit(client, "/dm/service", dm_recommend(geo={"latitude": 22.5, "longitude": 114.0, "city": "深圳"}))
    assert not _hit(client, "/dm/service", dm_recommend(geo={"latitude": 22.5, "longitude": 114.0, "city": "北京"}))


def test_match_regex(serve):
    client = _matcher_server(serve, "uid", {"regex": "^vip-[0-9]+$"})
    assert _hit(client, "/dm/service", dm_recommend(uid="vip-42"))
    assert not _hit(client, "/dm/service", dm_recommend(uid="vip-x"))
    assert not _hit(client, "/dm/service", dm_recommend(uid="not-vip-42"))
    client = _matcher_server(serve, "request_num", {"regex": "^1[0-9]$"})  # numbers are matched as text
    assert _hit(client, "/dm/service", dm_recommend(request_num=15))
    assert not _hit(client, "/dm/service", dm_recommend(request_num=5))


@pytest.mark.parametrize("present", [True, False])
def test_match_present(serve, present):
    client = _matcher_server(serve, "cid", {"present": present})
    assert _hit(client, "/dm/service", dm_recommend(cid="item-1")) is present
    assert _hit(client, "/dm/service", dm_recommend()) is not present


@pytest.mark.parametrize("op, limit, hits", [
    ("gt", 10, {11, 50}), ("gte", 10, {10, 11, 50}), ("lt", 10, {1, 9}), ("lte", 10, {1, 9, 10}),
])
def test_match_comparisons(serve, op, limit, hits):
    client = _matcher_server(serve, "request_num", {op: limit})
    for n in (1, 9, 10, 11, 50):
        assert _hit(client, "/dm/service", dm_recommend(request_num=n)) is (n in hits), (op, n)
        assert _hit(client, "/query", cre_query(request_num=str(n))) is (n in hits), (op, n)  # numeric text counts
    assert not _hit(client, "/dm/service", dm_recommend(uid="u", request_id="r-no-num"))  # absent


def test_match_comparison_on_non_number_does_not_match(serve):
    client = _matcher_server(serve, "uid", {"gt": 0})
    assert not _hit(client, "/dm/service", dm_recommend(uid="abc"))
    assert _hit(client, "/dm/service", dm_recommend(uid="12"))


def test_match_in_and_contains(serve):
    client = _matcher_server(serve, "uid", {"in": ["a", "b", 3]})
    assert _hit(client, "/dm/service", dm_recommend(uid="a"))
    assert _hit(client, "/dm/service", dm_recommend(uid="3"))
    assert not _hit(client, "/dm/service", dm_recommend(uid="c"))
    client = _matcher_server(serve, "item_id", {"contains": "sku-9"})
    assert _hit(client, "/dm/data", dm_action("u", 1, ["sku-1", "sku-9", "sku-3"]))
    assert not _hit(client, "/dm/data", dm_action("u", 1, ["sku-1"]))


def test_match_several_operators_must_all_hold(serve):
    client = _matcher_server(serve, "request_num", {"gte": 10, "lt": 20, "regex": "5$"})
    assert _hit(client, "/dm/service", dm_recommend(request_num=15))
    assert not _hit(client, "/dm/service", dm_recommend(request_num=25))
    assert not _hit(client, "/dm/service", dm_recommend(request_num=12))


def test_match_array_paths_in_cre_uploads(serve):
    client = serve(scenario(
        rule({"match": {"data[*].uid": "spy"}}, {"code": -1, "msg": "uid path"}),
        rule({"match": {"data[*].item_action[*].item_id": "bad-item"}}, {"code": -2, "msg": "item_action path"}),
        rule({"match": {"item_action[*].item_id": "other-bad"}}, {"code": -2, "msg": "short item_action path"}),
        rule({"match": {"data[1].item_id": "second"}}, {"code": -3, "msg": "index path"}),
    ))
    batch = [cre_action("nobody", "101", ["x"]), cre_action("spy", "101", ["y"])]
    assert client.call("/upload", cre_upload("2", batch))["message"] == "uid path"  # any element matches
    batch = [cre_action("u", "101", ["x", "bad-item"])]
    assert client.call("/upload", cre_upload("2", batch))["message"] == "item_action path"
    batch = [cre_action("u", "101", ["x"]), cre_action("u", "101", ["other-bad"])]
    assert client.call("/upload", cre_upload("2", batch))["message"] == "short item_action path"
    assert client.call("/upload", cre_upload("1", [cre_item("first"), cre_item("second")]))["message"] == "index path"
    assert client.call("/upload", cre_upload("1", [cre_item("second"), cre_item("first")]))["code"] == "0"


def test_match_bare_name_searches_cre_records(serve):
    client = serve(scenario(rule({"match": {"uid": "u-bare"}}, {"code": -1, "msg": "uid"}),
                            rule({"match": {"item_id": "i-bare"}}, {"code": -2, "msg": "item"}),
                            rule({"match": {"pool_id": "pool-bare"}}, {"code": -3, "msg": "pool"})))
    assert client.call("/upload", cre_upload("2", [cre_action("u-bare", "102", ["x"])]))["message"] == "uid"
    assert client.call("/dm/data", dm_action("u-bare", 2, ["x"]))["msg"] == "uid"  # same rule, dm's top-level uid
    # item_id: in item records, and in the item_action entries of action records
    assert client.call("/upload", cre_upload("1", [cre_item("i-bare")]))["message"] == "item"
    assert client.call("/upload", cre_upload("2", [cre_action("v", "102", ["y", "i-bare"])]))["message"] == "item"
    assert client.call("/upload", cre_upload("1", [cre_item("z", "pool-bare")]))["message"] == "pool"
    assert client.call("/upload", cre_upload("1", [cre_item("z", "p1")]))["code"] == "0"


def test_when_headers_any_case(serve):
    client = serve(scenario(rule({"headers": {"X-Test-Mode": "break"}}, {"code": -2}),
                            rule({"headers": {"x-tenant": {"regex": "^acme"}}}, {"code": -3}),
                            rule({"headers": {"X-Absent": {"present": False}, "X-Other": "on"}}, {"code": -1})))
    body = dm_recommend(uid="u")
    assert client.call("/dm/service", body, headers={"x-test-mode": "break"})["code"] == -2
    assert client.call("/dm/service", body, headers={"X-TEST-MODE": "break"})["code"] == -2
    assert client.call("/dm/service", body, headers={"X-Test-Mode": "fix"})["code"] in (0, -3)
    assert client.call("/dm/service", body, headers={"X-TENANT": "acme-corp"})["code"] == -3
    assert client.call("/dm/service", body, headers={"X-Other": "on"})["code"] == -1
    assert client.call("/dm/service", body, headers={"X-Other": "on", "X-Absent": "1"})["code"] in (0, -3)
    assert client.call("/dm/service", body)["code"] in (0, -3)


# -- when: counting, probability, state --------------------------------------------------------

def _codes(client: Client, n: int, **fields) -> list:
    return [client.call("/dm/service", dm_recommend(**fields))["code"] for _ in range(n)]


def test_when_times(serve):
    client = serve(scenario(rule({"endpoint": "dm.service", "times": 2}, {"code": -2})))
    assert _codes(client, 5) == [-2, -2, -3, -3, -3]


def test_when_after(serve):
    client = serve(scenario(rule({"endpoint": "dm.service", "after": 3}, {"code": -2})))
    assert _codes(client, 5) == [-3, -3, -2, -2, -2]


def test_when_every(serve):
    client = serve(scenario(rule({"endpoint": "dm.service", "every": 3}, {"code": -2})))
    assert _codes(client, 7) == [-3, -3, -2, -3, -3, -2, -3]


def test_counting_only_counts_requests_meeting_the_other_conditions(serve):
    client = serve(scenario(rule({"endpoint": "dm.service", "match": {"uid": "x"}, "times": 1}, {"code": -2})))
    assert _codes(client, 3, uid="other") == [-3, -3, -3]
    assert _codes(client, 2, uid="x") == [-2, -3]


def _probability_run(serve, seed: int, n: int = 200) -> list[bool]:
    client = serve(scenario(rule({"endpoint": "dm.service", "probability": 0.5}, {"code": -2}), seed=seed))
    return [code == -2 for code in _codes(client, n)]


def test_probability_is_drawn_from_the_seed(serve):
    first, again, other = _probability_run(serve, 7), _probability_run(serve, 7), _probability_run(serve, 8)
    assert first == again  # same seed: the very same sequence
    assert first != other  # another seed: another sequence
    assert 60 <= sum(first) <= 140 and 60 <= sum(other) <= 140  # about half of 200


def test_probability_one_always_and_just_under_one_not_always(serve):
    client = serve(scenario(rule({"match": {"uid": "almost"}, "probability": 0.9}, {"code": -2}),
                            rule({"match": {"uid": "always"}, "probability": 1}, {"code": -2})))
    assert -3 in _codes(client, 60, uid="almost")  # probability 0 is a dead rule: lint refuses it
    assert _codes(client, 20, uid="always") == [-2] * 20


def test_state_machine_fails_twice_then_recovers(serve):
    client = serve(scenario(
        rule({"endpoint": "dm.service", "state": "Started", "times": 2}, {"code": -2, "msg": "busy"}, name="boot"),
        rule({"endpoint": "dm.service", "state": "Started"}, {"passthrough": True, "next_state": "Recovered"},
             name="recover"),
        rule({"endpoint": "dm.service", "state": "Broken"}, {"code": -1}, name="never"),
        name="machine"))
    client.dm_item("i1")
    replies = [client.dm_recommend(uid="u") for _ in range(5)]
    assert [r["code"] for r in replies] == [-2, -2, 0, 0, 0]
    assert [e["item"] for e in replies[2]["data"]] == ["i1"]
    assert client.service.scenarios.describe()[0]["state"] == "Recovered"
    decisions = [e["scenario"] for e in client.journal(endpoint="dm.service")]
    assert [d[0]["rule"] if d else None for d in decisions] == ["boot", "boot", "recover", None, None]
    assert decisions[2][0]["state"] == "Started" and decisions[2][0]["next_state"] == "Recovered"
    # reset restarts the machine and the counters
    client.service.reset()
    client.dm_item("i1")
    assert [r["code"] for r in (client.dm_recommend(uid="u") for _ in range(3))] == [-2, -2, 0]


def test_next_state_with_an_answer(serve):
    client = serve(scenario(
        rule({"match": {"uid": "login"}, "state": "Started"}, {"code": -2, "next_state": "LoggedIn"}),
        rule({"match": {"uid": "login"}, "state": "LoggedIn"}, {"code": -3, "next_state": "Started"}),
    ))
    assert _codes(client, 5, uid="login") == [-2, -3, -2, -3, -2]


# -- then: codes and messages ------------------------------------------------------------------

@pytest.mark.parametrize("code", [-1, -2, -3, 42])
@pytest.mark.parametrize("key", ["msg", "message"])
def test_then_code_in_both_envelopes(serve, code, key):
    client = serve(scenario(rule({"match": {"uid": "x"}}, {"code": code, key: f"scripted {code}"}),
                            rule({"match": {"user_id": "x"}}, {"code": code, key: f"scripted {code}"})))
    cre = client.call("/query", cre_query(user_id="x", seq_no="seq-77"))
    assert cre == {"seq_no": "seq-77", "code": str(code), "message": f"scripted {code}"}
    cre = client.call("/cre_test_upload", cre_upload("2", [cre_action("x", "101", ["i"])], seq_no="seq-78"))
    assert cre == {"seq_no": "seq-78", "code": str(code), "message": f"scripted {code}"}
    body = dm_recommend(uid="x", request_id="req-99")
    assert client.call("/dm/service", body) == {"request_id": "req-99", "code": code, "msg": f"scripted {code}"}
    body = dm_action("x", 1, ["i"], request_id="req-100")
    assert client.call("/dm/data", body) == {"request_id": "req-100", "code": code, "msg": f"scripted {code}"}


def test_then_code_is_not_stored(serve):
    client = serve(scenario(rule({"match": {"item_id": "refused"}}, {"code": -2})))
    assert client.call("/upload", cre_upload("1", [cre_item("refused")]))["code"] == "-2"
    assert client.cre_ids() == []


# -- then: canned recommendations --------------------------------------------------------------

CANNED = [{"id": "a", "score": "90.5"}, "b", {"item": "c", "weight": 700}, {"id": 4}]


def test_then_recommend_cre_shape(serve):
    client = serve(scenario(rule({"endpoint": ["cre.query", "cre.test_query"]}, {"recommend": CANNED})))
    for path in ("/query", "/test-query"):
        reply = client.call(path, cre_query(user_id="u", seq_no="s1", pool_id="p1,p2"))
        assert reply["code"] == "0" and reply["seq_no"] == "s1"
        expected = [{"id": "a", "score": "90.5"}, {"id": "b", "score": "3"}, {"id": "c", "score": "700"},
                    {"id": "4", "score": "1"}]
        assert reply["rec"] == {"p1": expected, "p2": expected}
        assert isinstance(reply["trace_id"], str) and reply["trace_id"]
        assert set(reply) >= {"seq_no", "code", "message", "test_id", "abtag", "trace_id", "rec"}
        assert client.call(path, cre_query(request_num=2))["rec"] == {"0": expected[:2]}


def test_then_recommend_dm_shape(serve):
    client = serve(scenario(rule({"endpoint": "dm.service"}, {"recommend": CANNED})))
    reply = client.call("/dm/service", dm_recommend(uid="u", request_id="r-1", scene_id="77"))
    assert reply["code"] == 0 and reply["request_id"] == "r-1" and reply["scene_id"] == "77"
    assert [e["item"] for e in reply["data"]] == ["a", "b", "c", "4"]
    assert all(isinstance(e["weight"], int) and 0 <= e["weight"] <= 1_000_000 for e in reply["data"])
    assert reply["data"][2]["weight"] == 700
    assert [e["item"] for e in client.call("/dm/service", dm_recommend(request_num=3))["data"]] == ["a", "b", "c"]


def test_then_recommend_without_request_num_limit(serve):
    client = serve(scenario(rule({"endpoint": ["cre.query", "dm.service"]},
                                 {"recommend": CANNED, "apply_request_num": False})))
    assert len(client.call("/query", cre_query(request_num=1))["rec"]["0"]) == 4
    assert len(client.call("/dm/service", dm_recommend(request_num=1))["data"]) == 4


def test_then_recommend_is_templated(serve):
    client = serve(scenario(rule({"endpoint": ["cre.query", "dm.service"]},
                                 {"recommend": ["for-{{ request.user_id }}{{ request.uid }}", "second"]})))
    assert [e["id"] for e in client.call("/query", cre_query(user_id="ann"))["rec"]["0"]] == ["for-ann", "second"]
    assert [e["item"] for e in client.call("/dm/service", dm_recommend(uid="bob"))["data"]] == ["for-bob", "second"]


def test_then_recommend_empty_list(serve):
    client = serve(scenario(rule({"endpoint": ["cre.query", "dm.service"]}, {"recommend": []})))
    cre = client.call("/query", cre_query())
    assert cre["code"] == "0" and cre["rec"] == {"0": []}
    assert client.call("/dm/service", dm_recommend())["code"] == -3  # dm's documented empty result


# -- then: raw answers -------------------------------------------------------------------------

def test_then_status_headers_and_string_body(serve):
    client = serve(scenario(rule({"endpoint": "cre.query"},
                                 {"status": 503, "headers": {"Retry-After": "7", "X-Seq": "{{ request.seq_no }}"},
                                  "body": "upstream unavailable"})))
    resp = client.post("/query", cre_query(seq_no="s-5"))
    assert resp.status_code == 503
    assert resp.text == "upstream unavailable"
    assert resp.headers["Retry-After"] == "7" and resp.headers["X-Seq"] == "s-5"


def test_then_json_body(serve):
    client = serve(scenario(rule({"endpoint": "dm.service"},
                                 {"body": {"code": 0, "data": [{"item": "{{ request.uid }}", "weight": 5}], "extra": [1, 2]}})))
    resp = client.post("/dm/service", dm_recommend(uid="zed"))
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("application/json")
    assert resp.json() == {"code": 0, "data": [{"item": "zed", "weight": 5}], "extra": [1, 2]}


def test_then_status_only(serve):
    client = serve(scenario(rule({"endpoint": "dm.data"}, {"status": 500})))
    resp = client.post("/dm/data", dm_item("i"))
    assert resp.status_code == 500 and resp.content == b""


def test_then_headers_on_an_envelope_answer(serve):
    client = serve(scenario(rule({"endpoint": "cre.query"}, {"code": -2, "headers": {"X-Why": "scripted"}})))
    resp = client.post("/query", cre_query())
    assert resp.headers["X-Why"] == "scripted" and resp.json()["code"] == "-2"


def test_then_body_file(serve, tmp_path):
    (tmp_path / "bodies").mkdir()
    (tmp_path / "bodies" / "reply.json").write_text('{"seq_no": "{{ request.seq_no }}", "code": "0", "rec": {"0": []}}',
                                                    encoding="utf-8")
    path = write(tmp_path, """\
name: files
rules:
  - when: {endpoint: cre.query}
    then: {body_file: bodies/reply.json, status: 200}
""")
    client = serve(str(path))
    reply = client.call("/query", cre_query(seq_no="from-file"))
    assert reply == {"seq_no": "from-file", "code": "0", "rec": {"0": []}}


# -- then: templating is data only -------------------------------------------------------------

def test_templates_fill_request_fields(serve):
    client = serve(scenario(rule({"endpoint": "cre.query"}, {"code": -1, "msg": "seq {{ request.seq_no }} user {{request.user_id}}"}),
                            rule({"endpoint": "dm.service"}, {"code": -2, "msg": "uid={{ request.uid }}; geo={{ request.geo.city }};"
                                                                             " none={{ request.nope }}"})))
    assert client.call("/query", cre_query(seq_no="123", user_id="ann"))["message"] == "seq 123 user ann"
    reply = client.call("/dm/service", dm_recommend(uid="bob", geo={"latitude": 1, "longitude": 2, "city": "深圳"}))
    assert reply["msg"] == "uid=bob; geo=深圳; none="


@pytest.mark.parametrize("template", [
    "{{ request.__class__ }}", "{{ request.__class__.__mro__ }}", "{{ request.seq_no.__class__ }}", "{{ 7*7 }}",
    "{{ config }}", "{{ request.__init__.__globals__ }}", "{{ ''.__class__.__mro__[1].__subclasses__() }}",
    "{% for x in range(3) %}{{ x }}{% endfor %}", "${7*7}", "{{ request['seq_no'] }}", "{{ __import__('os').getcwd() }}",
])
def test_templates_execute_nothing(serve, template, tmp_path):
    marker = tmp_path / "never-created"
    client = serve(scenario(rule({"endpoint": "cre.query"},
                                 {"status": 200, "body": {"msg": template, "touch": f"{{{{ open('{marker}', 'w') }}}}"}})))
    text = client.post("/query", cre_query(seq_no="777")).text
    message = json.loads(text)["msg"]
    assert "49" not in message and "012" not in message and os.getcwd() not in message
    assert "<" not in message, (template, message)  # no repr of any Python object (<class ...>, <function ...>)
    assert "777" not in message or "seq_no" in template
    assert not marker.exists()


# -- then: delays ------------------------------------------------------------------------------

def test_then_fixed_delay(serve):
    client = serve(scenario(rule({"match": {"uid": "slow"}}, {"delay_ms": 300, "code": -2})))
    started = time.perf_counter()
    assert client.call("/dm/service", dm_recommend(uid="slow"))["code"] == -2
    assert time.perf_counter() - started >= 0.3
    started = time.perf_counter()
    client.call("/dm/service", dm_recommend(uid="fast"))
    assert time.perf_counter() - started < 0.3
    assert client.journal()[0]["scenario"][0]["delay_ms"] == 300


def _delays(serve, spec, seed: int, n: int = 8) -> list[float]:
    client = serve(scenario(rule({"endpoint": "dm.service"}, {"passthrough": True, "delay_ms": spec}), seed=seed))
    for _ in range(n):
        started = time.perf_counter()
        client.call("/dm/service", dm_recommend())
        client.elapsed = time.perf_counter() - started
    delays = [e["scenario"][0]["delay_ms"] for e in client.journal()]
    assert client.elapsed * 1000 >= delays[-1] - 1  # the drawn delay is really waited
    return delays


@pytest.mark.parametrize("spec, low, high", [
    ({"uniform": [5, 40]}, 5, 40),
    ({"lognormal": {"median": 8, "sigma": 0.8}}, 0, 60_000),
])
def test_then_random_delays_come_from_the_seed(serve, spec, low, high):
    first, again, other = _delays(serve, spec, 3), _delays(serve, spec, 3), _delays(serve, spec, 4)
    assert first == again
    assert first != other
    assert all(low <= d <= high for d in first + other)
    assert len(set(first)) > 1  # really drawn, not a constant


def test_lognormal_delay_centres_on_its_median(serve):
    client = serve(scenario(rule({"endpoint": "dm.service"}, {"code": -2, "delay_ms": {"lognormal": {"median": 2, "sigma": 0.5}}}),
                            seed=5))
    _codes(client, 41)
    delays = sorted(e["scenario"][0]["delay_ms"] for e in client.journal())
    assert 1.0 <= delays[20] <= 4.0


def test_reset_restarts_the_seeded_draws(serve):
    client = serve(scenario(rule({"endpoint": "dm.service", "probability": 0.5}, {"code": -2, "delay_ms": {"uniform": [0, 10]}}),
                            seed=9))
    first = _codes(client, 30)
    first_delays = [e["scenario"][0]["delay_ms"] if e["scenario"] else None for e in client.journal()]
    client.service.reset()
    assert _codes(client, 30) == first
    assert [e["scenario"][0]["delay_ms"] if e["scenario"] else None for e in client.journal()] == first_delays


# -- then: faults ------------------------------------------------------------------------------

def test_fault_reset_is_a_connection_error(serve):
    client = serve(scenario(rule({"match": {"uid": "chaos"}}, {"fault": "reset"}, name="drop")))
    for path, body in (("/dm/service", dm_recommend(uid="chaos")), ("/dm/data", dm_action("chaos", 2, ["i"])),
                       ("/upload", cre_upload("2", [cre_action("chaos", "102", ["i"])]))):
        with pytest.raises(requests.exceptions.ConnectionError):
            requests.post(client.url + path, json=body, timeout=5)
    assert client.dm_recommend(uid="calm")["code"] == -3  # the server is fine afterwards
    entries = client.journal()
    assert [e["scenario"] for e in entries[:3]] == [[{"scenario": "under-test", "rule": "drop", "index": 0,
                                                      "state": "Started", "fault": "reset"}]] * 3
    assert entries[0]["reply"] == {"fault": "reset"}
    assert client.service.store.partitions == {}  # the reset request was lost: nothing stored


def test_fault_timeout_is_a_client_timeout(serve):
    client = serve(scenario(rule({"match": {"uid": "hang"}}, {"fault": "timeout", "timeout_ms": 1500})))
    started = time.perf_counter()
    with pytest.raises(requests.exceptions.Timeout):
        requests.post(client.url + "/dm/service", json=dm_recommend(uid="hang"), timeout=0.3)
    assert time.perf_counter() - started < 1.2
    assert client.dm_recommend(uid="other")["code"] == -3  # the held connection blocks nobody else


def test_fault_timeout_then_closes_without_an_answer(serve):
    client = serve(scenario(rule({"match": {"uid": "hang"}}, {"fault": "timeout", "timeout_ms": 800})))
    started = time.perf_counter()
    with pytest.raises(requests.exceptions.ConnectionError):
        requests.post(client.url + "/dm/service", json=dm_recommend(uid="hang"), timeout=5)
    assert 0.8 <= time.perf_counter() - started < 4
    assert client.journal()[0]["scenario"][0]["fault"] == "timeout"


def test_fault_malformed_is_truncated_json(serve):
    client = serve(scenario(rule({"match": {"uid": "mangle"}}, {"fault": "malformed"}),
                            rule({"match": {"user_id": "mangle"}}, {"fault": "malformed", "recommend": ["a", "b"]})))
    client.dm_item("i1")
    resp = client.post("/dm/service", dm_recommend(uid="mangle"))
    assert resp.status_code == 200 and resp.content
    with pytest.raises(ValueError):
        json.loads(resp.content)
    resp = client.post("/query", cre_query(user_id="mangle"))
    with pytest.raises(ValueError):
        json.loads(resp.content)
    assert resp.content.startswith(b'{"seq_no"')  # the start of the answer it would have given
    entry = client.journal()[-1]
    assert entry["reply"]["fault"] == "malformed" and entry["reply"]["would_have_answered"]["code"] == "0"


def test_fault_empty_is_200_without_body(serve):
    client = serve(scenario(rule({"match": {"uid": "void"}}, {"fault": "empty"})))
    resp = client.post("/dm/data", dm_item("i9", uid="void"))
    assert resp.status_code == 200 and resp.content == b""
    resp = client.post("/dm/service", dm_recommend(uid="void"))
    assert resp.status_code == 200 and resp.content == b""
    assert client.journal()[-1]["scenario"][0]["fault"] == "empty"


# -- then: passthrough -------------------------------------------------------------------------

def test_passthrough_lets_the_engine_answer_and_store_with_the_delay(serve):
    client = serve(scenario(rule({"endpoint": ["cre.upload", "dm.data", "cre.query"]},
                                 {"passthrough": True, "delay_ms": 150, "next_state": "Seen"}, name="slow lane")))
    started = time.perf_counter()
    client.cre_items(cre_item("kept", "p1"))
    assert time.perf_counter() - started >= 0.15
    client.dm_item("kept-dm")
    assert client.cre_ids() == ["kept"]  # stored and ranked by the engine
    assert client.dm_ids() == ["kept-dm"]  # dm.service is not in the rule: no delay, no decision
    entries = client.journal()
    assert entries[0]["reply"] == {"seq_no": "1", "code": "0", "message": "success"}
    assert entries[0]["scenario"] == [{"scenario": "under-test", "rule": "slow lane", "index": 0, "state": "Started",
                                       "next_state": "Seen", "delay_ms": 150}]
    assert entries[1]["scenario"][0]["state"] == "Seen"
    assert entries[3]["scenario"] == []


# -- precedence and the journal ----------------------------------------------------------------

def test_first_matching_rule_wins(serve):
    client = serve(scenario(rule({"match": {"uid": "vip"}}, {"code": -1}, name="specific"),
                            rule({"endpoint": "dm.service"}, {"code": -2}, name="general"),
                            rule({"match": {"uid": "vip"}}, {"code": -3}, name="shadowed")))
    assert client.dm_recommend(uid="vip")["code"] == -1
    assert client.dm_recommend(uid="other")["code"] == -2
    assert client.call("/dm/data", dm_action("vip", 2, ["i"]))["code"] == -1
    assert [e["scenario"][0]["rule"] for e in client.journal()] == ["specific", "general", "specific"]


def test_first_matching_rule_wins_across_scenarios_in_load_order(serve):
    first = scenario(rule({"match": {"uid": "both"}}, {"code": -1, "msg": "first"}), name="first")
    second = scenario(rule({"match": {"uid": "both"}}, {"code": -2, "msg": "second"}),
                      rule({"match": {"uid": "only-second"}}, {"code": -3, "msg": "second"}), name="second")
    client = serve(first, second)
    assert client.dm_recommend(uid="both")["msg"] == "first"
    assert client.dm_recommend(uid="only-second")["msg"] == "second"
    assert client.journal()[-1]["scenario"][0]["scenario"] == "second"
    client.service.scenarios.unload("first")
    assert client.dm_recommend(uid="both")["msg"] == "second"


def test_loading_a_name_again_replaces_that_scenario(serve):
    client = serve(scenario(rule({"match": {"uid": "u"}}, {"code": -1}), name="same"))
    client.service.scenarios.load(scenario(rule({"match": {"uid": "u"}}, {"code": -2}), name="same"))
    assert len(client.service.scenarios.describe()) == 1
    assert client.dm_recommend(uid="u")["code"] == -2


def test_unmatched_requests_reach_the_stateful_engine(serve):
    client = serve(scenario(rule({"match": {"uid": "scripted"}}, {"code": -2})))
    client.cre_items(cre_item("a"), cre_item("b"))
    client.cre_actions(cre_action("reader", "102", ["b"]))
    client.dm_item("d1")
    assert client.cre_ids(user_id="reader") == ["b", "a"]
    assert client.dm_ids(uid="reader") == ["d1"]
    assert all(e["scenario"] == [] for e in client.journal())


def test_journal_records_each_decision(serve):
    client = serve(scenario(
        rule({"match": {"uid": "a"}, "state": "Started"}, {"code": -2, "delay_ms": 20, "next_state": "B"}, name="one"),
        rule({"match": {"uid": "a"}, "state": "B"}, {"fault": "empty"}, name="two"),
        name="recorded"))
    client.dm_recommend(uid="a")
    client.post("/dm/service", dm_recommend(uid="a"))
    client.dm_recommend(uid="z")
    one, two, none = (e["scenario"] for e in client.journal())
    assert one == [{"scenario": "recorded", "rule": "one", "index": 0, "state": "Started", "next_state": "B", "delay_ms": 20}]
    assert two == [{"scenario": "recorded", "rule": "two", "index": 1, "state": "B", "fault": "empty"}]
    assert none == []
    via_http = client.session.get(client.url + "/__admin/journal", timeout=10).json()["entries"]
    assert via_http[0]["scenario"] == one


def test_unnamed_rules_are_named_by_position(serve):
    client = serve(scenario(rule({"match": {"uid": "n"}}, {"code": -1}), rule({"match": {"uid": "m"}}, {"code": -1})))
    client.dm_recommend(uid="m")
    assert client.journal()[0]["scenario"][0]["rule"] == "rules[1]"


def test_rejected_requests_never_reach_the_rules(serve):
    client = serve(scenario(rule({}, {"code": 5})))
    reply = client.call("/dm/service", {"request_id": "r", "uid": "u"})  # invalid: missing fields
    assert reply["code"] == -1
    assert client.journal()[0]["scenario"] == []


# -- same seed, same run -----------------------------------------------------------------------

CHAOS = """\
name: chaos
seed: {seed}
rules:
  - when: {{endpoint: dm.service, probability: 0.3}}
    then: {{code: -2, delay_ms: {{uniform: [0, 6]}}}}
  - when: {{endpoint: dm.service, probability: 0.2}}
    then: {{recommend: ["x", "y"], delay_ms: {{lognormal: {{median: 2, sigma: 1}}}}}}
  - when: {{endpoint: dm.service, every: 4}}
    then: {{code: -3}}
  - when: {{endpoint: dm.service}}
    then: {{passthrough: true, delay_ms: {{uniform: [0, 3]}}}}
"""


def _chaos_run(serve, tmp_path, seed: int):
    client = serve(str(write(tmp_path, CHAOS.format(seed=seed), f"chaos-{seed}.yaml")))
    client.dm_item("i1")
    answers = [client.dm_recommend(uid=f"u{n % 3}", request_id=f"r{n}") for n in range(40)]
    decisions = [e["scenario"] for e in client.journal(endpoint="dm.service")]
    return answers, decisions


def test_same_seed_same_answers_and_delays(serve, tmp_path):
    first, again, other = (_chaos_run(serve, tmp_path, 21), _chaos_run(serve, tmp_path, 21),
                           _chaos_run(serve, tmp_path, 22))
    assert first == again
    assert first != other
    assert {d[0]["rule"] for d in first[1]} == {"rules[0]", "rules[1]", "rules[2]", "rules[3]"}


# -- hot reload --------------------------------------------------------------------------------

RELOAD_V1 = """\
name: live
rules:
  - name: v1
    when: {match: {uid: hot}}
    then: {code: -1, msg: version one}
"""


def _touch_later(path, seconds: float) -> None:
    stat = os.stat(path)
    os.utime(path, (stat.st_atime + seconds, stat.st_mtime + seconds))


def test_reload_changed_picks_up_an_edit(serve, tmp_path):
    path = write(tmp_path, RELOAD_V1, "live.yaml")
    client = serve(str(path))
    engine = client.service.scenarios
    assert engine.reload_changed() == []  # unchanged
    assert client.dm_recommend(uid="hot")["msg"] == "version one"

    path.write_text(RELOAD_V1.replace("version one", "version two").replace("code: -1", "code: -2"), encoding="utf-8")
    _touch_later(path, 5)
    assert engine.reload_changed() == ["live"]
    assert client.dm_recommend(uid="hot") == {"request_id": client.journal()[-1]["body"]["request_id"], "code": -2,
                                              "msg": "version two"}
    assert engine.reload_changed() == []


def test_reload_keeps_the_previous_version_when_the_edit_does_not_lint(serve, tmp_path):
    path = write(tmp_path, RELOAD_V1, "live.yaml")
    client = serve(str(path))
    engine = client.service.scenarios
    path.write_text(RELOAD_V1.replace("code: -1", "cod: -1"), encoding="utf-8")
    _touch_later(path, 5)
    assert engine.reload_changed() == []
    assert client.dm_recommend(uid="hot")["msg"] == "version one"
    path.write_text("name: live\nrules: [\n", encoding="utf-8")  # not even YAML
    _touch_later(path, 10)
    assert engine.reload_changed() == []
    assert client.dm_recommend(uid="hot")["msg"] == "version one"
    path.write_text(RELOAD_V1.replace("version one", "fixed"), encoding="utf-8")
    _touch_later(path, 15)
    assert engine.reload_changed() == ["live"]
    assert client.dm_recommend(uid="hot")["msg"] == "fixed"


def test_reload_applies_new_fixtures_and_rules(serve, tmp_path):
    path = write(tmp_path, RELOAD_V1, "live.yaml")
    client = serve(str(path))
    path.write_text(RELOAD_V1 + """\
  - name: new rule
    when: {match: {uid: fresh}}
    then: {code: -3, msg: added}
fixtures:
  items:
    - {bid: b_demo, item_id: reloaded, pool_id: p1}
""", encoding="utf-8")
    _touch_later(path, 5)
    assert client.service.scenarios.reload_changed() == ["live"]
    assert client.dm_recommend(uid="fresh")["msg"] == "added"
    assert client.dm_ids(uid="someone") == ["reloaded"]
