"""Serving over real HTTP (issue 3): how recommendations are ranked and answered.

The "How recommendations are ranked" table of docs/performance.md, request_num limits, determinism, reply
shapes (cre scores, dm weights and algid), empty results and dm's ``POST /`` routing.
"""

from __future__ import annotations

import pytest

from mockcre.contracts import validate

from httpkit import (Client, client, cre_action, cre_item, dm_action, dm_item, dm_recommend, serve,  # noqa: F401
                     start, stop_soon)


def errors(reply: dict, dialect: str, kind: str) -> list:
    return [v.to_dict() for v in validate(reply, dialect, kind=kind) if v.severity == "error"]


# -- popularity and cold start ---------------------------------------------------------------

@pytest.fixture
def clicked(client: Client) -> Client:
    """Items a, b, c, d in pool p1 in both dialects; b clicked 3 times, c twice, d once, a never."""
    client.cre_items(*(cre_item(i) for i in "abcd"))
    for i in "abcd":
        client.dm_item(i)
    for n, item in ((3, "b"), (2, "c"), (1, "d")):
        for k in range(n):
            client.cre_actions(cre_action(f"crowd{k}", "102", [item]))
            client.dm_action(f"crowd{k}", 2, [item])
    return client


def test_cre_cold_start_ranks_most_clicked_first(clicked: Client):
    reply = clicked.cre_query(user_id="")
    assert [e["id"] for e in reply["rec"]["0"]] == ["b", "c", "d", "a"]
    assert reply["abtag"] == "9002"  # cold start
    reply = clicked.cre_query(user_id="never-seen")  # an unknown user is a cold start too
    assert [e["id"] for e in reply["rec"]["0"]] == ["b", "c", "d", "a"]
    assert reply["abtag"] == "9002"


def test_dm_cold_start_ranks_most_clicked_first(clicked: Client):
    reply = clicked.dm_recommend(uid="never-seen")
    assert [e["item"] for e in reply["data"]] == ["b", "c", "d", "a"]
    assert reply["algid"] == 19  # personalised request that fell back to cold start


def test_exposures_count_less_than_clicks(client: Client):
    client.cre_items(cre_item("seen"), cre_item("clicked"))
    for k in range(4):  # 4 exposures (weight 1 each) < 1 click (weight 5)
        client.cre_actions(cre_action(f"v{k}", "101", ["seen"]))
    client.cre_actions(cre_action("v9", "102", ["clicked"]))
    assert client.cre_ids() == ["clicked", "seen"]


# -- the user's taste ------------------------------------------------------------------------

@pytest.fixture
def tasted(client: Client) -> Client:
    """Shoes s1, s2 and hats h1..h4, each clicked once by the crowd; "fan" clicked s1 (a shoe)."""
    items = {"s1": "shoes", "s2": "shoes", "h1": "hats", "h2": "hats", "h3": "hats", "h4": "hats"}
    client.cre_items(*(cre_item(i, tags={tag: "1"}) for i, tag in items.items()))
    for i, tag in items.items():
        client.dm_item(i, tags=[tag])
    for i in items:
        if i != "s1":
            client.cre_actions(cre_action("crowd", "102", [i]))
            client.dm_action("crowd", 2, [i])
    client.cre_actions(cre_action("fan", "102", ["s1"]))
    client.dm_action("fan", 2, ["s1"])
    return client


def test_cre_tag_history_lifts_that_tags_items(tasted: Client):
    reply = tasted.cre_query(user_id="fan")
    ids = [e["id"] for e in reply["rec"]["0"]]
    assert sorted(ids[:2]) == ["s1", "s2"]  # every item equally popular: the shoes first
    assert sorted(ids[2:]) == ["h1", "h2", "h3", "h4"]
    assert reply["abtag"] == "9001"  # personalised
    scores = {e["id"]: float(e["score"]) for e in reply["rec"]["0"]}
    assert scores["s1"] == scores["s2"] > scores["h1"] == scores["h4"]
    # for a cold start the same items are equally relevant: the lift came from fan's taste
    cold = tasted.cre_query(user_id="")["rec"]["0"]
    assert len({e["score"] for e in cold}) == 1 and len(cold) == 6


