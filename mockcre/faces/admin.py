"""``/__admin``: look inside the running fake and steer it.

health, journal (GET with filters, DELETE), requests/find and requests/count (POST a pattern), reset, scenarios (GET / POST / DELETE) and state
(paginated), JSON throughout. When the app's ``admin_token`` is set, every call needs
``Authorization: Bearer <token>`` (compared in constant time) and gets 401 otherwise; ``mockcre
serve`` refuses a non-loopback ``--host`` without one. Before the token, web pages are kept out
(403): a ``Host`` that is not the server's (DNS rebinding) and cross-site writes.
"""

from __future__ import annotations

import hmac
import json
from urllib.parse import urlsplit

from flask import Blueprint, current_app, redirect, request

from mockcre.common import memory
from mockcre.model.clock import parse_moment
from mockcre.faces.http_errors import error_body
from mockcre.common.domain import GLOBAL_POOL

blueprint = Blueprint("admin", __name__)
ADMIN_PREFIX = "/__admin"
COOKIE = "mockcre_admin"
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}
WRITES = {"POST", "PUT", "PATCH", "DELETE"}

STATE_LIMIT = 100  # default page of /__admin/state
STATE_MAX_LIMIT = 1_000
USER_ACTIONS = 20  # newest actions shown per user
NEAR_MISSES = 3  # closest entries /requests/find shows when none match, as assert_called does


class BadRequest(Exception):
    """A query parameter or body that cannot be read: answered 400 with the message (and ``field``, when known)."""

    def __init__(self, message: str, **extra):
        super().__init__(message)
        self.extra = extra


def _service():
    return current_app.extensions["mockcre"]


def _json_error(status: int, message: str, **extra):
    return error_body(status, message, **extra), status


@blueprint.errorhandler(BadRequest)
def _bad_request(exc: BadRequest):
    return _json_error(400, str(exc), **exc.extra)


def _is_admin(path: str) -> bool:
    """Every path under /__admin: this blueprint, the dashboard, and unknown paths alike."""
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


@blueprint.before_app_request
def _refuse_web_pages():
    """Any web page open in the developer's browser can send requests to a mock on loopback.

    DNS rebinding makes such a page same-origin with the mock under the page's own host name, so
    every call needs a Host that is a loopback name, the listening address or an ``--allowed-host``.
    A page on another origin cannot read the replies, but its form posts and no-cors fetches do
    arrive: a write that carries a foreign ``Origin`` or a cross-site ``Sec-Fetch-Site`` is refused.
    Clients that are not browsers send neither header.
    """
    if not _is_admin(request.path):
        return None
    name = urlsplit("//" + request.host).hostname
    if name not in LOOPBACK_NAMES and name != request.environ.get("SERVER_NAME") \
            and name not in _service().config.allowed_hosts:
        yours = f". If the name is yours, start mockcre with --allowed-host {name}" if name else ""
        return _json_error(403, f"Host {request.host!r} is not this server's address or a loopback name: "
                                             f"a web page may be reaching the admin API through DNS rebinding{yours}")
    cross_site = _cross_site() if request.method in WRITES else None
    if cross_site:
        return _json_error(403, f"{request.method} {request.path} is refused: {cross_site}. A web page "
                                             "from another site may not change the mock; use the dashboard on this "
                                             "server, or a client that is not a browser")
    return None


#: Every admin and dashboard page: no inline script (an injection could not run), no framing (no
#: clickjacking of Reset), nothing from other origins; the dashboard's own script and styles stay allowed.
PAGE_SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'; "
                               "frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",  # no-referrer would make the dashboard's own form posts Origin: null (refused)
}


@blueprint.after_app_request
def _secure_pages(response):
    if _is_admin(request.path):
        response.headers.update(PAGE_SECURITY_HEADERS)
    return response


def _cross_site() -> str | None:
    """Why the request comes from a page of another origin, or None."""
    origin = request.headers.get("Origin")
    own = f"{request.scheme}://{request.host}".lower()
    if origin is not None and origin.lower() != own:
        return f"it comes from a page on {origin}, not on {own}"
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site.lower() not in ("same-origin", "none"):
        return f"the browser marks it Sec-Fetch-Site: {site}"
    return None


