"""The admin API under /__admin: health, journal, reset, scenarios, state, and the admin token."""

from __future__ import annotations

import json

import pytest
import requests

from mockcre.faces import cli
from mockcre.faces.app import create_app
from mockcre.faces.server import ThreadedServer

TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"


def items_body(*item_ids, pool="p1", seq="1"):
    return {"version": "1", "seq_no": seq, "data_type": "1", "token": TOKEN,
            "data": [{"busi_id": "1", "test_id": "1", "item_id": i, "pool_id": pool, "describe": i} for i in item_ids]}


def action_body(uid, *item_ids, action="102"):
    return {"version": "1", "seq_no": "2", "data_type": "2", "token": TOKEN, "data": [
        {"uid_type": "2", "uid": uid, "oper_time": "1700000000", "source": "1", "action_id": action, "busi_id": "1",
         "item_action": [{"item_id": i} for i in item_ids]}]}


def query_body(uid):
    return {"seq_no": "3", "token": TOKEN, "proj_id": "1", "scn_id": "1", "uid_type": "2", "user_id": uid,
            "pool_id": "p1"}


SCENARIO_YAML = """\
name: busy
description: the first query fails
rules:
  - name: first query is busy
    when: {endpoint: cre.query, times: 1}
    then: {code: -2, msg: system busy}
"""


@pytest.fixture
def app():
    return create_app()


@pytest.fixture
def client(app):
    return app.test_client()


def test_health(client):
    reply = client.get("/__admin/health")
    assert reply.status_code == 200 and reply.get_json() == {"status": "ok"}


def test_unknown_admin_path_and_wrong_method_are_json(client):
    assert client.get("/__admin/nothing-here").get_json()["status"] == 404
    reply = client.put("/__admin/journal")
    assert reply.status_code == 405 and reply.is_json


# -- journal -----------------------------------------------------------------------------------


def test_journal_get_with_filters_and_delete(client):
    client.post("/upload", json=items_body("a1", "a2"))
    client.post("/upload", json=action_body("u1", "a1"))
    client.post("/query", json=query_body("u2"))
    client.post("/upload", json={"data_type": "1", "data": [{"item_id": "broken"}]})

    everything = client.get("/__admin/journal").get_json()
    assert everything["count"] == 4 and [e["seq"] for e in everything["entries"]] == [1, 2, 3, 4]
    assert everything["size"] == 10_000 and everything["recorded"] == 4

    def seqs(query):
        reply = client.get("/__admin/journal?" + query)
        assert reply.status_code == 200, reply.get_json()
        return [e["seq"] for e in reply.get_json()["entries"]]

    assert seqs("endpoint=cre.query") == [3]
    assert seqs("endpoint=cre.query,cre.upload&kind=item") == [1, 4]
    assert seqs("endpoint=cre.query&endpoint=cre.upload&limit=2") == [3, 4]
    assert seqs("user=u1") == [2] and seqs("user=u2") == [3]
    assert seqs("item=a1") == [1, 2] and seqs("item=broken") == [4]
    assert seqs("has_violations=1") == [4] and seqs("has_violations=false") == [1, 2, 3]
    assert seqs("has_errors=yes") == [4] and seqs("after_seq=2") == [3, 4]
    first = everything["entries"][0]["time"]
    assert seqs(f"since={first}&until={first}") == [1]
    assert seqs("since=2000-01-01T00:00:00Z") == [1, 2, 3, 4] and seqs("until=2000-01-01T00:00:00") == []

    assert client.delete("/__admin/journal").get_json() == {"status": "ok"}
    assert client.get("/__admin/journal").get_json()["count"] == 0


@pytest.mark.parametrize("query", ["has_violations=maybe", "limit=many", "since=yesterday", "after_seq=-1"])
def test_journal_bad_parameters_are_400(client, query):
    reply = client.get("/__admin/journal?" + query)
    assert reply.status_code == 400 and reply.get_json()["error"] == "Bad Request"
    assert query.split("=")[0] in reply.get_json()["message"] or "expected" in reply.get_json()["message"]


# -- reset and scenarios -----------------------------------------------------------------------


def test_reset_empties_store_and_journal(client):
    client.post("/upload", json=items_body("a1"))
    assert client.post("/__admin/reset").get_json() == {"status": "ok"}
    assert client.get("/__admin/journal").get_json()["count"] == 0
    assert client.get("/__admin/state").get_json()["partitions"] == []


