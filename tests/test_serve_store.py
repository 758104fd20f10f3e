"""Serving over real HTTP (issue 3): the documents' examples, and what the store keeps.

Upsert, publish/off-shelf, expiry with each dialect's default, pool filtering with each dialect's
separators, the global pool, cre test/production namespaces and dm per-bid data.
"""

from __future__ import annotations

import copy

import pytest

import mockcre
from mockcre.contracts import validate
from mockcre.common.resources import load_schema

from httpkit import DAY, NOW, Client, client, cre_action, cre_item, dm_recommend, serve  # noqa: F401


def example(name: str) -> dict:
    return copy.deepcopy(load_schema(name)["examples"][0])


def errors(reply: dict, dialect: str, kind: str) -> list:
    return [v.to_dict() for v in validate(reply, dialect, kind=kind) if v.severity == "error"]


def test_create_app_is_exported():
    """interface.md: ``mockcre.create_app(config=None)`` → Flask app."""
    from mockcre.faces.app import create_app

    assert getattr(mockcre, "create_app", None) is create_app


# -- the documents' examples -----------------------------------------------------------------

def test_cre_examples_round_trip(client: Client):
    item, action, query = example("cre.item"), example("cre.action"), example("cre.query")
    for path in ("/upload", "/cre_test_upload"):
        for body in (item, action):
            reply = client.call(path, body)
            assert reply == {"seq_no": "1", "code": "0", "message": "success"}
            assert errors(reply, "cre", "upload-response") == []
    for path in ("/query", "/test-query"):
        reply = client.call(path, query)
        assert reply["code"] == "0"
        assert reply["seq_no"] == "987654321"
        assert reply["test_id"] == "123456789"  # echoes scn_id
        assert reply["abtag"] == "9003"  # ranking the given items
        assert list(reply["rec"]) == ["11016775"]  # the key is the request's pool_id
        assert sorted(e["id"] for e in reply["rec"]["11016775"]) == ["100", "101", "102"]  # exactly the ids asked for
        assert len(reply["trace_id"]) == 18 and reply["trace_id"].isdigit()
        assert errors(reply, "cre", "query-response") == []


def test_cre_example_item_is_stored_and_recommended(client: Client):
    client.ok("/upload", example("cre.item"))
    client.ok("/upload", example("cre.action"))
    query = example("cre.query")
    del query["pool"]
    query["pool_id"] = "1"  # the example item's pool
    reply = client.call("/query", query)
    assert reply["code"] == "0" and reply["message"] == "success"
    assert [e["id"] for e in reply["rec"]["1"]] == ["abcde"]
    assert errors(reply, "cre", "query-response") == []


def test_dm_examples_round_trip(serve):
    item, action, recommend = example("dm.item"), example("dm.action"), example("dm.recommend")
    live = int(item["item_time"]) + 3600  # the example item expires 1386917763: serve at a time it is live
    client = serve({"clock": lambda: live})
    for body in (item, action):
        reply = client.call("/dm/data", body)
        assert reply == {"request_id": "request_id", "code": 0, "msg": "true"}
        assert errors(reply, "dm", "report-response") == []
    # the example recommends on the detail page of its own item ("cid": "item_id"), which never appears:
    # with the example item alone the answer is the documented empty result
    reply = client.call("/dm/service", recommend)
    assert reply == {"request_id": "request_id", "code": -3, "msg": "empty result"}
    assert errors(reply, "dm", "error-response") == []
    # a second item in the same pools makes the same request a recommendation
    other = copy.deepcopy(item)
    other["item_id"] = "item_id1"
    client.ok("/dm/data", other)
    reply = client.call("/dm/service", recommend)
    assert reply["code"] == 0 and reply["request_id"] == "request_id"
    assert reply["scene_id"] == "1001"
    assert [e["item"] for e in reply["data"]] == ["item_id1"]
    assert reply["algid"] == 13  # "userId" has an action history: personalised, service_type 3
    assert errors(reply, "dm", "recommend-response") == []


def test_dm_recommend_example_on_empty_store(client: Client):
    reply = client.call("/dm/service", example("dm.recommend"))
    assert reply == {"request_id": "request_id", "code": -3, "msg": "empty result"}
    assert errors(reply, "dm", "error-response") == []


# -- upsert ----------------------------------------------------------------------------------

def test_cre_upsert_last_report_wins(client: Client):
    client.cre_items(cre_item("a", pool_id="p1"), cre_item("b", pool_id="p1"))
    assert sorted(client.cre_ids(pool="p1", pool_id="p1")) == ["a", "b"]
    client.cre_items(cre_item("a", pool_id="p2"))  # the same item reported again, other pool
    reply = client.cre_query(pool_id="p1,p2")
    assert [e["id"] for e in reply["rec"]["p1"]] == ["b"]
    assert [e["id"] for e in reply["rec"]["p2"]] == ["a"]
    assert sorted(client.cre_ids(pool="0")) == ["a", "b"]  # still one item "a" in the global pool


