"""Dialect adapters: the only modules that know what a cre or dm body and reply look like."""

from __future__ import annotations

from . import cre, dm

DIALECTS = {"cre": cre.DIALECT, "dm": dm.DIALECT}


def for_endpoint(endpoint: str):
    """The adapter that serves an endpoint name such as ``cre.test_query`` or ``dm.data``."""
    return DIALECTS[endpoint.split(".", 1)[0]]