@blueprint.before_app_request
def _require_token():
    if not _is_admin(request.path):
        return None
    token = _service().config.admin_token
    if not token:
        return None
    scheme, _, given = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(given.strip(), token):
        return None
    if _same(request.cookies.get(COOKIE, ""), token):  # the dashboard in a browser
        return None
    if request.method == "GET" and _same(request.args.get("token", ""), token):
        # A browser cannot send a Bearer header: /__admin/?token=T sets a cookie and drops T from the URL.
        response = redirect(request.path)
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", path=ADMIN_PREFIX)
        return response
    body, status = _json_error(401, "the admin API needs the header Authorization: Bearer <admin token> "
                                                    "(mockcre serve --admin-token); in a browser, open /__admin/?token=<admin token>")
    return body, status, {"WWW-Authenticate": 'Bearer realm="mockcre admin"'}


def _same(given: str, token: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), token.encode("utf-8"))


# -- query parameters --------------------------------------------------------------------------


def _flag(name: str) -> bool | None:
    value = request.args.get(name)
    if value is None:
        return None
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on", ""):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise BadRequest(f"?{name}={value}: expected 1/true/yes or 0/false/no")


def _int(name: str, default: int | None, low: int = 0, high: int | None = None) -> int | None:
    value = request.args.get(name)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"?{name}={value}: expected an integer") from None
    if number < low or (high is not None and number > high):
        raise BadRequest(f"?{name}={value}: expected {low}..{high}" if high is not None else f"?{name}={value}: expected >= {low}")
    return number


def _time(name: str) -> float | None:
    value = request.args.get(name)
    if value is None or value == "":
        return None
    try:
        return parse_moment(value)
    except ValueError as exc:
        raise BadRequest(f"?{name}={value}: {exc}") from None


# -- health and journal ------------------------------------------------------------------------


@blueprint.get("/health")
def health():
    return {"status": "ok"}


@blueprint.get("/journal")
def journal():
    """Entries, newest last. Filters: endpoint (repeatable or comma-separated), dialect, kind, user,
    item, has_violations, has_errors, since, until (epoch seconds or ISO 8601), after_seq, limit, and
    ``where``: a request pattern as JSON (a scenario's ``when``, as ``POST /__admin/requests/find`` takes)."""
    journal = _service().journal
    where = request.args.get("where", "").strip()
    pattern = _pattern(where, "?where") if where else None
    limit = _int("limit", None)
    endpoints = [name for value in request.args.getlist("endpoint") for name in value.split(",") if name]
    entries = journal.query(
        endpoints or None,
        dialect=request.args.get("dialect") or None,
        kind=request.args.get("kind") or None,
        user=request.args.get("user"),
        item=request.args.get("item"),
        has_violations=_flag("has_violations"),
        has_errors=_flag("has_errors"),
        since=_time("since"),
        until=_time("until"),
        after_seq=_int("after_seq", None),
        limit=None if pattern else limit,
    )
    if pattern:
        entries = pattern.select(entries)
        if limit is not None:
            entries = entries[-limit:] if limit > 0 else []
    return {"count": len(entries), **{k: v for k, v in journal.stats().items() if k != "file"}, "entries": entries}


def _pattern(text, where: str = ""):
    """A request pattern from JSON text (``where``: the query parameter it came in, if any);
    :class:`BadRequest` naming the field when it is not one."""
    from mockcre.scenarios.matching import Pattern, PatternError

    try:
        data = json.loads(text)
    except ValueError as exc:
        raise BadRequest(f"{where or 'the body'} is not JSON ({exc}); send a scenario's when object, "
                         'e.g. {"endpoint": "cre.query", "match": {"user_id": "u1"}}') from None
    try:
        return Pattern.checked(data)
    except PatternError as exc:
        raise BadRequest(f"{where}: {exc}" if where else str(exc), field=exc.field) from None


def _pattern_body():
    limit = _service().config.max_body_bytes
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        raise BadRequest(f"a pattern body may have at most {limit:,} bytes (mockcre serve --max-body-bytes)")
    return _pattern(raw or b"{}")


