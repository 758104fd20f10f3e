"""Small text helpers for what people read: counts with the right plural."""

from __future__ import annotations

_IRREGULAR = {"body": "bodies", "entry": "entries", "summary": "summaries"}


def plural(n: int, noun: str) -> str:
    """``"1 body"``, ``"2 bodies"``, ``"0 errors"``."""
    return f"{n:,} {noun if n == 1 else _IRREGULAR.get(noun, noun + 's')}"
