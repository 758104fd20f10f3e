"""Scenario fixtures: records preloaded exactly as if reported, validated the same way.

cre records are checked in one upload body per kind (fast for big catalogues); dm records one
body each, as dm reports them. Violations come back with the fixture's own position.
"""

from __future__ import annotations

import re

from mockcre.contracts import ERROR, check
from mockcre.dialects import DIALECTS
from mockcre.common.domain import DATA_TYPES

_PARTITIONS = {"cre": ("cre", "prod"), "cre_test": ("cre", "test")}
_DM_DEFAULTS = {"MD5": "0" * 32, "request_id": "1700000000000_000"}
_DATA_TYPE = {kind: int(code) for code, kind in DATA_TYPES.items()}


def partition_key(name: str) -> tuple:
    return _PARTITIONS[name] if name in _PARTITIONS else ("dm", name.split(":", 1)[1])


def prepare(fixtures: dict, now: float, strict: bool = False):
    """``(batches, problems)``: batches are ``(partition keys, kind, records)``; problems ``(pointer, message)``."""
    into = [partition_key(n) for n in fixtures.get("into", []) if isinstance(n, str) and (n in _PARTITIONS or n.startswith("dm:"))]
    batches, problems = [], []
    for kind in ("items", "actions"):
        records = fixtures.get(kind)
        if not isinstance(records, list):
            continue
        single = "item" if kind == "items" else "action"
        cre = [(i, r) for i, r in enumerate(records) if isinstance(r, dict) and "bid" not in r]
        dm = [(i, r) for i, r in enumerate(records) if isinstance(r, dict) and "bid" in r]
        if cre:
            body = {"version": "1", "data_type": str(_DATA_TYPE[single]), "token": "fixture", "data": [r for _, r in cre]}
            found = [(path, _renamed(message, kind, cre)) for path, message in
                     _errors(body, "cre", single, now, strict, lambda p: _cre_path(p, kind, cre))]
            problems += found
            if not found:
                batches.append(_batch(body, "cre", single, now, into or [_PARTITIONS["cre"], _PARTITIONS["cre_test"]]))
        for i, record in dm:
            body = {**_DM_DEFAULTS, "data_type": _DATA_TYPE[single], **record}
            found = _errors(body, "dm", single, now, strict, lambda p, i=i: f"/{kind}/{i}{p}")
            problems += found
            if not found:
                batches.append(_batch(body, "dm", single, now, into or [("dm", str(record["bid"]))]))
    return batches, problems


def _errors(body, dialect, kind, now, strict, where):
    return [(where(v.path), v.message) for v in check(body, dialect, kind, strict, now=now).violations if v.severity == ERROR]


def _cre_path(pointer: str, kind: str, indexed) -> str:
    """``/data/3/uid`` of the batch body back to ``/items/<original index>/uid``."""
    parts = pointer.split("/")
    if len(parts) > 2 and parts[1] == "data" and parts[2].isdigit():
        return f"/{kind}/{indexed[int(parts[2])][0]}" + "".join("/" + p for p in parts[3:])
    return f"/{kind}"


def _renamed(message: str, kind: str, indexed) -> str:
    """``data[3].uid: …`` of the batch body back to ``items[<original index>].uid: …``."""
    return re.sub(r"data\[(\d+)\]", lambda m: f"{kind}[{indexed[int(m.group(1))][0]}]", message)


def _batch(body, dialect, kind, now, partitions):
    """The records of one fixture body, read once at load time and written again on every reset."""
    adapter = DIALECTS[dialect]
    return partitions, kind, adapter.items(body, int(now)) if kind == "item" else list(adapter.actions(body, int(now)))
