"""What both dialects share: value coercion (lenient bodies carry strings for numbers and back)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass


class WrongKind(ValueError):
    """A body that is valid JSON but not what this endpoint takes (e.g. an action posted to /dm/service)."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.path = path


@dataclass(frozen=True)
class Route:
    """What an endpoint is: its dialect, the kinds it takes and the partition it writes to."""

    endpoint: str
    kinds: tuple
    namespace: str


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


def number(value, default: float = 0.0) -> float:
    if isinstance(value, bool) or value is None:
        return default
    try:
        result = float(value)
    except (TypeError, ValueError):
        return default
    return result if math.isfinite(result) else default


def seconds(value, default: int) -> int:
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
    return [part.strip() for part in re.split(f"[{re.escape(separators)}]", str(value)) if part.strip()]


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
