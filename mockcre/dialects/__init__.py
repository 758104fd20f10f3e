"""Dialects: the only modules that know what a cre or dm body and reply look like; they turn bodies
into the model's records and the model's rankings into replies."""

from __future__ import annotations

from functools import lru_cache

from . import cre, dm

DIALECTS = {"cre": cre.DIALECT, "dm": dm.DIALECT}
#: Where any dialect's body nests records, outermost first (see :mod:`mockcre.scenarios.matching`).
RECORD_PATHS = tuple(path for adapter in DIALECTS.values() for path in adapter.record_paths)


def record_paths(endpoint: str | None = None) -> tuple:
    """Where the body of ``endpoint`` nests records a field path may mean; every dialect's when unknown."""
    dialect = DIALECTS.get(endpoint.split(".", 1)[0]) if isinstance(endpoint, str) else None
    return dialect.record_paths if dialect else RECORD_PATHS


@lru_cache(maxsize=64)
def for_endpoint(endpoint: str):
    """The adapter that serves an endpoint name such as ``cre.test_query`` or ``dm.data`` (asked several times a request)."""
    return DIALECTS[endpoint.split(".", 1)[0]]
