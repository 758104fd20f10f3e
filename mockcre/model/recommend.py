"""Deterministic heuristic ranking: popularity, the user's own taste, pools, detail page and distance.

Every candidate gets a *relevance* = base + bonus, and the ranking sorts by (relevance, item
score, item time, stable hash of the id), best first, so the same state and request always give
the same list. The "How recommendations are ranked" table of docs/performance.md describes each signal.

The base is popularity for personalised and traffic requests (pCTR, pCVR and item-quality
requests have bases of their own). Bonuses are given only to *shortlisted* items:

* taste — for each of the user's ``TASTE_FEATURES`` strongest tags, categories and vendor, the
  ``PER_FEATURE`` most popular items carrying it;
* detail page (dm ``cid``) — the ``PER_FEATURE`` most popular items sharing each of its features;
* location — items within ``GEO_RADIUS_KM`` of the request.

That definition is what makes large stores fast and still exact: everything outside the
shortlist ranks by base alone, which for popularity is the order ``Partition.by_popularity``
keeps, so a ranking scores the shortlist and reads the popularity order only as far as it needs.
Small candidate sets, other bases and explicit id lists are scored one by one; both paths give
the same answer.
"""

from __future__ import annotations

import heapq
import math
from collections import Counter, defaultdict
from dataclasses import dataclass

from mockcre.common.domain import GLOBAL_POOL
from mockcre.model.store import Item, Partition, geo_cell, stable_hash

TASTE_WEIGHT = 3.0  # how far a user's taste can lift an item above equally popular ones
TASTE_FEATURES = 8  # the user's strongest features that count
PER_FEATURE = 100  # most popular items per feature that a taste or detail page can lift
GEO_WEIGHT = 2.0  # bonus of an item at the user's location; halves at 10 km
GEO_RADIUS_KM = 100.0  # no location bonus beyond
DETAIL_PAGE_WEIGHT = 1000.0  # per feature shared with the detail page's item: such items rank first
SCORE_ONE_BY_ONE_UP_TO = 1000  # candidate sets this small are simply scored

VARIANTS = ("personalised", "popularity", "pctr", "pcvr", "quality")
PERSONAL_VARIANTS = {"personalised", "pctr", "pcvr"}
POPULARITY_BASED = {"personalised", "popularity"}


@dataclass
class RecRequest:
    uid: str | None  # None or "" is a cold start
    pools: list
    items: list | None = None  # rank exactly these ids (cre pool.items)
    cid: str | None = None  # dm detail page: the current item
    lat: float | None = None
    lon: float | None = None
    limit: int | None = None  # None: all
    variant: str = "personalised"

    def in_pool(self, pool: str) -> "RecRequest":
        """The same request for one pool, built directly: ``dataclasses.replace`` took ~4× as long, per pool of every query."""
        return RecRequest(self.uid, [pool], self.items, self.cid, self.lat, self.lon, self.limit, self.variant)


@dataclass(frozen=True)
class Ranking:
    """A ranked list. The memo below hands the same Ranking to every request that asks for it (a copy for each
    was a cost on every query), so it cannot be changed."""

    entries: tuple  # ((item_id, relevance), ...), best first
    personalised: bool  # False when the user was unknown (cold start) or the variant ignores users


RANKING_CACHE_SIZE = 2048


def rank(part: Partition | None, req: RecRequest, now: float) -> Ranking:
    """The ranking of ``req``, memoised: the same state and request always give the same answer, and
    integrators' clients repeat requests. The state is the store's version and, since time only matters
    through expiry, how many items have expired by ``now``."""
    if part is None:
        return _rank(part, req, now)
    if part.ranking_cache_version != part.version or len(part.ranking_cache) >= RANKING_CACHE_SIZE:
        part.ranking_cache.clear()
        part.ranking_cache_version = part.version
    key = (req.uid, tuple(req.pools), tuple(req.items) if req.items is not None else None, req.cid, req.lat, req.lon,
           req.limit, req.variant, part.expired_by(now))
    ranking = part.ranking_cache.get(key)
    if ranking is None:
        ranking = part.ranking_cache[key] = _rank(part, req, now)
    return ranking


def _rank(part: Partition | None, req: RecRequest, now: float) -> Ranking:
    if part is None:
        ids = sorted(dict.fromkeys(str(i) for i in req.items or []), key=stable_hash, reverse=True)
        return Ranking(tuple((i, 0.0) for i in ids[: req.limit]), False)
    by_popularity = part.fresh_order()
    user = part.users.get(req.uid) if req.uid else None
    personal = user is not None and req.variant in PERSONAL_VARIANTS
    bonus = _bonuses(part, req, user if personal else None)
    purchased = {i for i, n in user.purchased.items() if n > 0} if user else set()

    def wanted(item_id: str) -> bool:
        item = part.items.get(item_id)
        return (item is None or item.live(now)) and item_id not in purchased and item_id != req.cid

    if req.items is not None:
        candidates = [i for i in dict.fromkeys(str(i) for i in req.items) if wanted(i)]
        return Ranking(_best(part, candidates, bonus, req, len(candidates) if req.limit is None else req.limit), personal)
    pools = [part.items.keys() if pool == GLOBAL_POOL else part.pools.get(pool, set()) for pool in req.pools or [GLOBAL_POOL]]
    size = sum(len(p) for p in pools)
    limit = size if req.limit is None else req.limit
    if req.variant not in POPULARITY_BASED or size <= SCORE_ONE_BY_ONE_UP_TO or limit >= size:
        candidates = [i for i in dict.fromkeys(i for p in pools for i in p) if wanted(i)]
        return Ranking(_best(part, candidates, bonus, req, limit), personal)
    in_pools = _membership(part, pools)
    shortlisted = [i for i in bonus if i in part.items and in_pools(i) and wanted(i)]
    rest = []
    for item_id in by_popularity:  # the rest ranks by popularity alone: read only as far as needed
        if len(rest) >= limit:
            break
        if item_id not in bonus and in_pools(item_id) and wanted(item_id):
            rest.append(item_id)
    return Ranking(_best(part, shortlisted + rest, bonus, req, limit), personal)