@blueprint.post("/requests/find")
def find_requests():
    """Journal entries that match a pattern (a scenario's ``when`` as JSON); when none do, the closest
    ones with the fields that differ. A read with a body: changes nothing, but is refused cross-site
    like the writes (a foreign page has no use for it and could only spend the mock's CPU)."""
    pattern = _pattern_body()
    entries = _service().journal.query()
    found = pattern.select(entries)
    if found:
        return {"count": len(found), "entries": found}
    near = [{"entry": entry, "differences": [{"field": f, "expected": x, "received": r} for f, x, r in differs]}
            for entry, differs in pattern.closest(entries, NEAR_MISSES)]
    return {"count": 0, "entries": [], "near_misses": near}


@blueprint.post("/requests/count")
def count_requests():
    """``{"count": N}``: how many journal entries match a pattern (see :func:`find_requests`)."""
    return {"count": len(_pattern_body().select(_service().journal.query()))}


@blueprint.delete("/journal")
def clear_journal():
    _service().journal.clear()
    return {"status": "ok"}


# -- reset and scenarios -----------------------------------------------------------------------


@blueprint.post("/reset")
def reset():
    """Empty store and journal, reset scenario states; ``?scenarios=1`` also unloads every scenario."""
    _service().reset(scenarios=bool(_flag("scenarios")))
    memory.give_back(collect=True)
    return {"status": "ok"}


@blueprint.get("/clock")
def clock():
    return _service().config.clock.to_dict()


CLOCK_MOVES = ("freeze", "advance", "resume")


@blueprint.post("/clock")
def move_clock():
    """One of ``{"freeze": T}``, ``{"advance": seconds or "30d"/"12h"/"90s"}``, ``{"resume": true}``."""
    change = request.get_json(force=True, silent=True)
    if not isinstance(change, dict) or len(change) != 1 or next(iter(change)) not in CLOCK_MOVES:
        return _json_error(400, 'send one of {"freeze": T}, {"advance": seconds or "30d"}, {"resume": true} as JSON; '
                                "T is epoch seconds or ISO 8601 such as 2017-01-01T00:00:00Z")
    (move, value), = change.items()
    clock = _service().config.clock
    try:
        if move == "freeze":
            clock.freeze(value)
        elif move == "advance":
            clock.advance(value)
        elif value is True:
            clock.resume()
        else:
            raise ValueError(f"expected true; got {value!r}")
    except ValueError as exc:
        return _json_error(400, f"{move}: {exc}")
    return clock.to_dict()


@blueprint.get("/scenarios")
def scenarios():
    return {"scenarios": _service().scenarios.describe()}


@blueprint.post("/scenarios")
def load_scenario():
    """Load one scenario from a YAML or JSON body: 201 with its name, 400 with the problems, 413 when too big."""
    from mockcre.scenarios import ScenarioError

    limit = _service().config.max_body_bytes
    raw = request.stream.read(limit + 1)
    if len(raw) > limit:
        return _json_error(413, f"a scenario body may have at most {limit:,} bytes "
                                                     "(mockcre serve --max-body-bytes)")
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return _json_error(400, "the scenario body is not UTF-8 text",
                           problems=[f"byte {exc.start}: not UTF-8"])
    if not raw.strip():
        return _json_error(400, "send a scenario as the body (YAML or JSON)",
                           problems=["the body is empty"])
    try:  # bytes: the scenario's own text, never taken for a path on the server
        name = _service().scenarios.load(raw, label="<admin>")
    except ScenarioError as exc:
        return _json_error(400, "invalid scenario", problems=list(exc.problems))
    return {"status": "loaded", "name": name}, 201


@blueprint.delete("/scenarios")
def unload_scenarios():
    """``?name=N`` unloads one scenario (404 when none has that name); without it, all of them."""
    service = _service()
    name = request.args.get("name")
    if name:
        known = {s.get("name") for s in service.scenarios.describe()}
        if name not in known:
            return _json_error(404, f"no scenario named {name!r} is loaded",
                               loaded=sorted(n for n in known if n))
        service.scenarios.unload(name)
        return {"status": "ok", "unloaded": [name]}
    names = [s.get("name") for s in service.scenarios.describe()]
    service.scenarios.unload()
    return {"status": "ok", "unloaded": names}