def test_dm_tag_history_lifts_that_tags_items(tasted: Client):
    reply = tasted.dm_recommend(uid="fan")
    ids = [e["item"] for e in reply["data"]]
    assert sorted(ids[:2]) == ["s1", "s2"]
    assert reply["algid"] == 13  # personalised, service_type 3


# -- purchases -------------------------------------------------------------------------------

def test_cre_purchased_items_are_not_recommended_again(clicked: Client):
    clicked.cre_actions(cre_action("buyer", "123", ["b"]))  # 购买
    assert "b" not in clicked.cre_ids(user_id="buyer")
    assert clicked.cre_ids(user_id="")[0] == "b"  # others still get it
    clicked.cre_actions(cre_action("payer", "109", ["c"]))  # 支付 counts as bought too
    assert "c" not in clicked.cre_ids(user_id="payer")
    clicked.cre_actions(cre_action("buyer", "124", ["b"]))  # 取消购买 cancels the purchase
    assert "b" in clicked.cre_ids(user_id="buyer")


def test_dm_purchased_items_are_not_recommended_again(clicked: Client):
    clicked.dm_action("buyer", 3, ["b", "c"])  # conversion (购买) of two items
    assert clicked.dm_ids(uid="buyer") == ["d", "a"]
    assert clicked.dm_ids(uid="someone-else")[0] == "b"


# -- dm detail page (cid) --------------------------------------------------------------------

def test_dm_cid_excludes_current_item_and_ranks_similar_first(client: Client):
    client.dm_item("x", tags=["t1", "t2"])
    client.dm_item("w", tags=["t2", "t1"])  # shares two tags with x
    client.dm_item("y", tags=["t1"])  # shares one
    client.dm_item("z", tags=["t9"])  # shares none, but is the most popular
    for k in range(5):
        client.dm_action(f"c{k}", 2, ["z", "x"])
    assert client.dm_ids(uid="c0", cid="x") == ["w", "y", "z"]
    assert client.dm_ids(uid="nobody", cid="x") == ["w", "y", "z"]
    assert client.dm_ids(uid="c0")[:2] == ["x", "z"]  # without cid: popularity


def test_dm_cid_of_an_unknown_item_is_ignored(client: Client):
    client.dm_item("a")
    assert client.dm_ids(cid="nope") == ["a"]


def test_dm_cid_alone_in_pool_gives_empty_result(client: Client):
    client.dm_item("x")
    body = dm_recommend(cid="x")
    assert client.call("/dm/service", body) == {"request_id": body["request_id"], "code": -3, "msg": "empty result"}


# -- cre pool.items --------------------------------------------------------------------------

def test_cre_pool_items_ranks_exactly_the_given_ids(clicked: Client):
    reply = clicked.cre_query(pool={"item_type": "1", "items": ["a", "zz-unknown", "c"]}, pool_id="p1")
    assert list(reply["rec"]) == ["p1"]  # the rec key is the request's pool_id
    assert [e["id"] for e in reply["rec"]["p1"]] == ["c", "a", "zz-unknown"]  # c clicked; never-reported ids last
    assert reply["abtag"] == "9003"
    assert errors(reply, "cre", "query-response") == []


def test_cre_pool_items_default_key_and_integer_ids(clicked: Client):
    clicked.cre_items(cre_item(7), cre_item(8))
    clicked.cre_actions(cre_action("u", "102", [8]))
    reply = clicked.cre_query(pool={"item_type": "0", "items": [7, 8, 9]})
    assert list(reply["rec"]) == ["0"]
    assert [e["id"] for e in reply["rec"]["0"]] == ["8", "7", "9"]


def test_cre_pool_items_only_unknown_ids(client: Client):
    reply = client.cre_query(pool={"item_type": "1", "items": ["u1", "u2", "u3"]})
    assert sorted(e["id"] for e in reply["rec"]["0"]) == ["u1", "u2", "u3"]
    assert reply["message"] == "success"


