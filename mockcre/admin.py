"""``/__admin``: look inside the running fake and steer it (health, journal, reset, state)."""

from __future__ import annotations

from flask import Blueprint, current_app, request

blueprint = Blueprint("admin", __name__)


def _service():
    return current_app.extensions["mockcre"]


@blueprint.get("/health")
def health():
    return {"status": "ok"}


@blueprint.get("/journal")
def journal():
    flag = request.args.get("has_violations")
    entries = _service().journal.entries(
        endpoint=request.args.get("endpoint"),
        has_violations=None if flag is None else flag.lower() in ("1", "true", "yes"),
    )
    return {"count": len(entries), "entries": entries}


@blueprint.delete("/journal")
def clear_journal():
    _service().journal.clear()
    return {"status": "ok"}


@blueprint.post("/reset")
def reset():
    _service().reset()
    return {"status": "ok"}


@blueprint.get("/state")
def state():
    service = _service()
    now = service.config.clock()
    with service.store.lock:
        partitions = []
        for key, part in service.store.partitions.items():
            partitions.append({
                "partition": list(key),
                "pools": {pool: sorted(part.pool_members(pool)) for pool in part.pool_names()},
                "items": {item_id: {"on_shelf": item.on_shelf, "expired": not now < item.expire_time,
                                    "expire_time": item.expire_time, "reports": item.reports, "record": item.record}
                          for item_id, item in part.items.items()},
                "users": {uid: {"actions": user.actions, "items": dict(user.item_weights)} for uid, user in part.users.items()},
                "actions": len(part.actions),
            })
    return {"partitions": partitions}