def test_dm_upsert_last_report_wins(client: Client):
    client.dm_item("a", pool_id="p1")
    client.dm_item("b", pool_id="p1")
    client.dm_item("a", pool_id="p2;p3")
    assert client.dm_ids(pool_id="p1") == ["b"]
    assert client.dm_ids(pool_id="p3") == ["a"]
    assert sorted(client.dm_ids(pool_id="0")) == ["a", "b"]


# -- publish ---------------------------------------------------------------------------------

def test_cre_off_shelf_and_back(client: Client):
    client.cre_items(cre_item("a"), cre_item("b"))
    client.cre_items(cre_item("a", publish="2"))
    assert client.cre_ids(pool="p1", pool_id="p1") == ["b"]
    assert client.cre_ids() == ["b"]  # gone from the global pool too
    client.cre_items(cre_item("a", publish="1"))
    assert sorted(client.cre_ids(pool="p1", pool_id="p1")) == ["a", "b"]


def test_dm_off_shelf_and_back(client: Client):
    client.dm_item("a")
    client.dm_item("b")
    client.dm_item("a", publish=0)
    assert client.dm_ids(pool_id="p1") == ["b"]
    assert client.dm_ids(pool_id="0") == ["b"]
    client.dm_item("b", publish=0)
    assert client.dm_recommend(pool_id="p1")["code"] == -3
    client.dm_item("a", publish=1)
    assert client.dm_ids(pool_id="p1") == ["a"]


def test_cre_publish_1_is_on_shelf(client: Client):
    """cre: "1" on shelf (the default), "2" off shelf."""
    client.cre_items(cre_item("a", publish="1"), cre_item("b"))
    assert sorted(client.cre_ids()) == ["a", "b"]


# -- expiry ----------------------------------------------------------------------------------

@pytest.fixture
def clocked(serve):
    """A server whose clock the test moves: ``client, now = clocked(); now[0] += DAY``."""

    def factory():
        now = [NOW]
        return serve({"clock": lambda: now[0]}), now

    return factory


def test_expired_items_are_never_returned(client: Client):
    client.cre_items(cre_item("old", item_time=str(NOW - 100), expire_time=str(NOW - 1)),
                     cre_item("new", item_time=str(NOW - 100), expire_time=str(NOW + 100)))
    assert client.cre_ids(pool="p1", pool_id="p1") == ["new"]
    assert client.cre_ids() == ["new"]
    client.dm_item("old", item_time=str(NOW - 100), expire_time=NOW - 1)
    client.dm_item("new", item_time=str(NOW - 100), expire_time=NOW + 100)
    assert client.dm_ids(pool_id="p1") == ["new"]
    # pool.items does not bring an expired item back either
    reply = client.cre_query(pool={"item_type": "1", "items": ["old", "new"]})
    assert [e["id"] for e in reply["rec"]["0"]] == ["new"]


def test_cre_default_expiry_is_item_time_plus_365_days(clocked):
    client, now = clocked()
    client.cre_items(cre_item("a"))  # item_time defaults to now, expire_time to item_time + 365 days
    client.cre_items(cre_item("b", item_time=str(NOW - 10 * DAY)))  # expires 10 days before "a"
    now[0] = NOW + 355 * DAY - 1
    assert sorted(client.cre_ids()) == ["a", "b"]
    now[0] = NOW + 355 * DAY
    assert client.cre_ids() == ["a"]
    now[0] = NOW + 365 * DAY - 1
    assert client.cre_ids() == ["a"]
    now[0] = NOW + 365 * DAY
    reply = client.cre_query()
    assert reply["rec"] == {"0": []} and reply["message"] == "empty result"


def test_dm_default_expiry_is_item_time_plus_30_days(clocked):
    client, now = clocked()
    client.dm_item("a")
    client.dm_item("b", item_time=str(NOW - DAY))
    now[0] = NOW + 29 * DAY - 1
    assert sorted(client.dm_ids()) == ["a", "b"]
    now[0] = NOW + 29 * DAY
    assert client.dm_ids() == ["a"]
    now[0] = NOW + 30 * DAY - 1
    assert client.dm_ids() == ["a"]
    now[0] = NOW + 30 * DAY
    assert client.dm_recommend()["code"] == -3


def test_default_expiry_differs_per_dialect(clocked):
    """31 days after upload: the cre item (one year) is still served, the dm item (one month) is not."""
    client, now = clocked()
    client.cre_items(cre_item("c"))
    client.dm_item("d")
    now[0] = NOW + 31 * DAY
    assert client.cre_ids() == ["c"]
    body = dm_recommend()
    assert client.call("/dm/service", body) == {"request_id": body["request_id"], "code": -3, "msg": "empty result"}


# -- pools -----------------------------------------------------------------------------------

@pytest.fixture
def pooled(client: Client) -> Client:
    """Items a (p1), b (p2), c (p1;p3), d (p4) in cre production and in dm bid b_demo."""
    layout = {"a": "p1", "b": "p2", "c": "p1;p3", "d": "p4"}
    client.cre_items(*(cre_item(i, pool_id=p) for i, p in layout.items()))
    for i, p in layout.items():
        client.dm_item(i, pool_id=p)
    return client