def test_cre_pool_items_respects_request_num(clicked: Client):
    reply = clicked.cre_query(pool={"item_type": "1", "items": ["a", "b", "c", "d"]}, request_num=2)
    assert [e["id"] for e in reply["rec"]["0"]] == ["b", "c"]


# -- request_num -----------------------------------------------------------------------------

def test_cre_request_num_default_all_and_per_pool(client: Client):
    client.cre_items(*(cre_item(f"a{i:02}", pool_id="p1") for i in range(12)),
                     *(cre_item(f"b{i:02}", pool_id="p2") for i in range(7)))
    reply = client.cre_query(pool_id="p1,p2")
    assert (len(reply["rec"]["p1"]), len(reply["rec"]["p2"])) == (12, 7)
    assert len(client.cre_ids()) == 19
    reply = client.cre_query(pool_id="p1,p2", request_num=5)
    assert (len(reply["rec"]["p1"]), len(reply["rec"]["p2"])) == (5, 5)
    reply = client.cre_query(pool_id="p1,p2", request_num=10)
    assert (len(reply["rec"]["p1"]), len(reply["rec"]["p2"])) == (10, 7)
    full = client.cre_ids(pool="p1", pool_id="p1")
    assert client.cre_ids(pool="p1", pool_id="p1", request_num=3) == full[:3]  # the top N of the same ranking


@pytest.fixture(scope="module")
def many_dm():
    """A server with 205 dm items (module scope: 205 reports once); the lenient and strict clients on it."""
    lenient, strict = start(), start({"strict": True})
    try:
        for server in (lenient, strict):
            c = Client(server.url)
            for i in range(205):
                c.dm_item(f"i{i:03}")
        yield Client(lenient.url), Client(strict.url)
    finally:
        stop_soon(lenient)
        stop_soon(strict)


def test_dm_request_num_default_50(many_dm):
    lenient, _ = many_dm
    body = dm_recommend()
    assert "request_num" not in body
    reply = lenient.call("/dm/service", body)
    assert len(reply["data"]) == 50


def test_dm_request_num_limits(many_dm):
    lenient, _ = many_dm
    assert len(lenient.dm_ids(request_num=7)) == 7
    assert len(lenient.dm_ids(request_num=200)) == 200
    full = lenient.dm_ids(request_num=200)
    assert lenient.dm_ids(request_num=20) == full[:20]


def test_dm_request_num_over_200_lenient_gives_200_with_warning(many_dm):
    lenient, _ = many_dm
    body = dm_recommend(request_num=300)
    reply = lenient.call("/dm/service", body)
    assert reply["code"] == 0
    assert len(reply["data"]) == 200
    entry = [e for e in lenient.journal() if e["body"].get("request_id") == body["request_id"]][-1]
    rules = {(v["rule"], v["severity"]) for v in entry["violations"]}
    assert ("request-num-over-200", "warning") in rules
    assert entry["reply"] == reply


def test_dm_request_num_over_200_strict_is_format_error(many_dm):
    _, strict = many_dm
    body = dm_recommend(request_num=300)
    reply = strict.call("/dm/service", body)
    assert reply["code"] == -1 and reply["request_id"] == body["request_id"]
    assert "request_num" in reply["msg"]
    assert len(strict.dm_ids(request_num=200)) == 200  # strict still serves 200


# -- determinism and reply shapes ------------------------------------------------------------

def test_same_request_same_list(tasted: Client):
    first, second = tasted.cre_query(user_id="fan"), tasted.cre_query(user_id="fan")
    assert first["rec"] == second["rec"]
    assert first["trace_id"] != second["trace_id"]  # unique per request
    body = dm_recommend(uid="fan", request_id="1700000000000_777")
    assert tasted.call("/dm/service", body) == tasted.call("/dm/service", body)


