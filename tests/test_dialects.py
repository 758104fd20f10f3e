"""The Dialect interface: both adapters answer the same questions, each in its own wire format."""

from __future__ import annotations

import pytest

from mockcre.dialects import DIALECTS, RECORD_PATHS
from mockcre.dialects.base import Dialect
from mockcre.common.domain import PATHS
from mockcre.model.recommend import Ranking

CRE_QUERY = {"seq_no": "7", "token": "t", "proj_id": "p", "scn_id": "s", "uid_type": "5", "user_id": "u1",
             "pool_id": "p1，p2,p1"}
DM_RECOMMEND = {"MD5": "0" * 32, "request_id": "1700000000000_001", "bid": "b", "uid": "u1", "scene_id": "s",
                "pool_id": "p1;p2", "request_num": 500}


@pytest.mark.parametrize("name", ["cre", "dm"])
def test_both_adapters_are_dialects_of_every_path(name):
    adapter = DIALECTS[name]
    assert isinstance(adapter, Dialect) and adapter.name == name
    assert set(adapter.routes) <= set(PATHS.values())
    for route in adapter.routes.values():
        for kind in route.kinds:
            assert adapter.endpoint_for(kind) in PATHS.values()


def test_cre_ranks_each_pool_and_dm_one_list():
    cre, dm = DIALECTS["cre"], DIALECTS["dm"]
    assert list(cre.rankings_wanted(cre.rec_request(CRE_QUERY), CRE_QUERY)) == ["p1", "p2"]
    assert list(dm.rankings_wanted(dm.rec_request(DM_RECOMMEND), DM_RECOMMEND)) == ["p1;p2"]


@pytest.mark.parametrize("name, body, endpoint", [("cre", CRE_QUERY, "cre.query"), ("dm", DM_RECOMMEND, "dm.service")])
def test_recommended_takes_the_same_arguments_and_its_lists_read_back(name, body, endpoint):
    adapter = DIALECTS[name]
    req = adapter.rec_request(body)
    rankings = {key: Ranking([("i1", 2.0), ("i2", 1.0)], True) for key in adapter.rankings_wanted(req, body)}
    reply = adapter.recommended(body, req, rankings, "123")
    assert reply[adapter.echo_field] == body[adapter.echo_field]
    assert adapter.reply_kind(endpoint, reply) == adapter.routes[endpoint].reply_kind
    assert all([item for item, _ in ranked] == ["i1", "i2"] for ranked in adapter.ranked_lists(body, reply).values())


def test_error_replies_are_judged_as_the_error_envelope():
    for adapter in DIALECTS.values():
        endpoint = adapter.endpoint_for("item")
        assert adapter.reply_kind(endpoint, adapter.error(None, -1, "bad")) == adapter.error_kind
        assert adapter.reply_kind(endpoint, adapter.accepted({})) == adapter.routes[endpoint].reply_kind


def test_only_dm_limits_request_num():
    assert DIALECTS["dm"].beyond_limit(DM_RECOMMEND) == 500
    assert DIALECTS["dm"].beyond_limit({**DM_RECOMMEND, "request_num": 200}) is None
    assert DIALECTS["cre"].beyond_limit({**CRE_QUERY, "request_num": "500"}) is None


def test_record_paths_are_cre_batches():
    assert RECORD_PATHS == ("data[*]", "data[*].item_action[*]")


def test_reported_actions_keep_their_record_and_claims():
    body = {"version": "1", "data_type": "2", "token": "t", "data": [
        {"uid": "u", "uid_type": "5", "oper_time": "1700000000", "source": "0", "test_id": "s", "rule_id": "9001",
         "action_id": "101", "item_action": [{"item_id": "a", "trace_id": "t1"}, {"item_id": "b"}]},
        {"uid": "u", "uid_type": "5", "oper_time": "x", "source": "1", "action_id": "109", "item_action": [{"item_id": "a"}]},
    ]}
    first, second, third = DIALECTS["cre"].reported_actions(body, None)
    assert (first.kind, first.trace, first.record, first.claims) == ("exposure", "t1", 0, (("test_id", "s"), ("rule_id", "9001")))
    assert (second.position, second.trace) == (1, None)
    assert (third.kind, third.time, third.record, third.claims) == ("other", None, 1, ())

