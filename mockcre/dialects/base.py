"""What both dialects share: the :class:`Dialect` interface every adapter implements, value coercion
(lenient bodies carry strings for numbers and back), the data_type codes and the secret fields."""

from __future__ import annotations

import math
import re
from abc import ABC, abstractmethod
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, NamedTuple

from mockcre.common.domain import DATA_TYPES, SECRET_FIELDS

if TYPE_CHECKING:
    from mockcre.model.recommend import Ranking, RecRequest
    from mockcre.model.store import Action, Item

class WrongKind(ValueError):
    """A body that is valid JSON but not what this endpoint takes (e.g. an action posted to /dm/service)."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Route:
    """What an endpoint is: its dialect, the kinds it takes, the partition it writes to and its reply's schema."""

    endpoint: str
    kinds: tuple
    namespace: str
    reply_kind: str


def data_kind(body) -> str | None:
    """``item`` or ``action`` for a body's data_type (``"1"`` or ``1``, ``"2"`` or ``2``); None for anything else."""
    value = body.get("data_type") if isinstance(body, dict) else None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return None
    return DATA_TYPES.get(str(value))


def report_kind(body, item_code: str, action_code: str) -> str:
    """``item`` or ``action`` by data_type, else :class:`WrongKind` naming the codes as the dialect writes them."""
    kind = data_kind(body)
    if kind is None:
        got = f"got {body['data_type']!r}" if isinstance(body, dict) and "data_type" in body else "it is missing"
        raise WrongKind(f"data_type: expected {item_code} (item, 物料) or {action_code} (action, 行为); {got}",
                        "/data_type")
    return kind


def mask(value) -> str:
    """Enough of a secret to tell two apart, never enough to reuse it."""
    text = str(value)
    return text[:4] + "…" if len(text) > 8 else "…"


def is_secret(name) -> bool:
    """Whether a body field of this name carries a credential (:data:`~mockcre.common.domain.SECRET_FIELDS`, any case)."""
    return isinstance(name, str) and name.lower() in SECRET_FIELDS


def masked_body(body):
    """``body`` with every secret field masked, in any case and at any depth (the same object when it has none).

    Every journaled request passes here, so only the objects and arrays on the way to a secret are copied."""
    if isinstance(body, dict):
        masked = None
        for key, value in body.items():
            if is_secret(key):
                shown = value if value is None else mask(value)
            elif isinstance(value, (dict, list)):
                shown = masked_body(value)
            else:
                continue
            if shown is not value:
                if masked is None:
                    masked = dict(body)
                masked[key] = shown
        return body if masked is None else masked
    if isinstance(body, list):
        masked = None
        for i, value in enumerate(body):
            if isinstance(value, (dict, list)):
                shown = masked_body(value)
                if shown is not value:
                    if masked is None:
                        masked = list(body)
                    masked[i] = shown
        return body if masked is None else masked
    return body


def echo_id(body, name: str):
    """The request's own id for the reply: a string exactly, a number as its text, anything else null.

    The documents say "接口原样返回" (returned as sent) and type the field as a string; a number is
    echoed in the string form lenient mode read it as, so the reply stays valid.
    """
    value = body.get(name) if isinstance(body, dict) else None
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return None
    if isinstance(value, int):  # any size JSON allowed it to parse at
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return str(int(value)) if value.is_integer() else str(value)
    return None