def test_same_state_same_list_on_another_server(serve):
    """Two servers fed the same reports rank the same: nothing depends on timing or hash seeds."""
    lists = []
    for _ in range(2):
        c = serve()
        c.cre_items(*(cre_item(f"n{i}", tags=[f"t{i % 3}"]) for i in range(15)))
        c.cre_actions(cre_action("u", "102", ["n4", "n7"]), cre_action("v", "101", ["n1", "n2", "n3"]))
        lists.append((c.cre_ids(user_id="u"), c.cre_ids(user_id=""), c.cre_query(user_id="u")["trace_id"]))
    assert lists[0] == lists[1]


def test_trace_ids_follow_the_seed(serve):
    a, b, c = serve({"seed": 7}), serve({"seed": 7}), serve({"seed": 8})
    ta = [a.cre_query()["trace_id"] for _ in range(3)]
    tb = [b.cre_query()["trace_id"] for _ in range(3)]
    tc = [c.cre_query()["trace_id"] for _ in range(3)]
    assert ta == tb
    assert len(set(ta)) == 3
    assert ta != tc


def test_cre_scores_are_strings_non_increasing(tasted: Client):
    tasted.cre_actions(cre_action("x", "110", ["h3"]), cre_action("x", "101", ["h1"]))
    for user in ("fan", ""):
        reply = tasted.cre_query(user_id=user)
        scores = [e["score"] for e in reply["rec"]["0"]]
        assert len(scores) == 6
        assert all(isinstance(s, str) for s in scores)
        values = [float(s) for s in scores]
        assert values == sorted(values, reverse=True)
        assert values[0] > values[-1]
        assert errors(reply, "cre", "query-response") == []


def test_dm_weights_are_ints_in_range_non_increasing(tasted: Client):
    tasted.dm_action("x", 4, ["h3"])
    tasted.dm_action("x", 1, ["h1"])
    for uid in ("fan", "nobody"):
        reply = tasted.dm_recommend(uid=uid)
        weights = [e["weight"] for e in reply["data"]]
        assert len(weights) == 6
        assert all(type(w) is int and 0 <= w <= 1_000_000 for w in weights)
        assert weights == sorted(weights, reverse=True)
        assert weights[0] > weights[-1]
        assert all(isinstance(e["item"], str) for e in reply["data"])
        assert errors(reply, "dm", "recommend-response") == []


# -- dm service_type -------------------------------------------------------------------------

@pytest.fixture
def engaged(client: Client) -> Client:
    """dm items with distinct engagement, for the service_type variants (uid "viewer" has history).

    a: 10 exposures, no click          popularity 10, pCTR 1/12
    b: 1 exposure, 1 click             popularity 6,  pCTR 2/3
    c: nothing                         popularity 0,  pCTR 1/2
    Item scores: a 1, b 2, c 9 (item quality).
    """
    client.dm_item("a", score=1.0)
    client.dm_item("b", score=2.0)
    client.dm_item("c", score=9.0)
    client.dm_action("viewer", 1, ["a"] * 10)
    client.dm_action("viewer", 1, ["b"])
    client.dm_action("viewer", 2, ["b"])
    return client


@pytest.mark.parametrize("service_type, algid, order", [
    (0, 10, ["b", "c", "a"]),  # pCTR: (clicks+1)/(exposures+2)
    (1, 11, ["a", "b", "c"]),  # traffic: popularity only
    (4, 14, ["c", "b", "a"]),  # item quality: item score
])
def test_dm_service_type_variants(engaged: Client, service_type, algid, order):
    reply = engaged.dm_recommend(uid="someone", service_type=service_type)
    assert reply["algid"] == algid
    assert [e["item"] for e in reply["data"]] == order
    assert errors(reply, "dm", "recommend-response") == []


def test_dm_service_type_3_personalised_and_cold_start(engaged: Client):
    assert engaged.dm_recommend(uid="viewer", service_type=3)["algid"] == 13
    assert engaged.dm_recommend(uid="someone", service_type=3)["algid"] == 19
    body = dm_recommend(uid="viewer")
    del body["service_type"]  # lenient: defaults to 3
    assert engaged.call("/dm/service", body)["algid"] == 13
    assert engaged.dm_recommend(uid="viewer", service_type=2)["algid"] == 12


