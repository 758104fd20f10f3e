"""``/__admin/``: a server-rendered dashboard (journal, request detail, store, quality report).

No build step and no external fonts, scripts or styles: it works offline. Every reported string
is escaped by Jinja's autoescaping; the JSON view below escapes as it renders.
"""

from __future__ import annotations

import json
import secrets
import shlex
import threading
from collections import OrderedDict

from flask import Blueprint, current_app, redirect, render_template, request, url_for
from markupsafe import Markup, escape

from mockcre.tools import quality
from mockcre.common.domain import GLOBAL_POOL, PATHS, SECRET_HEADERS
from mockcre.dialects.base import is_secret
from mockcre.common.text import utc_date
from mockcre.model.recommend import RecRequest, rank
from mockcre.scenarios import ScenarioError
from mockcre.scenarios.matching import Pattern

blueprint = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static")
PAGE = 100
NOTICES_KEPT = 32  # what an action said, until the page it redirects to shows it


def _notices() -> OrderedDict:
    """This app's notices by unguessable id: ``?notice=`` shows only what the dashboard itself said,
    never text a framing or linking page put into the URL."""
    return current_app.extensions.setdefault("mockcre.notices", OrderedDict())


_notices_lock = threading.Lock()


def _notify(message: str):
    """Redirect to the journal page showing ``message``."""
    notice = secrets.token_urlsafe(12)
    with _notices_lock:
        kept = _notices()
        kept[notice] = message
        while len(kept) > NOTICES_KEPT:
            kept.popitem(last=False)
    return redirect(url_for("dashboard.journal_page", notice=notice))


def _service():
    return current_app.extensions["mockcre"]


blueprint.add_app_template_filter(utc_date, "utc")


@blueprint.context_processor
def _mock_clock():
    """Every page shows the mock's time when a test or --clock moved it from wall time."""
    clock = _service().config.clock
    return {"mock_clock": clock.to_dict() if clock.moved else None}


def report_of(service) -> quality.Report:
    """The live report: the journal is read and parsed before the store lock is taken (requests keep flowing)."""
    return quality.analyse(service.store, service.journal.entries(), service.config.clock(), lock=service.store.lock)


@blueprint.get("/report")
def report():
    """The data-quality report: JSON by default, ``?format=html`` for the page, ``?format=text``."""
    from mockcre.tools import report_render

    result = report_of(_service())
    fmt = request.args.get("format", "json")
    if fmt == "html":
        return render_template("dashboard_report.html", report=result.to_dict(), tab="report", request_link="requests/")
    if fmt == "text":
        return report_render.text(result), 200, {"Content-Type": "text/plain; charset=utf-8"}
    return result.to_dict()


@blueprint.get("/")
def journal_page():
    service = _service()
    endpoint = request.args.get("endpoint") or None
    user = (request.args.get("user") or "").strip()
    only_bad = request.args.get("violations") == "1"
    where = (request.args.get("where") or "").strip()
    entries = service.journal.entries(endpoint=endpoint, has_violations=True if only_bad else None)
    if user:
        entries = [e for e in entries if user in e.get("users", ())]
    pattern_problem = None
    if where:
        try:
            entries = Pattern.checked(json.loads(where)).select(entries)
        except ValueError as exc:  # not JSON, or a PatternError
            pattern_problem, entries = f"Not a request pattern: {exc}", []
    entries = list(reversed(entries))[:PAGE]
    template = "_journal_rows.html" if request.args.get("partial") else "dashboard_journal.html"
    return render_template(template, entries=entries, endpoint=endpoint, user=user, only_bad=only_bad, where=where,
                           pattern_problem=pattern_problem, endpoints=_endpoints(), tab="journal",
                           scenarios=service.scenarios.describe(),
                           message=_notices().get(request.args.get("notice", "")))


@blueprint.get("/requests/<int:seq>")
def request_page(seq: int):
    entry = next((e for e in _service().journal.entries() if e.get("seq") == seq), None)
    if entry is None:
        return render_template("dashboard_missing.html", seq=seq, tab="journal"), 404
    marks = {}
    for v in entry["violations"]:
        marks.setdefault(_existing_pointer(entry["body"], v["path"]), []).append(v)
    return render_template("dashboard_request.html", e=entry, body_html=json_html(entry["body"], marks),
                           reply=json.dumps(entry["reply"], ensure_ascii=False, indent=2), tab="journal",
                           received=utc_date(entry["time"]), curl=curl_of(entry, request.host_url),
                           masked=masked_names(entry))


@blueprint.get("/store")
def store_page():
    service = _service()
    now = service.config.clock()
    with service.store.lock:
        partitions = []
        for key, part in service.store.partitions.items():
            pools = {pool: len(list(part.pool_members(pool))) for pool in part.pool_names()}
            items = [{"id": i.item_id, "pools": ";".join(i.pools) or GLOBAL_POOL, "on_shelf": i.on_shelf,
                      "expired": not now < i.expire_time, "expire_time": i.expire_time, "tags": ", ".join(i.tags),
                      "reports": i.reports} for i in list(part.items.values())[:PAGE]]
            users = sorted(part.users.items(), key=lambda kv: -kv[1].actions)[:PAGE]
            partitions.append({"key": "/".join(key), "pools": pools, "rows": items, "item_count": len(part.items),
                               "users": [(uid, u.actions) for uid, u in users], "user_count": len(part.users)})
    return render_template("dashboard_store.html", partitions=partitions, tab="store")


