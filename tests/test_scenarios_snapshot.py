"""A reset restores a snapshot of the scenarios' fixtures (issue 23, point 5): exactly a fresh load.

Each test compares what a client sees after a fresh load (``state()``, recommendations over HTTP)
with what it sees after writes and a reset, twice: the first reset reports the fixtures and takes
the snapshot, the second copies it back. Also with a scenario ``clock:``, ``--state`` and the journal.
"""

from __future__ import annotations

import copy

import requests
from sortedcontainers import SortedList

from mockcre.testing import MockcreServer

from mockcre.faces.admin import snapshot

from httpkit import cre_action, cre_item, cre_query, cre_upload, fixed_clock, start, stop_soon

SHOPPERS = ("shopper001", "shopper017", "newcomer")
CLOCKED = {
    "name": "clocked",
    "clock": "2030-01-01T00:00:00Z",
    "fixtures": {"items": [
        {"busi_id": "1", "test_id": "1", "item_id": "fresh", "pool_id": "p", "expire_time": "1893456060"},
        {"busi_id": "1", "test_id": "1", "item_id": "lasting", "pool_id": "p", "expire_time": "2082758400"}]},
}


def seen(mock: MockcreServer) -> dict:
    """What a client can observe: the whole store and a few rankings (trace ids aside)."""
    rankings = {}
    for user in SHOPPERS:
        for pool in ("sale", "0", "p"):
            reply = requests.post(mock.url + "/query", json=cre_query(user, pool, 10), timeout=10).json()
            rankings[user, pool] = reply.get("rec")
    return {"state": mock.state(), "rankings": rankings}


CACHES = ("ranking_cache", "ranking_cache_version", "feature_tops", "by_popularity", "popularity_keys", "_stale")


def internals(mock: MockcreServer) -> dict:
    """A copy of every data field of every partition, and the popularity order worked out afresh: the snapshot
    must miss none. The caches (rankings, the order as last placed) are functions of these, and left out."""
    return copy.deepcopy({key: {**{name: list(value) if isinstance(value, SortedList) else value
                                   for name, value in vars(part).items() if name not in CACHES},
                                "order": sorted(part.items, key=part._key)}
                          for key, part in mock.service.store.partitions.items()})


def scribble(mock: MockcreServer) -> None:
    """Writes a test might make: a new item, an update of a fixture item, actions, a clock move."""
    post = lambda body: requests.post(mock.url + "/upload", json=body, timeout=10).json()  # noqa: E731
    assert post(cre_upload("1", [cre_item("new-1", "sale"), cre_item("apparel-001", "sale")]))["code"] == "0"
    assert post(cre_upload("2", [cre_action("shopper001", "102", ["new-1"])]))["code"] == "0"
    mock.service.config.clock.advance("30d")


def test_reset_restores_exactly_what_a_fresh_load_gives():
    with MockcreServer(scenario="shop", allow_violations=True) as mock:
        mock.reset()  # settle what a fresh load leaves, before any ranking fills a cache
        fresh_internals = internals(mock)
        fresh = seen(mock)
        for _ in range(2):  # the first reset takes the snapshot, the second restores it
            scribble(mock)
            assert seen(mock) != fresh  # the writes show
            mock.reset()
            assert internals(mock) == fresh_internals
            assert seen(mock) == fresh
            assert mock.journal and all(e["endpoint"] == "cre.query" for e in mock.journal)


def test_the_snapshot_is_untouched_by_writes_after_a_reset():
    with MockcreServer(scenario="shop", allow_violations=True) as mock:
        mock.reset()
        mock.reset()
        fresh = seen(mock)
        scribble(mock)  # writes into the restored copy must not reach the snapshot behind it
        mock.reset()
        assert seen(mock) == fresh


def test_a_scenario_clock_puts_time_back_and_the_fixtures_stay_as_reported_then():
    with MockcreServer(scenario=CLOCKED, allow_violations=True) as mock:
        fresh = seen(mock)
        assert {e["id"] for e in fresh["rankings"]["newcomer", "p"]["p"]} == {"lasting", "fresh"}
        for _ in range(2):
            mock.clock.advance(120)  # "fresh" expires one minute after the scenario's clock
            assert [e["id"] for e in seen(mock)["rankings"]["newcomer", "p"]["p"]] == ["lasting"]
            mock.reset()
            assert mock.clock() == 1893456000
            assert seen(mock) == fresh


def test_loading_another_scenario_retakes_the_snapshot():
    with MockcreServer(scenario="shop", allow_violations=True) as mock:
        mock.reset()
        mock.load_scenario(CLOCKED)
        mock.reset()
        items = {i for p in mock.state()["partitions"] for i in p["items"]}
        assert {"fresh", "lasting", "apparel-001"} <= items
        mock.service.scenarios.unload("clocked")
        mock.reset()
        items = {i for p in mock.state()["partitions"] for i in p["items"]}
        assert "fresh" not in items and "apparel-001" in items


def test_state_file_keeps_reports_across_restarts_and_a_reset_empties_it(tmp_path):
    """``mockcre serve --state``: reports come back over the fixtures after a restart; a reset empties the file."""
    config = {"scenarios": ["shop"], "state_file": str(tmp_path / "state.sqlite")}
    with MockcreServer(scenario="shop", allow_violations=True, clock=fixed_clock()) as plain:
        fresh = seen(plain)
    server = start(config)
    server.state = lambda: snapshot(server.service, limit=None, actions=None)
    scribble(server)
    written = seen(server)
    stop_soon(server)
    server = start(config)
    server.state = lambda: snapshot(server.service, limit=None, actions=None)
    assert seen(server)["state"] == written["state"]  # the reports came back over the fixtures
    server.service.reset()
    server.service.reset()  # the snapshot's copy this time
    assert seen(server) == fresh
    stop_soon(server)
    server = start(config)
    server.state = lambda: snapshot(server.service, limit=None, actions=None)
    assert seen(server) == fresh  # the reset emptied the file too
    stop_soon(server)