def _membership(part: Partition, pools: list):
    """A fast "is it in the requested pools?" for the popularity scan."""
    if any(p is part.items.keys() for p in pools):
        return part.items.__contains__
    if len(pools) == 1:
        return pools[0].__contains__
    return set().union(*pools).__contains__


def _best(part: Partition, candidates, bonus: dict, req: RecRequest, limit: int) -> list:
    scored = []
    keys = part.popularity_keys if req.variant in POPULARITY_BASED else None
    for item_id in candidates:
        item = part.items.get(item_id)
        if item is None:  # an unknown id in pool.items: allowed, ranked last
            scored.append(((0.0, 0.0, 0, stable_hash(item_id)), item_id))
        elif keys is not None:  # the popularity key already holds (base, score, time, hash), negated
            base, score, when, tie = keys[item_id]
            scored.append(((bonus.get(item_id, 0.0) - base, -score, -when, -tie), item_id))
        else:
            relevance = _base(part, item, req.variant) + bonus.get(item_id, 0.0)
            scored.append(((relevance, item.score, item.item_time, stable_hash(item_id)), item_id))
    return tuple((item_id, key[0]) for key, item_id in heapq.nlargest(limit, scored))


def _base(part: Partition, item: Item, variant: str) -> float:
    item_id = item.item_id
    if variant == "pctr":
        return 10.0 * (part.counts.clicks[item_id] + 1) / (part.counts.exposures[item_id] + 2)
    if variant == "pcvr":
        return 10.0 * (part.counts.conversions[item_id] + 1) / (part.counts.clicks[item_id] + 2)
    if variant == "quality":
        return item.score
    return math.log1p(max(part.popularity[item_id], 0.0))


def _bonuses(part: Partition, req: RecRequest, user) -> dict:
    """The shortlisted items and what lifts each: taste, detail page, location (see the module doc)."""
    bonus: defaultdict = defaultdict(float)
    if user is not None:
        taste = _taste(part, user)
        strongest = heapq.nlargest(TASTE_FEATURES, ((w, f) for f, w in taste.items() if w > 0))
        for weight, feature in strongest:
            for item_id in _most_popular(part, feature):
                bonus[item_id] += TASTE_WEIGHT * weight / strongest[0][0]
    detail = part.items.get(req.cid) if req.cid else None
    if detail is not None:
        for feature in detail.features:
            for item_id in _most_popular(part, feature):
                bonus[item_id] += DETAIL_PAGE_WEIGHT
    if req.lat is not None and req.lon is not None:
        for item_id, km in _near(part, req.lat, req.lon):
            bonus[item_id] += GEO_WEIGHT / (1.0 + km / 10.0)
    return bonus


def _taste(part: Partition, user) -> Counter:
    """Feature weights of what the user engaged with, recomputed from their items so late reports count."""
    taste: Counter = Counter()
    for item_id, weight in user.item_weights.items():
        item = part.items.get(item_id)
        if item is not None:
            for feature in item.features:
                taste[feature] += weight
    return taste


def _most_popular(part: Partition, feature: str):
    """The PER_FEATURE most popular items carrying a feature; cached until one of its items changes."""
    members = part.feature_index.get(feature, ())
    if len(members) <= PER_FEATURE:
        return members
    stamp = part.feature_stamps[feature]
    cached = part.feature_tops.get(feature)
    if cached is None or cached[0] != stamp:
        cached = part.feature_tops[feature] = (stamp, heapq.nsmallest(PER_FEATURE, members, key=part.popularity_keys.__getitem__))
    return cached[1]


def _near(part: Partition, lat: float, lon: float):
    """Items within GEO_RADIUS_KM, found in the one-degree cells around the point."""
    lat_cells = math.ceil(GEO_RADIUS_KM / 111.0)
    lon_cells = min(180, math.ceil(GEO_RADIUS_KM / max(111.0 * math.cos(math.radians(lat)), 1.0)))
    row, col = geo_cell(lat, lon)
    for dy in range(-lat_cells, lat_cells + 1):
        for dx in range(-lon_cells, lon_cells + 1):
            for item_id in part.geo_cells.get((row + dy, (col + dx + 180) % 360 - 180), ()):
                item = part.items[item_id]
                km = distance_km(lat, lon, item.lat, item.lon)
                if km <= GEO_RADIUS_KM:
                    yield item_id, km


def distance_km(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))