def test_cre_pool_filtering(pooled: Client):
    reply = pooled.cre_query(pool_id="p1")
    assert list(reply["rec"]) == ["p1"]
    assert sorted(e["id"] for e in reply["rec"]["p1"]) == ["a", "c"]
    reply = pooled.cre_query(pool_id="p1,p2")  # ASCII comma
    assert sorted(reply["rec"]) == ["p1", "p2"]
    assert sorted(e["id"] for e in reply["rec"]["p1"]) == ["a", "c"]
    assert [e["id"] for e in reply["rec"]["p2"]] == ["b"]
    reply = pooled.cre_query(pool_id="p3，p4")  # full-width comma, as the document's example writes
    assert sorted(reply["rec"]) == ["p3", "p4"]
    assert [e["id"] for e in reply["rec"]["p3"]] == ["c"]
    assert [e["id"] for e in reply["rec"]["p4"]] == ["d"]
    reply = pooled.cre_query(pool_id="p9")
    assert reply["rec"] == {"p9": []}


def test_cre_pool_id_does_not_split_on_semicolon(pooled: Client):
    reply = pooled.cre_query(pool_id="p1;p2")
    assert reply["rec"] == {"p1;p2": []}


def test_dm_pool_filtering(pooled: Client):
    assert sorted(pooled.dm_ids(pool_id="p1")) == ["a", "c"]
    assert sorted(pooled.dm_ids(pool_id="p1;p2")) == ["a", "b", "c"]
    assert sorted(pooled.dm_ids(pool_id="p3;p4")) == ["c", "d"]
    assert pooled.dm_recommend(pool_id="p1,p2")["code"] == -3  # dm splits on ';' only
    assert pooled.dm_recommend(pool_id="p9")["code"] == -3


def test_global_pool_holds_every_item(pooled: Client):
    assert sorted(pooled.cre_ids(pool="0", pool_id="0")) == ["a", "b", "c", "d"]
    reply = pooled.cre_query()  # no pool_id: the global pool "0"
    assert list(reply["rec"]) == ["0"]
    assert sorted(e["id"] for e in reply["rec"]["0"]) == ["a", "b", "c", "d"]
    assert sorted(pooled.dm_ids(pool_id="0")) == ["a", "b", "c", "d"]
    body = dm_recommend()
    del body["pool_id"]  # lenient: pool_id defaults to "0" with a warning
    reply = pooled.call("/dm/service", body)
    assert sorted(e["item"] for e in reply["data"]) == ["a", "b", "c", "d"]


# -- partitions ------------------------------------------------------------------------------

def test_cre_test_and_production_are_separate(client: Client):
    client.cre_items(cre_item("t", pool_id="p1"), path="/cre_test_upload")
    client.cre_items(cre_item("p", pool_id="p1"), path="/upload")
    assert client.cre_ids(path="/test-query") == ["t"]
    assert client.cre_ids(path="/query") == ["p"]
    assert client.cre_ids(pool="p1", pool_id="p1", path="/test-query") == ["t"]
    assert client.cre_ids(pool="p1", pool_id="p1", path="/query") == ["p"]


def test_cre_test_upload_alone_leaves_production_empty(client: Client):
    client.cre_items(cre_item("t"), path="/cre_test_upload")
    reply = client.cre_query(path="/query")
    assert reply["rec"] == {"0": []} and reply["message"] == "empty result"
    reply = client.cre_query(path="/test-query")
    assert [e["id"] for e in reply["rec"]["0"]] == ["t"] and reply["message"] == "success"


def test_cre_actions_are_kept_per_namespace(client: Client):
    client.cre_items(cre_item("a"), cre_item("b"), path="/upload")
    client.cre_items(cre_item("a"), cre_item("b"), path="/cre_test_upload")
    client.cre_actions(cre_action("u9", "102", ["b"]), cre_action("u9", "102", ["b"]), path="/cre_test_upload")
    client.cre_actions(cre_action("u9", "102", ["a"]), path="/upload")
    assert client.cre_ids(path="/test-query")[0] == "b"
    assert client.cre_ids(path="/query")[0] == "a"


def test_dm_data_is_kept_per_bid(client: Client):
    client.dm_item("x", bid="bid_a")
    client.dm_item("y", bid="bid_b")
    assert client.dm_ids(bid="bid_a") == ["x"]
    assert client.dm_ids(bid="bid_b") == ["y"]
    assert client.dm_recommend(bid="bid_c")["code"] == -3


def test_cre_and_dm_do_not_share_items(client: Client):
    client.cre_items(cre_item("only-cre"))
    assert client.dm_recommend()["code"] == -3
    client.dm_item("only-dm")
    assert client.cre_ids() == ["only-cre"]
    assert client.dm_ids() == ["only-dm"]


def test_reset_empties_the_store(client: Client):
    client.cre_items(cre_item("a"))
    client.dm_item("a")
    assert client.session.post(client.url + "/__admin/reset", timeout=10).json() == {"status": "ok"}
    assert client.cre_query()["rec"] == {"0": []}
    assert client.dm_recommend()["code"] == -3
    assert len(client.journal()) == 2  # only the two recommendation requests after the reset
