"""Small text helpers for what people read: counts with the right plural, dates instead of epoch seconds."""

from __future__ import annotations

import time

_IRREGULAR = {"body": "bodies", "entry": "entries", "summary": "summaries"}


def utc_date(epoch) -> str:
    """Epoch seconds as people read them, the same on every page and report: ``2026-01-08 00:00:00 UTC``."""
    return time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(epoch)))


def plural(n: int, noun: str) -> str:
    """``"1 body"``, ``"2 bodies"``, ``"0 errors"``."""
    return f"{n:,} {noun if n == 1 else _IRREGULAR.get(noun, noun + 's')}"
