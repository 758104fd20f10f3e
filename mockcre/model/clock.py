"""The mock's one clock: everything that reads "now" asks it, so a test can move time instead of waiting.

Store defaults and expiry, rankings, semantic rules, the quality report, journal times and
``--state`` restore all read the :class:`Clock` of the app's config. It runs on wall time until
told otherwise: ``freeze(T)`` stops it at T, ``advance(seconds)`` moves it (frozen or running),
``resume()`` goes back to wall time. Latency and other measurements stay on ``time.perf_counter``.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import datetime, timedelta, timezone
from typing import Callable

_DURATION = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86_400}


def parse_moment(value) -> float:
    """Epoch seconds from a number, a string of digits, an ISO 8601 text (``2017-01-01T00:00:00Z``;
    no zone means UTC) or a ``datetime``. Raises ValueError saying what is expected."""
    if isinstance(value, bool):
        raise ValueError(f"expected epoch seconds or an ISO 8601 time such as 2017-01-01T00:00:00Z; got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, str):
        text = value.strip()
        try:
            return float(text)
        except ValueError:
            pass
        try:
            return parse_moment(datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00")))
        except ValueError:
            pass
    raise ValueError(f"expected epoch seconds or an ISO 8601 time such as 2017-01-01T00:00:00Z; got {value!r}")


def parse_duration(value) -> float:
    """Seconds from a number, a ``timedelta`` or a text such as ``"90s"``, ``"15m"``, ``"12h"``, ``"30d"``."""
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f'expected seconds or a duration such as "90s", "15m", "12h" or "30d"; got {value!r}')
    return float(match.group(1)) * _UNIT_SECONDS[match.group(2)]


def iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, timezone.utc).isoformat().replace("+00:00", "Z")


class Clock:
    """Wall time (``source``), or frozen at a moment, or shifted by an offset; thread-safe."""

    def __init__(self, source: Callable[[], float] = time.time, start=None):
        self._source = source
        self._lock = threading.Lock()
        self.start = None if start is None else parse_moment(start)  # where reset() puts it; None: wall time
        self._frozen_at: float | None = self.start
        self._offset = 0.0
        self.on_change: Callable[[dict], None] | None = None  # told the new settings (--state keeps them)

    @classmethod
    def of(cls, value) -> "Clock":
        """A config's ``clock``: a Clock as it is, a callable as its source, or a moment to start frozen at."""
        if isinstance(value, Clock):
            return value
        if callable(value):
            return cls(source=value)
        return cls(start=value)

    def __call__(self) -> float:
        """The mock's time now (every request reads it several times: one call, not a call and a property)."""
        frozen_at = self._frozen_at
        return frozen_at if frozen_at is not None else self._source() + self._offset

    now = property(__call__)

    @property
    def frozen(self) -> bool:
        return self._frozen_at is not None

    @property
    def moved(self) -> bool:
        """Not plain wall time: frozen or shifted (the dashboard then shows the mock's time)."""
        return self._frozen_at is not None or self._offset != 0.0

    def freeze(self, when=None) -> "Clock":
        """Stop at ``when`` (epoch seconds, ISO 8601 text or datetime), or where it is now."""
        moment = self.now if when is None else parse_moment(when)
        with self._lock:
            self._frozen_at, self._offset = moment, 0.0
        return self._changed()

    def advance(self, by) -> "Clock":
        """Move forward (or back, with a negative amount) by seconds, a timedelta or ``"30d"``/``"12h"``/``"90s"``."""
        seconds = parse_duration(by)
        with self._lock:
            if self._frozen_at is not None:
                self._frozen_at += seconds
            else:
                self._offset += seconds
        return self._changed()

    def resume(self) -> "Clock":
        """Back to wall time."""
        with self._lock:
            self._frozen_at, self._offset = None, 0.0
        return self._changed()

    def reset(self, start=None) -> "Clock":
        """Back to where it started: ``start`` (a scenario's ``clock:``) if no start was pinned, else the pinned one."""
        moment = self.start if self.start is not None else (None if start is None else parse_moment(start))
        return self.freeze(moment) if moment is not None else self.resume()

    def _changed(self) -> "Clock":
        if self.on_change is not None:
            self.on_change(self.settings())
        return self

    def settings(self) -> dict:
        """What ``--state`` keeps of the clock to put it back after a restart."""
        return {"frozen_at": self._frozen_at, "offset": self._offset}

    def restore(self, settings: dict) -> None:
        with self._lock:
            self._frozen_at, self._offset = settings.get("frozen_at"), float(settings.get("offset") or 0.0)

    def to_dict(self) -> dict:
        now = self.now
        return {"now": now, "iso": iso(now), "frozen": self.frozen}

    def __repr__(self) -> str:
        return f"<Clock {iso(self.now)}{' frozen' if self.frozen else ''}>"