def number(value, default: float | None = 0.0) -> float | None:
    """A finite number from a number or its text; ``default`` for anything else (booleans included)."""
    if isinstance(value, bool) or value is None:
        return default
    try:
        result = float(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: an integer past a float's range
        return default
    return result if math.isfinite(result) else default


def seconds(value, default: int | None) -> int | None:
    """A 10-digit second timestamp from a string or number; anything else gives the default."""
    if isinstance(value, bool):
        return default
    if isinstance(value, (int, float)) and math.isfinite(value):
        return int(value)
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return default


def text(value) -> str | None:
    if value is None or isinstance(value, (dict, list)):
        return None
    return str(value)


def split(value, separators: str) -> list[str]:
    """Non-empty, stripped members of a joined list such as ``"a;b"`` or ``"p1，p2"``."""
    if value is None or isinstance(value, (dict, list, bool)):
        return []
    return [part.strip() for part in _separators(separators).split(str(value)) if part.strip()]


@lru_cache(maxsize=None)
def _separators(separators: str) -> re.Pattern:
    return re.compile(f"[{re.escape(separators)}]")


def coordinates(geo) -> tuple[float | None, float | None]:
    if not isinstance(geo, dict):
        return None, None
    lat = geo.get("latitude")
    lon = geo.get("longitude", geo.get("longtitude"))
    if lat is None or lon is None:
        return None, None
    lat, lon = number(lat, math.nan), number(lon, math.nan)
    if math.isnan(lat) or math.isnan(lon):
        return None, None
    return lat, lon


def integer(value) -> int | None:
    """An integer from a number or its text (``"12"``, ``12``); None for anything else."""
    try:
        return int(str(value)) if value is not None and not isinstance(value, bool) else None
    except ValueError:
        return None


def scalar_id(value) -> str:
    """One scalar id as a string ("" for none); ``type is str`` first, as a batch calls it per record."""
    if type(value) is str:
        return value.strip()
    return "" if value is None or isinstance(value, (dict, list, bool)) else str(value).strip()


def ids(value, sep: str | None = None) -> list[str]:
    """Non-empty scalar ids as strings; ``sep`` splits a joined string (dm ``item_id`` "a;b;c")."""
    parts = scalar_id(value).split(sep) if sep else [scalar_id(value)]
    return [p.strip() for p in parts if p.strip()]


def once(values) -> list[str]:
    """Each id once, in order, without the empty one."""
    found = dict.fromkeys(values)
    found.pop("", None)
    return list(found)


class ReportedAction(NamedTuple):
    """One (action, item) of an action report, as the data-quality report reads it."""

    uid: str
    action: str  # the dialect's code as text
    kind: str  # exposure | click | other
    item: str
    trace: str | None
    time: int | None
    record: int  # which record of the report (cre batches several; dm has one)
    position: int
    claims: tuple  # (field, value) scene ids copied from a recommendation answer
    scene: str | None

    @classmethod
    def of(cls, action: Action, counter: str, record: int, claims: tuple) -> "ReportedAction":
        return cls(action.uid, action.action, counter if counter in ("exposure", "click") else "other", action.item_id,
                   action.trace_id or None, action.time, record, action.position, claims, action.scene or None)


class Dialect(ABC):
    """One dialect's wire format. Everything that reads a body or a reply, or writes a reply, asks this."""

    name: str
    routes: dict  # endpoint name -> Route
    echo_field: str  # the request id a reply echoes
    auth_field: str  # the credential an auth failure points at
    message_field: str  # where an error reply explains itself
    error_kind: str  # the schema of the error envelope
    ok_code: str | int  # success as the reply writes it
    empty_answer_code: int  # the code of a recommendation with nothing to recommend
    report_fields: frozenset = frozenset()  # per-request fields of an item report that are not the item's
    identifying: dict  # kind -> field paths that tell one request from another (a recorded rule matches them)
    echoed: tuple  # request fields a reply may repeat (a recorded reply templates them)
    record_paths: tuple = ()  # where a body nests records that a scenario's field path may mean

    def echo(self, body):
        """The request id to echo in the reply (see :func:`echo_id`)."""
        return echo_id(body, self.echo_field)

    def reply_kind(self, endpoint: str, reply=None) -> str:
        """The schema a reply of ``endpoint`` answers to; the error envelope's when ``reply`` has a code other than 0."""
        code = reply.get("code") if isinstance(reply, dict) else None
        return self.error_kind if code is not None and str(code) != "0" else self.routes[endpoint].reply_kind

    def endpoint_for(self, kind: str) -> str:
        """The endpoint a client outside production sends ``kind`` to (cre's test paths; dm has one of each)."""
        return next(r.endpoint for r in self.routes.values() if kind in r.kinds and r.namespace != "prod")

    # -- requests in ----------------------------------------------------------------------------

    @abstractmethod
    def kind_for(self, route: Route, body) -> str:
        """The kind of a body posted to ``route``, or :class:`WrongKind`."""

    @abstractmethod
    def partition_key(self, route: Route, body) -> tuple:
        """Which store partition a request reads or writes."""

    @abstractmethod
    def check_auth(self, accounts, body: dict) -> str | None:
        """Why the body's credentials are refused; None when accepted (or auth is off)."""

    @abstractmethod
    def signed(self, body: dict, account) -> dict:
        """``body`` as ``account`` sends it: cre's token, or dm's (bid, token) as bid and MD5 signature."""

    @abstractmethod
    def items(self, body: dict, now: int) -> list[Item]:
        """The items of an item report."""

    @abstractmethod
    def actions(self, body: dict, now: int):
        """``(Action, counter)`` for each (action, item) of an action report; counter: exposure, click, conversion or other."""

    @abstractmethod
    def reported_actions(self, body: dict, now: int | None) -> list[ReportedAction]:
        """The actions of a report with where they sit in it and the scene ids they copied; ``now`` dates undated ones."""

    @abstractmethod
    def rec_request(self, body: dict) -> RecRequest:
        """A recommendation request as the recommender takes it."""

    @abstractmethod
    def rankings_wanted(self, req: RecRequest, body: dict) -> dict[str, RecRequest]:
        """The rankings an answer lists, by the key :meth:`recommended` finds each under."""

    @abstractmethod
    def users(self, body: dict) -> list[str]:
        """The user ids a body is about, once each."""

    @abstractmethod
    def item_ids(self, body: dict) -> list[str]:
        """The item ids a body names (reported, acted on, asked to rank, the current item), once each."""

    @abstractmethod
    def beyond_limit(self, body: dict) -> int | None:
        """request_num as sent when it is more than the service returns; None otherwise."""

    # -- replies out ----------------------------------------------------------------------------

    @abstractmethod
    def accepted(self, body) -> dict:
        """The reply to a report that was kept."""

    @abstractmethod
    def recommended(self, body: dict, req: RecRequest, rankings: dict[str, Ranking], trace_id: str) -> dict:
        """The answer to a recommendation request, from the rankings :meth:`rankings_wanted` asked for."""

    @abstractmethod
    def canned(self, body: dict, entries: list, apply_limit: bool, trace_id: str) -> dict:
        """The answer a scenario scripts: ``entries`` is ``[(id, score or None)]``, best first."""

    @abstractmethod
    def error(self, echo, code: int, message: str) -> dict:
        """The dialect's error envelope."""

    # -- replies read -----------------------------------------------------------------------------

    @abstractmethod
    def ranked_lists(self, body: dict, reply: dict) -> dict[str, list[tuple]]:
        """A recommendation answer's lists, each ``[(item id, score)]`` best first, by the pools (``;``-joined) it ranks."""

    @abstractmethod
    def issued_scene_ids(self, body: dict, reply: dict) -> set:
        """``(field, value)`` pairs a recommendation makes valid in later actions."""

    # -- a client's requests (what ``mockcre conformance`` sends) ------------------------------------

    @abstractmethod
    def sample_item(self, business: str, item_id: str, pools: tuple, on_shelf: bool, item_time: int,
                    expire_time: int) -> dict:
        """An item report; ``business`` is the dm bid (cre keeps data per namespace)."""

    @abstractmethod
    def sample_click(self, business: str, uid: str, item_id: str, when: int) -> dict:
        """A click report with a fresh trace id."""

    @abstractmethod
    def sample_query(self, business: str, uid: str, pools: list, request_num: int) -> dict:
        """A recommendation request for ``pools``."""