def test_scenarios_load_list_and_unload(client):
    assert client.get("/__admin/scenarios").get_json() == {"scenarios": []}
    reply = client.post("/__admin/scenarios", data=SCENARIO_YAML, content_type="application/yaml")
    assert reply.status_code == 201 and reply.get_json()["name"] == "busy"
    as_json = {"name": "calm", "rules": [{"when": {"endpoint": "dm.service"}, "then": {"code": -3}}]}
    reply = client.post("/__admin/scenarios", data=json.dumps(as_json), content_type="application/json")
    assert reply.status_code == 201 and reply.get_json()["name"] == "calm"
    listed = client.get("/__admin/scenarios").get_json()["scenarios"]
    assert sorted(s["name"] for s in listed) == ["busy", "calm"]

    assert client.post("/query", json=query_body("u1")).get_json()["code"] == "-2"  # the rule answers
    assert client.post("/query", json=query_body("u1")).get_json()["code"] == "0"  # times: 1 used up

    reply = client.delete("/__admin/scenarios?name=nope")
    assert reply.status_code == 404 and "busy" in reply.get_json()["loaded"]
    assert client.delete("/__admin/scenarios?name=calm").get_json()["unloaded"] == ["calm"]
    assert [s["name"] for s in client.get("/__admin/scenarios").get_json()["scenarios"]] == ["busy"]
    assert client.delete("/__admin/scenarios").get_json()["unloaded"] == ["busy"]
    assert client.get("/__admin/scenarios").get_json() == {"scenarios": []}


@pytest.mark.parametrize("body", [
    "rules: []\n",  # no name
    "name: x\nrules:\n  - when: {endpoint: nowhere}\n    then: {code: -2}\n",
    "name: [unclosed\n",  # not YAML
    "- just\n- a list\n",
    "/etc/hostname",  # a path is never read from the server's disk
    "nosuch.yaml",  # a bare name loads only a bundled scenario (issue 14); the problem lists them
    "",
])
def test_a_bad_scenario_is_400_with_the_problems(client, body):
    reply = client.post("/__admin/scenarios", data=body, content_type="application/yaml")
    assert reply.status_code == 400
    problems = reply.get_json()["problems"]
    assert problems and all(isinstance(p, str) and p for p in problems)
    assert client.get("/__admin/scenarios").get_json() == {"scenarios": []}


def test_reset_restarts_scenarios_and_keeps_them_unless_asked(client):
    client.post("/__admin/scenarios", data=SCENARIO_YAML)
    assert client.post("/query", json=query_body("u1")).get_json()["code"] == "-2"
    client.post("/__admin/reset")
    assert client.post("/query", json=query_body("u1")).get_json()["code"] == "-2"  # counters restarted
    assert [s["name"] for s in client.get("/__admin/scenarios").get_json()["scenarios"]] == ["busy"]
    client.post("/__admin/reset?scenarios=1")
    assert client.get("/__admin/scenarios").get_json() == {"scenarios": []}
    assert client.post("/query", json=query_body("u1")).get_json()["code"] == "0"


# -- state -------------------------------------------------------------------------------------


def test_state_shows_a_dm_record_without_its_signature(client):
    md5 = "0123456789abcdef0123456789abcdef"
    body = {"request_id": "1767830400000_1", "data_type": 1, "bid": "b1", "MD5": md5, "item_id": "d1", "tags": "a"}
    assert client.post("/dm/data", json=body).get_json()["code"] == 0
    state = client.get("/__admin/state?partition=dm:b1").get_json()["partitions"][0]
    assert state["items"]["d1"]["record"] == {**body, "MD5": "0123…"}
    assert md5 not in json.dumps(state)