def test_dm_pcvr_follows_documented_formula(client: Client):
    """docs/performance.md: 2 pCVR = (conversions+1)/(clicks+2) (algid 12).

    p: no clicks, no conversions       (0+1)/(0+2) = 0.5
    r: 4 clicks, no conversion         (0+1)/(4+2) = 0.17
    so p ranks above r (popularity alone would put r first).
    """
    client.dm_item("p")
    client.dm_item("r")
    for k in range(4):
        client.dm_action(f"clicker{k}", 2, ["r"])
    reply = client.dm_recommend(uid="someone", service_type=2)
    assert reply["algid"] == 12
    assert [e["item"] for e in reply["data"]] == ["p", "r"]
    popular = client.dm_recommend(uid="someone", service_type=1)
    assert [e["item"] for e in popular["data"]] == ["r", "p"]


# -- empty results ---------------------------------------------------------------------------

def test_dm_empty_result_is_code_minus_3(client: Client):
    body = dm_recommend(pool_id="nothing-here")
    reply = client.call("/dm/service", body)
    assert reply == {"request_id": body["request_id"], "code": -3, "msg": "empty result"}
    assert errors(reply, "dm", "error-response") == []


def test_cre_empty_result_is_code_0_with_empty_lists(client: Client):
    client.cre_items(cre_item("a", pool_id="p1"))
    reply = client.cre_query(pool_id="p7，p8", seq_no="55")
    assert reply["code"] == "0"
    assert reply["message"] == "empty result"
    assert reply["seq_no"] == "55"
    assert reply["rec"] == {"p7": [], "p8": []}
    assert errors(reply, "cre", "query-response") == []
    reply = client.cre_query(pool_id="p1,p8")  # one pool empty, one not: a result
    assert reply["message"] == "success" and reply["rec"]["p8"] == [] and len(reply["rec"]["p1"]) == 1


# -- POST / (the real dm hosts) --------------------------------------------------------------

def test_root_routed_by_host_header(client: Client):
    item = dm_item("r1")
    reply = client.call("/", item, headers={"Host": "data.dm.qcloud.com:8088"})
    assert reply == {"request_id": item["request_id"], "code": 0, "msg": "true"}
    assert client.last_entry()["endpoint"] == "dm.data"
    rec = dm_recommend()
    reply = client.call("/", rec, headers={"Host": "service.dm.qcloud.com"})
    assert reply["code"] == 0 and [e["item"] for e in reply["data"]] == ["r1"]
    assert client.last_entry()["endpoint"] == "dm.service"
    # the Host decides over the body: an item report sent to the service host is the wrong kind there
    item2 = dm_item("r2")
    reply = client.call("/", item2, headers={"Host": "service.dm.qcloud.com"})
    assert reply["code"] == -1 and reply["request_id"] == item2["request_id"]
    assert "data_type" in reply["msg"]
    assert client.dm_ids() == ["r1"]
    # and a recommendation sent to the data host has no data_type
    rec2 = dm_recommend()
    reply = client.call("/", rec2, headers={"Host": "data.dm.qcloud.com"})
    assert reply["code"] == -1 and reply["request_id"] == rec2["request_id"]
    assert "data_type" in reply["msg"]


def test_root_routed_by_body_on_other_hosts(client: Client):
    item = dm_item("r1")
    assert client.call("/", item) == {"request_id": item["request_id"], "code": 0, "msg": "true"}
    assert client.last_entry()["endpoint"] == "dm.data"
    action = dm_action("u", 2, ["r1"])
    assert client.call("/", action) == {"request_id": action["request_id"], "code": 0, "msg": "true"}
    assert client.last_entry()["kind"] == "action"
    rec = dm_recommend(uid="u")
    reply = client.call("/", rec, headers={"Host": "localhost"})
    assert reply["code"] == 0 and [e["item"] for e in reply["data"]] == ["r1"]
    assert client.last_entry()["endpoint"] == "dm.service"