@blueprint.get("/store/user")
def user_page():
    service = _service()
    key = tuple(request.args.get("partition", "").split("/", 1))
    uid = request.args.get("uid", "")
    with service.store.lock:
        part = service.store.peek(key)
        if part is None or uid not in part.users:
            return render_template("dashboard_missing.html", seq=None, tab="store"), 404
        history = [a for a in part.actions if a.uid == uid][-PAGE:]
        ranking = rank(part, RecRequest(uid=uid, pools=[GLOBAL_POOL], limit=20), service.config.clock())
    return render_template("dashboard_user.html", partition="/".join(key), uid=uid, history=history,
                           ranking=ranking, tab="store")


@blueprint.post("/ui/reset")
def ui_reset():
    _service().reset()
    return _notify("Store, journal and scenario states were reset.")


@blueprint.post("/ui/scenarios")
def ui_load_scenario():
    upload = request.files.get("file")
    text = upload.read() if upload else request.form.get("text", "").encode("utf-8")
    try:  # bytes: always the scenario's own text, never a path on the server
        name = _service().scenarios.load(text, label=upload.filename if upload else "<dashboard>")
        message = f"Loaded scenario {name}."
    except ScenarioError as exc:
        message = "The scenario does not load: " + "; ".join(exc.problems)
    return _notify(message)


# Headers a replay must not copy: the transport sets them anew (the body is sent decoded, as the journal holds it).
_TRANSPORT_HEADERS = {"host", "content-length", "connection", "content-encoding", "transfer-encoding", "accept-encoding",
                      "user-agent", "accept", "keep-alive", "te", "upgrade", "expect"}


def curl_of(entry: dict, base_url: str) -> str:
    """A curl command that sends ``entry``'s request again: its method, path, headers that matter and body.

    The body is the journal's JSON, byte for byte as the journal holds it (secrets masked), sent
    with ``--data-binary`` so that no newline or byte is changed on the way.
    """
    path = next((p for p, endpoint in PATHS.items() if endpoint == entry["endpoint"]), "/")
    headers = {k: v for k, v in (entry.get("headers") or {}).items() if k.lower() not in _TRANSPORT_HEADERS}
    if not any(k.lower() == "content-type" for k in headers):
        headers["Content-Type"] = "application/json"
    body = json.dumps(entry["body"], ensure_ascii=False, separators=(",", ":"))
    parts = ["curl", "-sS", "-X", "POST", shlex.quote(base_url.rstrip("/") + path)]
    for name, value in headers.items():
        parts += ["-H", shlex.quote(f"{name}: {value}")]
    return " ".join(parts + ["--data-binary", shlex.quote(body)])


def masked_names(entry: dict) -> list[str]:
    """The headers and body fields whose values the journal masked: a replay must have them filled in."""
    names = sorted(k for k in (entry.get("headers") or {}) if k.lower() in SECRET_HEADERS)
    stack = [entry.get("body")]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            names += [k for k, v in node.items() if is_secret(k) and v is not None and k not in names]
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return names


def _endpoints():
    from mockcre.common.domain import ENDPOINTS

    return ENDPOINTS


def _existing_pointer(body, pointer: str) -> str:
    """The deepest part of ``pointer`` that exists in ``body`` (a missing field marks its parent)."""
    node, good = body, ""
    for part in [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            break
        good += "/" + part.replace("~", "~0").replace("/", "~1")
    return good


def json_html(value, marks: dict, pointer: str = "", indent: int = 0) -> Markup:
    """Pretty JSON as escaped HTML, each value with violations wrapped in a <mark> that says why."""
    pad = "  " * indent
    if isinstance(value, dict):
        inner = ",\n".join(f"{pad}  {escape(json.dumps(k, ensure_ascii=False))}: "
                           f"{json_html(v, marks, pointer + '/' + str(k).replace('~', '~0').replace('/', '~1'), indent + 1)}"
                           for k, v in value.items())
        text = Markup("{\n" + inner + "\n" + pad + "}") if value else Markup("{}")
    elif isinstance(value, list):
        inner = ",\n".join(f"{pad}  {json_html(v, marks, f'{pointer}/{i}', indent + 1)}" for i, v in enumerate(value))
        text = Markup("[\n" + inner + "\n" + pad + "]") if value else Markup("[]")
    else:
        text = escape(json.dumps(value, ensure_ascii=False))
    found = marks.get(pointer)
    if not found:
        return Markup(text)
    severity = "error" if any(v["severity"] == "error" for v in found) else "warning"
    why = "; ".join(v["message"] for v in found)
    return Markup(f'<mark class="violation {severity}" data-path="{escape(pointer or "/")}" title="{escape(why)}">') + text + Markup("</mark>")