def test_state_groups_items_by_pool_and_lists_users_with_actions(client):
    client.post("/upload", json=items_body("a1", "a2", pool="p1"))
    client.post("/upload", json=items_body("b1", pool="p2"))
    client.post("/upload", json=action_body("u1", "a1", "b1"))
    client.post("/cre_test_upload", json=items_body("t1"))

    state = client.get("/__admin/state").get_json()
    assert state["next_offset"] is None and state["offset"] == 0 and state["limit"] == 100
    prod, test = state["partitions"]
    assert prod["partition"] == ["cre", "prod"] and test["partition"] == ["cre", "test"]
    assert prod["totals"] == {"items": 3, "users": 1, "actions": 2, "pools": 3}
    assert prod["pools"] == {"0": {"size": 3, "items": ["a1", "a2", "b1"]}, "p1": {"size": 2, "items": ["a1", "a2"]},
                             "p2": {"size": 1, "items": ["b1"]}}
    assert prod["items"]["a1"]["pools"] == ["0", "p1"] and prod["items"]["a1"]["on_shelf"] is True
    assert prod["items"]["a1"]["record"]["describe"] == "a1" and prod["items"]["a1"]["popularity"] > 0
    user = prod["users"]["u1"]
    assert user["action_count"] == 2 and [a["item_id"] for a in user["actions"]] == ["a1", "b1"]
    assert user["actions"][0]["action"] == "102" and set(user["items"]) == {"a1", "b1"}

    only = client.get("/__admin/state?partition=cre:test").get_json()["partitions"]
    assert [p["partition"] for p in only] == [["cre", "test"]]
    pool = client.get("/__admin/state?partition=cre:prod&pool=p2").get_json()["partitions"][0]
    assert list(pool["pools"]) == ["p2"] and list(pool["items"]) == ["b1"]
    item = client.get("/__admin/state?partition=cre:prod&item=a2").get_json()["partitions"][0]
    assert list(item["items"]) == ["a2"] and item["pools"]["p1"]["items"] == ["a2"]
    user = client.get("/__admin/state?user=u1&actions=1").get_json()["partitions"][0]["users"]["u1"]
    assert [a["item_id"] for a in user["actions"]] == ["b1"]


def test_state_is_paginated(client):
    ids = [f"i{n:02d}" for n in range(25)]
    client.post("/upload", json=items_body(*ids))
    for uid in ("u1", "u2", "u3"):
        client.post("/upload", json=action_body(uid, "i00"))

    pages, offset = [], 0
    while offset is not None:
        page = client.get(f"/__admin/state?limit=10&offset={offset}").get_json()
        pages.append(page["partitions"][0])
        offset = page["next_offset"]
    assert len(pages) == 3
    assert [list(p["items"]) for p in pages] == [ids[:10], ids[10:20], ids[20:]]
    assert [p["pools"]["p1"]["items"] for p in pages] == [ids[:10], ids[10:20], ids[20:]]
    assert list(pages[0]["users"]) == ["u1", "u2", "u3"] and pages[1]["users"] == {}
    assert all(p["totals"]["items"] == 25 and p["pools"]["p1"]["size"] == 25 for p in pages)


@pytest.mark.parametrize("query", ["limit=0", "limit=1001", "offset=-3", "partition=creprod", "actions=x"])
def test_state_bad_parameters_are_400(client, query):
    reply = client.get("/__admin/state?" + query)
    assert reply.status_code == 400 and reply.is_json


# -- the admin token ---------------------------------------------------------------------------


def test_with_a_token_every_admin_call_needs_it():
    client = create_app({"admin_token": "s3cret"}).test_client()
    for method, path in [("get", "/__admin/health"), ("get", "/__admin/journal"), ("delete", "/__admin/journal"),
                         ("post", "/__admin/reset"), ("get", "/__admin/state"), ("get", "/__admin/scenarios"),
                         ("get", "/__admin/"), ("get", "/__admin/report")]:  # the dashboard too
        reply = getattr(client, method)(path)
        assert reply.status_code == 401, path
        assert reply.get_json()["error"] == "Unauthorized" and "Bearer" in reply.headers["WWW-Authenticate"]
        for wrong in ("Bearer s3cre", "Bearer s3cret2", "Basic s3cret", "s3cret", "Bearer "):
            assert getattr(client, method)(path, headers={"Authorization": wrong}).status_code == 401, (path, wrong)
        assert getattr(client, method)(path, headers={"Authorization": "Bearer s3cret"}).status_code == 200, path
    # the API itself never needs the admin token
    assert client.post("/upload", json=items_body("a1")).get_json()["code"] == "0"


def test_a_server_on_0_0_0_0_needs_a_token():
    with pytest.raises(ValueError, match="admin token"):
        ThreadedServer(create_app(), host="0.0.0.0")


def test_a_server_on_0_0_0_0_enforces_the_token_reached_through_loopback():
    with ThreadedServer(create_app({"admin_token": "s3cret"}), host="0.0.0.0") as server:
        assert server.url.startswith("http://127.0.0.1:")  # tests only ever call loopback
        health = server.url + "/__admin/health"
        assert requests.get(health, timeout=5).status_code == 401
        assert requests.get(health, headers={"Authorization": "Bearer nope"}, timeout=5).status_code == 401
        reply = requests.get(health, headers={"Authorization": "Bearer s3cret"}, timeout=5)
        assert reply.status_code == 200 and reply.json() == {"status": "ok"}


def test_serve_refuses_a_public_host_without_a_token(capsys):
    assert cli.main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2
    assert "--admin-token" in capsys.readouterr().err
