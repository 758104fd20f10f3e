"""The recommender's fast path (popularity order + shortlist) must rank exactly as scoring every candidate."""

from __future__ import annotations

import dataclasses

import math
import random

import pytest

import mockcre.model.recommend as recommend
from mockcre.model.store import Action, Item, Partition, stable_hash


def random_partition(rng: random.Random, n: int) -> Partition:
    part = Partition(("dm", "x"))
    for i in range(n):
        near = rng.random() < 0.3
        part.upsert(Item(
            item_id=f"i{i}", pools=tuple(f"p{rng.randrange(4)}" for _ in range(rng.randrange(0, 3))),
            tags={f"t{rng.randrange(30)}": 1.0 for _ in range(rng.randrange(0, 3))}, categories=(f"c{rng.randrange(10)}",),
            vendor=f"v{rng.randrange(5)}" if rng.random() < 0.5 else None, score=round(rng.random(), 1),
            item_time=100 + rng.randrange(5), expire_time=rng.choice([50, 10**10]), on_shelf=rng.random() > 0.1,
            lat=22.5 + rng.uniform(-2, 2) if near else None, lon=114 + rng.uniform(-2, 2) if near else None, reported=b"{}"))
    for _ in range(n * 3):
        part.add(Action(f"u{rng.randrange(20)}", f"i{int(rng.paretovariate(1.1)) % n}", "2", rng.choice([1.0, 5.0, -2.0]), 1,
                        purchase=1 if rng.random() < 0.02 else 0), "click")
    if n > 10:
        part.upsert(Item("i3", ("p1",), {"t1": 1.0}, (), None, 0.5, 101, 10**10, True, None, None, b"{}"))  # a re-report
    return part


@pytest.mark.parametrize("seed", range(12))
def test_fast_path_ranks_exactly_like_scoring_everything(seed, monkeypatch):
    rng = random.Random(seed)
    part = random_partition(rng, rng.choice([60, 400, 2500]))
    for _ in range(15):
        lat = rng.choice([None, 22.5])
        req = recommend.RecRequest(uid=rng.choice([None, "u1", "u2", "nobody"]), pools=rng.choice([["0"], ["p1"], ["p1", "p2"]]),
                                   cid=rng.choice([None, f"i{rng.randrange(50)}"]), limit=rng.choice([1, 5, 50]),
                                   variant=rng.choice(["personalised", "popularity"]), lat=lat, lon=None if lat is None else 114.0)
        monkeypatch.setattr(recommend, "SCORE_ONE_BY_ONE_UP_TO", 10**9)
        every = recommend._rank(part, req, 60).entries
        monkeypatch.setattr(recommend, "SCORE_ONE_BY_ONE_UP_TO", 0)
        fast = recommend._rank(part, req, 60).entries
        assert fast == every, req


@pytest.mark.parametrize("seed", range(4))
def test_cached_feature_tops_stay_exact_across_interleaved_writes(seed, monkeypatch):
    """A feature's top list is kept across writes that do not touch its items; rankings must not notice."""
    rng = random.Random(seed)
    part = random_partition(rng, 2500)
    monkeypatch.setattr(recommend, "PER_FEATURE", 20)  # features larger than their top list, so lists are cached
    for step in range(60):
        if step % 3 == 0:
            item = f"i{rng.randrange(2500)}"
            part.add(Action(f"u{rng.randrange(20)}", item, "2", rng.choice([5.0, 40.0, -30.0]), 1), "click")
        elif step % 3 == 1:
            part.upsert(Item(f"i{rng.randrange(2600)}", ("p1",), {f"t{rng.randrange(30)}": 1.0}, (f"c{rng.randrange(10)}",),
                             None, rng.random(), 100, 10**10, True, None, None, b"{}"))
        req = recommend.RecRequest(uid=f"u{rng.randrange(20)}", pools=["0"], cid=rng.choice([None, f"i{rng.randrange(50)}"]),
                                   limit=30)
        monkeypatch.setattr(recommend, "SCORE_ONE_BY_ONE_UP_TO", 0)
        fast = recommend._rank(part, req, 60).entries  # with the lists kept from earlier steps
        part.feature_tops.clear()
        monkeypatch.setattr(recommend, "SCORE_ONE_BY_ONE_UP_TO", 10**9)
        every = recommend._rank(part, req, 60).entries  # every candidate scored, every list computed afresh
        assert fast == every, (step, req)


