"""What the fake service remembers: items, pools and actions, per partition, in memory.

A partition is one isolated data set: ``("cre", "prod")`` and ``("cre", "test")`` for the cre
production and test endpoints, ``("dm", bid)`` per dm business. Dialect adapters turn bodies
into :class:`Item` and :class:`Action` records; the store keeps the indexes the recommender
needs (pool → items, tag → items, incremental popularity and per-user history) up to date on
every write, so reads never scan the action log.
"""

from __future__ import annotations

import json
import math
import threading
import zlib
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from sys import intern

from sortedcontainers import SortedKeyList, SortedList

from mockcre.common.domain import GLOBAL_POOL


def stable_hash(item_id: str) -> int:
    """The last tie-break of every ranking: the same on every machine and run (unlike hash())."""
    return zlib.crc32(item_id.encode("utf-8"))


def geo_cell(lat: float, lon: float) -> tuple:
    """The one-degree cell of a point: the geo index looks at a point's cell and its neighbours."""
    return (math.floor(lat), math.floor(lon))


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
    reported: bytes  # the record as reported, as compact JSON: as a dict it was a third of an item's memory
    reports: int = 1
    features: tuple = field(init=False, default=())  # what a user's taste attaches to: tags, categories, vendor

    def __post_init__(self):
        vendor = (f"vendor:{self.vendor}",) if self.vendor else ()
        self.features = tuple(intern(f) for f in (*(f"tag:{t}" for t in self.tags), *(f"cat:{c}" for c in self.categories),
                                                  *vendor))

    @property
    def record(self) -> dict:
        """The record as reported (a fresh dict each time), for the admin state and the quality report."""
        return json.loads(self.reported)

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
    """One data set and the indexes that keep reads off the action log.

    ``by_popularity`` holds every item most popular first (then score, recency, stable hash): the
    order of a cold-start ranking, so a ranking reads only as far down it as it needs. Actions
    only mark their items stale; ``fresh_order()`` puts them back in place when a ranking reads
    the order (one at a time for a few, a full re-sort when many changed), so ingest stays cheap. ``feature_index`` (tag, category, vendor → items) and
    ``geo_cells`` (one-degree cell → items) find the few items a user's taste, a detail page or a
    location lifts.
    """

    def __init__(self, key: tuple):
        self.key = key
        self.items: dict[str, Item] = {}
        self.pools: defaultdict[str, set] = defaultdict(set)
        self.feature_index: defaultdict[str, set] = defaultdict(set)
        self.geo_cells: defaultdict[tuple, set] = defaultdict(set)
        self.popularity: Counter = Counter()
        self.popularity_keys: dict[str, tuple] = {}  # item -> its key as placed in by_popularity
        self.by_popularity = SortedKeyList(key=self.popularity_keys.__getitem__)
        self._stale: set = set()  # items whose popularity changed since they were placed
        self.version = 0  # bumped by every write: the ranking cache compares it
        # feature -> (its stamp, its most popular items), for the recommender; a feature's stamp moves only when
        # one of its items is reported or acted on, so a write leaves the other features' lists valid
        self.feature_tops: dict[str, tuple] = {}
        self.feature_stamps: Counter = Counter()
        self.expiries = SortedList()  # every item's expire_time: which items are live changes only at these
        self.ranking_cache: dict = {}  # request -> ranking, valid while version is ranking_cache_version
        self.ranking_cache_version = -1
        self.counts = Counts()
        self.users: defaultdict[str, User] = defaultdict(User)
        self.actions: list[Action] = []

    def _key(self, item_id: str) -> tuple:
        """An item's place in ``by_popularity`` (ascending, so every part is negated)."""
        item = self.items[item_id]
        return (-math.log1p(max(self.popularity[item_id], 0.0)), -item.score, -item.item_time, -stable_hash(item_id))

    def _place(self, item_id: str) -> None:
        self.popularity_keys[item_id] = self._key(item_id)
        self.by_popularity.add(item_id)

    def fresh_order(self) -> SortedKeyList:
        """``by_popularity`` with every stale item back in its place; rankings call this before reading."""
        if len(self._stale) > max(64, len(self.items) // 20):
            self.popularity_keys.update((i, self._key(i)) for i in self._stale)
            self.by_popularity = SortedKeyList(self.items, key=self.popularity_keys.__getitem__)
        else:
            for item_id in self._stale:
                self.by_popularity.remove(item_id)  # found by the key it was placed with
                self._place(item_id)
        self._stale.clear()
        return self.by_popularity

    def upsert(self, item: Item) -> None:
        """The last report of an item wins (以最后一次上报为准): indexes follow the new record."""
        self.version += 1
        item.item_id = intern(item.item_id)
        old = self.items.get(item.item_id)
        if old is not None:
            item.reports = old.reports + 1
            self.by_popularity.remove(item.item_id)  # found by the key it was placed with
            self._stale.discard(item.item_id)
            self._index(old, discard=True)
            self.feature_stamps.update(old.features)
            self.expiries.remove(old.expire_time)
        self.items[item.item_id] = item
        self.feature_stamps.update(item.features)
        self.expiries.add(item.expire_time)
        self._index(item)
        self._place(item.item_id)

    def _index(self, item: Item, discard: bool = False) -> None:
        sets = [self.pools[pool] for pool in item.pools] + [self.feature_index[f] for f in item.features]
        if item.lat is not None and item.lon is not None:
            sets.append(self.geo_cells[geo_cell(item.lat, item.lon)])
        for members in sets:
            (members.discard if discard else members.add)(item.item_id)

    def add(self, action: Action, kind: str) -> None:
        """Record one action; ``kind`` is exposure/click/conversion/other for the engagement counters."""
        self.version += 1
        # One string object per distinct id however many actions name it (the item's own, when reported):
        # a million actions held a million copies of a few thousand ids.
        action.uid, action.item_id, action.action = intern(action.uid), intern(action.item_id), intern(action.action)
        self.actions.append(action)
        self.popularity[action.item_id] += action.weight
        item = self.items.get(action.item_id)
        if action.weight and item is not None:
            self._stale.add(action.item_id)
            self.feature_stamps.update(item.features)
        user = self.users[action.uid]
        user.actions += 1
        user.item_weights[action.item_id] += action.weight
        if action.purchase:
            user.purchased[action.item_id] += action.purchase
        counter = getattr(self.counts, kind + "s", None)
        if counter is not None:
            counter[action.item_id] += 1

    def expired_by(self, now: float) -> int:
        """How many expire_times have passed at ``now``: two moments with the same count see the same
        items live (with the same version), so a ranking can be reused across them."""
        return self.expiries.bisect_right(now)

    def pool_members(self, pool: str):
        return self.items.keys() if pool == GLOBAL_POOL else self.pools.get(pool, ())

    def copy(self) -> "Partition":
        """An independent copy, indexes and all, made in a fraction of the time re-reporting takes.

        Stored :class:`Item` and :class:`Action` records are never changed once stored (an update
        replaces the record), so the copy shares them; every container the writes change is copied.
        A reset restores a scenario's fixtures this way instead of reporting them again."""
        twin = Partition.__new__(Partition)
        for name, value in vars(self).items():
            if name != "by_popularity":  # rebuilt below, on the copy's own keys
                setattr(twin, name, _copied(value))
        twin.by_popularity = SortedKeyList(self.by_popularity, key=twin.popularity_keys.__getitem__)
        return twin

    def pool_names(self) -> list[str]:
        return [GLOBAL_POOL] + sorted(p for p, ids in self.pools.items() if ids)


def _copied(value):
    """One level deeper than ``copy.copy`` where a partition nests its mutable parts (sets, users, counters)."""
    if isinstance(value, defaultdict):
        return defaultdict(value.default_factory, {k: _copied(v) for k, v in value.items()})
    if isinstance(value, (set, Counter, list)) or type(value) is dict:
        return value.copy()
    if isinstance(value, User):
        return User(value.item_weights.copy(), value.purchased.copy(), value.actions)
    if isinstance(value, Counts):
        return Counts(value.exposures.copy(), value.clicks.copy(), value.conversions.copy())
    if isinstance(value, SortedList):
        return value.copy()
    return value  # numbers, tuples, the key; by_popularity is rebuilt by Partition.copy


class Store:
    """All partitions behind one lock: requests are short, and a consistent view is worth more than overlap."""

    def __init__(self):
        self.lock = threading.RLock()
        self.partitions: dict[tuple, Partition] = {}
        self._shared: set = set()  # partitions still the snapshot's own (see reset): copied on their first write

    def partition(self, key: tuple) -> Partition:
        """The partition to write to (made when new; a snapshot's partition is copied first)."""
        part = self.partitions.get(key)
        if part is None:
            part = self.partitions[key] = Partition(key)
        elif key in self._shared:
            part = self.partitions[key] = part.copy()
            self._shared.discard(key)
        return part

    def peek(self, key: tuple) -> Partition | None:
        return self.partitions.get(key)

    def apply_report(self, key: tuple, adapter, kind: str, body: dict, now: int) -> None:
        """The one way an accepted report reaches a store: serve, the proxy's mirror, ``--state`` restore
        and the quality report's replay all come here; the dialect adapter reads the body."""
        self.apply(key, kind, adapter.items(body, now) if kind == "item" else adapter.actions(body, now))

    def apply(self, key: tuple, kind: str, records) -> None:
        """Write a report's records (items, or ``(action, counter)`` pairs); scenario fixtures, read once
        at load time, come in here with theirs."""
        with self.lock:
            part = self.partition(key)
            if kind == "item":
                for item in records:
                    part.upsert(item)
            else:
                for action, counter in records:
                    part.add(action, counter)

    def reset(self, to: dict | None = None) -> None:
        """Empty, or back to ``to``: a :meth:`snapshot` taken earlier, whose data stays unchanged.

        The snapshot's partitions are shared until a write needs one (copy on write), so a test that
        only reads costs no copy. Reads still fill a shared partition's caches (rankings, popularity
        order); those are functions of the data, so sharing them is sharing answers already worked out."""
        with self.lock:
            self.partitions.clear()
            self.partitions.update(to or {})
            self._shared = set(self.partitions)

    def snapshot(self) -> dict:
        """Every partition as it is now, independent of later writes."""
        with self.lock:
            return {key: part.copy() for key, part in self.partitions.items()}
