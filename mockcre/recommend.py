"""Deterministic heuristic ranking: popularity, the user's own taste, pools, detail page and distance.

Every item gets a *relevance*; the ranking sorts by (relevance, item score, item time, stable
hash of the id), best first, so the same state and request always give the same list. The
README's "How recommendations are ranked" table describes each signal.
"""

from __future__ import annotations

import heapq
import math
import zlib
from collections import Counter
from dataclasses import dataclass

from mockcre.domain import GLOBAL_POOL
from mockcre.store import Item, Partition

TASTE_WEIGHT = 3.0  # how far a user's taste can lift an item above equally popular ones
GEO_WEIGHT = 2.0  # bonus of an item at the user's location; halves at 10 km
DETAIL_PAGE_WEIGHT = 1000.0  # per feature shared with the detail page's item: such items rank first

VARIANTS = ("personalised", "popularity", "pctr", "pcvr", "quality")
PERSONAL_VARIANTS = {"personalised", "pctr", "pcvr"}


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


@dataclass
class Ranking:
    entries: list  # [(item_id, relevance)], best first
    personalised: bool  # False when the user was unknown (cold start) or the variant ignores users


def rank(part: Partition | None, req: RecRequest, now: float) -> Ranking:
    if part is None:
        return Ranking([(i, 0.0) for i in _stable(req.items or [])][: req.limit], False)
    user = part.users.get(req.uid) if req.uid else None
    personal = user is not None and req.variant in PERSONAL_VARIANTS
    taste = _taste(part, user) if personal else {}
    top_taste = max(taste.values(), default=0.0)
    detail = part.items.get(req.cid) if req.cid else None
    detail_features = set(detail.features) if detail else set()
    purchased = {i for i, n in user.purchased.items() if n > 0} if user else set()

    scored = []
    for item_id in _candidates(part, req, now, purchased):
        item = part.items.get(item_id)
        if item is None:  # an unknown id in pool.items: allowed, ranked last
            scored.append(((0.0, 0.0, 0, _hash(item_id)), item_id))
            continue
        relevance = _base(part, item, req.variant)
        if top_taste > 0:
            relevance += TASTE_WEIGHT * sum(max(taste.get(f, 0.0), 0.0) for f in item.features) / top_taste
        if req.lat is not None and req.lon is not None and item.lat is not None and item.lon is not None:
            relevance += GEO_WEIGHT / (1.0 + distance_km(req.lat, req.lon, item.lat, item.lon) / 10.0)
        if detail_features:
            relevance += DETAIL_PAGE_WEIGHT * len(detail_features.intersection(item.features))
        scored.append(((relevance, item.score, item.item_time, _hash(item_id)), item_id))
    limit = len(scored) if req.limit is None else req.limit
    best = heapq.nlargest(limit, scored)
    return Ranking([(item_id, key[0]) for key, item_id in best], personal)


def _candidates(part: Partition, req: RecRequest, now: float, purchased: set):
    if req.items is not None:
        ids = dict.fromkeys(str(i) for i in req.items)
    else:
        ids = {}
        for pool in req.pools or [GLOBAL_POOL]:
            ids.update(dict.fromkeys(part.pool_members(pool)))
    for item_id in ids:
        item = part.items.get(item_id)
        if item is not None and not item.live(now):
            continue
        if item_id in purchased or item_id == req.cid:
            continue
        yield item_id


def _base(part: Partition, item: Item, variant: str) -> float:
    item_id = item.item_id
    if variant == "pctr":
        return 10.0 * (part.counts.clicks[item_id] + 1) / (part.counts.exposures[item_id] + 2)
    if variant == "pcvr":
        return 10.0 * (part.counts.conversions[item_id] + 1) / (part.counts.clicks[item_id] + 2)
    if variant == "quality":
        return item.score
    return math.log1p(max(part.popularity[item_id], 0.0))


def _taste(part: Partition, user) -> Counter:
    """Feature weights of what the user engaged with, recomputed from their items so late reports count."""
    taste: Counter = Counter()
    for item_id, weight in user.item_weights.items():
        item = part.items.get(item_id)
        if item is not None:
            for feature in item.features:
                taste[feature] += weight
    return taste


def _hash(item_id: str) -> int:
    return zlib.crc32(item_id.encode("utf-8"))


def _stable(ids):
    return sorted(dict.fromkeys(str(i) for i in ids), key=_hash, reverse=True)


def distance_km(lat1, lon1, lat2, lon2) -> float:
    """Great-circle distance (haversine)."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 6371.0 * 2 * math.asin(min(1.0, math.sqrt(a)))