def test_memoised_rankings_follow_every_write():
    part = Partition(("dm", "x"))
    for i in range(3):
        part.upsert(Item(f"i{i}", ("p",), {}, (), None, 0.0, 100, 10**10, True, None, None, b"{}"))
    req = recommend.RecRequest(uid=None, pools=["0"], limit=3)
    first = recommend.rank(part, req, 60)
    assert recommend.rank(part, req, 60).entries == first.entries  # from the cache
    part.add(Action("u", first.entries[-1][0], "2", 5.0, 1), "click")
    assert recommend.rank(part, req, 60).entries[0][0] == first.entries[-1][0]  # the click counts at once
    shared = recommend.rank(part, req, 60)
    assert recommend.rank(part, req, 60) is shared  # every request for it gets the one ranking, which nobody can change
    with pytest.raises(dataclasses.FrozenInstanceError):
        shared.entries = ()
    assert isinstance(shared.entries, tuple) and len(shared.entries) == 3


def test_memoised_rankings_follow_the_clock_only_through_expiry(monkeypatch):
    part = Partition(("dm", "x"))
    part.upsert(Item("lasting", ("p",), {}, (), None, 0.0, 100, 10**10, True, None, None, b"{}"))
    part.upsert(Item("brief", ("p",), {}, (), None, 9.0, 100, 1_000, True, None, None, b"{}"))
    computed = []
    real = recommend._rank
    monkeypatch.setattr(recommend, "_rank", lambda *args: computed.append(args[2]) or real(*args))
    req = recommend.RecRequest(uid=None, pools=["p"], limit=5)

    def ids(now):
        return [i for i, _ in recommend.rank(part, req, now).entries]

    assert ids(200) == ["brief", "lasting"] and ids(999.5) == ["brief", "lasting"]
    assert computed == [200]  # nothing expired in between: one ranking serves both moments
    assert ids(1_000) == ["lasting"]  # expire_time reached: gone at once
    assert ids(500) == ["brief", "lasting"]  # a clock set back sees it live again
    part.upsert(Item("brief", ("p",), {}, (), None, 9.0, 100, 5_000, True, None, None, b"{}"))  # re-reported, expiring later
    assert ids(2_000) == ["brief", "lasting"]
    assert len(part.expiries) == 2


def test_the_popularity_order_follows_every_write():
    part = Partition(("dm", "x"))
    for i in range(5):
        part.upsert(Item(f"i{i}", ("p",), {}, (), None, 0.0, 100, 10**10, True, None, None, b"{}"))
    for item in ["i3", "i3", "i1", "i1", "i3", "i4"]:
        part.add(Action("u", item, "2", 5.0, 1), "click")
    part.add(Action("u", "i3", "124", -20.0, 1), "other")  # cancelled: drops below everything clicked
    part.upsert(Item("i0", ("p",), {}, (), None, 9.0, 100, 10**10, True, None, None, b"{}"))  # the best score among the unclicked
    assert list(part.fresh_order())[:3] == ["i1", "i4", "i0"]
    assert list(part.fresh_order()) == sorted(part.items, key=part.popularity_keys.__getitem__)


def test_many_stale_items_rebuild_the_order_the_same_way():
    part = Partition(("dm", "x"))
    for i in range(300):
        part.upsert(Item(f"i{i}", ("p",), {}, (), None, 0.0, 100, 10**10, True, None, None, b"{}"))
    for k in range(900):  # most items go stale at once: a full re-sort
        part.add(Action("u", f"i{(k * 7) % 300}", "2", float(k % 5), 1), "click")
    order = list(part.fresh_order())
    assert order == sorted(part.items, key=lambda i: (-math.log1p(part.popularity[i]), -part.items[i].item_time, -stable_hash(i)))
