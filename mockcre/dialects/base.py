"""What both dialects share: value coercion (lenient bodies carry strings for numbers and back),
the data_type codes and the secret fields."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from mockcre.domain import DATA_TYPES

#: The credentials a body may carry (cre ``token``, dm ``MD5`` signature): never shown or stored in clear.
SECRET_FIELDS = ("token", "MD5")


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
        raise WrongKind(f"data_type: expected {item_code} (item, 物料) or {action_code} (action, 行为); {got}", "/data_type")
    return kind


def mask(value) -> str:
    """Enough of a secret to tell two apart, never enough to reuse it."""
    text = str(value)
    return text[:4] + "…" if len(text) > 8 else "…"


def masked_body(body):
    """``body`` with its :data:`SECRET_FIELDS` masked (the same object when it has none)."""
    if isinstance(body, dict) and any(k in body for k in SECRET_FIELDS):
        return {k: mask(v) if k in SECRET_FIELDS else v for k, v in body.items()}
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