# -- state -------------------------------------------------------------------------------------


@blueprint.get("/state")
def state():
    """Items grouped by pool and users with their actions, per partition; one page of each list.

    ``?limit`` (default 100, at most 1000) and ``?offset`` window every list alike (items, each
    pool's members, users); ``next_offset`` is set while any list has more. Filters: ``partition``
    (``cre:prod``, ``cre:test``, ``dm:<bid>``), ``pool``, ``user``, ``item``; ``actions`` is how
    many of each user's newest actions to show (default 20)."""
    partition = request.args.get("partition")
    key = tuple(partition.split(":", 1)) if partition else None
    if key is not None and len(key) != 2:
        raise BadRequest(f"?partition={partition}: expected DIALECT:NAME, e.g. cre:prod or dm:BID")
    return snapshot(
        _service(),
        partition=key,
        pool=request.args.get("pool") or None,
        user=request.args.get("user") or None,
        item=request.args.get("item") or None,
        limit=_int("limit", STATE_LIMIT, low=1, high=STATE_MAX_LIMIT),
        offset=_int("offset", 0),
        actions=_int("actions", USER_ACTIONS),
    )


def snapshot(service, *, partition: tuple | None = None, pool: str | None = None, user: str | None = None,
             item: str | None = None, limit: int | None = STATE_LIMIT, offset: int = 0,
             actions: int | None = USER_ACTIONS) -> dict:
    """The store as JSON-ready data (``limit=None``: everything; ``actions=None``: every action)."""
    now = service.config.clock()
    stop = None if limit is None else offset + limit
    more = False

    def window(ids):
        nonlocal more
        ids = sorted(ids)
        if stop is not None and len(ids) > stop:
            more = True
        return ids[offset:stop]

    out = []
    with service.store.lock:
        for key, part in service.store.partitions.items():
            if partition is not None and tuple(key) != partition:
                continue
            pool_names = [p for p in part.pool_names() if pool is None or p == pool]
            candidates = set(part.pool_members(pool)) if pool is not None else set(part.items)
            if item is not None:
                candidates &= {item}
            page_items = window(candidates)
            pools = {}
            for name in pool_names:
                members = set(part.pool_members(name))
                if item is not None:
                    members &= {item}
                pools[name] = {"size": len(part.pool_members(name)), "items": window(members)}
            uids = set(part.users) if user is None else ({user} & set(part.users))
            page_users = window(uids)
            out.append({
                "partition": list(key),
                "totals": {"items": len(part.items), "users": len(part.users), "actions": len(part.actions),
                           "pools": len(part.pool_names())},
                "pools": pools,
                "items": {item_id: _item(part, part.items[item_id], now) for item_id in page_items},
                "users": _users(part, page_users, actions),
            })
    return {"partitions": out, "offset": offset, "limit": limit,
            "next_offset": stop if more else None}


def _item(part, item, now) -> dict:
    return {
        "pools": [GLOBAL_POOL, *item.pools],
        "on_shelf": item.on_shelf,
        "expired": not now < item.expire_time,
        "item_time": item.item_time,
        "expire_time": item.expire_time,
        "reports": item.reports,
        "popularity": part.popularity.get(item.item_id, 0.0),
        "record": item.record,
    }


def _users(part, uids: list, keep: int | None) -> dict:
    wanted = set(uids)
    history = {uid: [] for uid in uids}
    if wanted:
        for action in part.actions:
            if action.uid in wanted:
                history[action.uid].append(action)
    out = {}
    for uid in uids:
        user = part.users[uid]
        recent = history[uid] if keep is None else history[uid][-keep:] if keep else []
        out[uid] = {
            "action_count": user.actions,
            "items": dict(user.item_weights),
            "purchased": sorted(i for i, n in user.purchased.items() if n > 0),
            "actions": [{"item_id": a.item_id, "action": a.action, "time": a.time, "trace_id": a.trace_id,
                         "scene": a.scene, "position": a.position} for a in recent],
        }
    return out
