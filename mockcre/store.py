"""What the fake service remembers: items, pools and actions, per partition, in memory.

A partition is one isolated data set: ``("cre", "prod")`` and ``("cre", "test")`` for the cre
production and test endpoints, ``("dm", bid)`` per dm business. Dialect adapters turn bodies
into :class:`Item` and :class:`Action` records; the store keeps the indexes the recommender
needs (pool → items, tag → items, incremental popularity and per-user history) up to date on
every write, so reads never scan the action log.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from mockcre.domain import GLOBAL_POOL


@dataclass(slots=True)
class Item:
    item_id: str
    pools: tuple  # reported pools, without the global pool "0"
    tags: dict  # tag -> weight
    categories: tuple
    vendor: str | None
    score: float
    item_time: int
    expire_time: int
    on_shelf: bool
    lat: float | None
    lon: float | None
    record: dict  # the record as reported, for state and export
    reports: int = 1

    @property
    def features(self) -> list[str]:
        """What a user's taste attaches to: tags, categories and the vendor."""
        out = [f"tag:{t}" for t in self.tags]
        out += [f"cat:{c}" for c in self.categories]
        if self.vendor:
            out.append(f"vendor:{self.vendor}")
        return out

    def live(self, now: float) -> bool:
        return self.on_shelf and now < self.expire_time


@dataclass(slots=True)
class Action:
    uid: str
    item_id: str
    action: str  # dialect code as a string: cre "102", dm "2"
    weight: float  # popularity weight of the action (domain.*_ACTION_WEIGHTS)
    time: int
    trace_id: str | None = None
    scene: str | None = None
    position: int | None = None
    purchase: int = 0  # +1 bought, -1 purchase cancelled


@dataclass
class User:
    item_weights: Counter = field(default_factory=Counter)  # item -> summed action weight
    purchased: Counter = field(default_factory=Counter)
    actions: int = 0


@dataclass
class Counts:
    """Per-item engagement counters for the pCTR / pCVR variants."""

    exposures: Counter = field(default_factory=Counter)
    clicks: Counter = field(default_factory=Counter)
    conversions: Counter = field(default_factory=Counter)


class Partition:
    def __init__(self, key: tuple):
        self.key = key
        self.items: dict[str, Item] = {}
        self.pools: defaultdict[str, set] = defaultdict(set)
        self.tag_index: defaultdict[str, set] = defaultdict(set)
        self.popularity: Counter = Counter()
        self.counts = Counts()
        self.users: defaultdict[str, User] = defaultdict(User)
        self.actions: list[Action] = []

    def upsert(self, item: Item) -> None:
        """The last report of an item wins (以最后一次上报为准): indexes follow the new record."""
        old = self.items.get(item.item_id)
        if old is not None:
            item.reports = old.reports + 1
            for pool in old.pools:
                self.pools[pool].discard(item.item_id)
            for tag in old.tags:
                self.tag_index[tag].discard(item.item_id)
        self.items[item.item_id] = item
        for pool in item.pools:
            self.pools[pool].add(item.item_id)
        for tag in item.tags:
            self.tag_index[tag].add(item.item_id)

    def add(self, action: Action, kind: str) -> None:
        """Record one action; ``kind`` is exposure/click/conversion/other for the engagement counters."""
        self.actions.append(action)
        self.popularity[action.item_id] += action.weight
        user = self.users[action.uid]
        user.actions += 1
        user.item_weights[action.item_id] += action.weight
        if action.purchase:
            user.purchased[action.item_id] += action.purchase
        counter = getattr(self.counts, kind + "s", None)
        if counter is not None:
            counter[action.item_id] += 1

    def pool_members(self, pool: str):
        return self.items.keys() if pool == GLOBAL_POOL else self.pools.get(pool, ())

    def pool_names(self) -> list[str]:
        return [GLOBAL_POOL] + sorted(p for p, ids in self.pools.items() if ids)


class Store:
    """All partitions behind one lock: requests are short, and a consistent view is worth more than overlap."""

    def __init__(self):
        self.lock = threading.RLock()
        self.partitions: dict[tuple, Partition] = {}

    def partition(self, key: tuple) -> Partition:
        part = self.partitions.get(key)
        if part is None:
            part = self.partitions[key] = Partition(key)
        return part

    def peek(self, key: tuple) -> Partition | None:
        return self.partitions.get(key)

    def reset(self) -> None:
        with self.lock:
            self.partitions.clear()
