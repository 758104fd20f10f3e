"""What was received, what was answered, and what was wrong with it: a bounded ring buffer."""

from __future__ import annotations

import itertools
import json
import threading
from collections import deque

SECRET_FIELDS = ("token", "MD5")
SECRET_HEADERS = {"authorization", "cookie", "x-api-key", "proxy-authorization"}


def mask(value) -> str:
    """Enough of a secret to tell two apart, never enough to reuse it."""
    text = str(value)
    return text[:4] + "…" if len(text) > 8 else "…"


def masked_body(body):
    if isinstance(body, dict) and any(k in body for k in SECRET_FIELDS):
        return {k: mask(v) if k in SECRET_FIELDS else v for k, v in body.items()}
    return body


def masked_headers(headers) -> dict:
    return {k: mask(v) if k.lower() in SECRET_HEADERS else v for k, v in headers}


class Journal:
    def __init__(self, size: int = 10_000, path: str | None = None):
        self._entries: deque = deque(maxlen=size)
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self._file = open(path, "a", encoding="utf-8") if path else None

    def record(self, entry: dict) -> dict:
        with self._lock:
            entry["seq"] = next(self._seq)
            self._entries.append(entry)
            if self._file is not None:
                self._file.write(json.dumps(entry, ensure_ascii=False, default=str) + "\n")
                self._file.flush()
        return entry

    def entries(self, endpoint: str | None = None, has_violations: bool | None = None) -> list[dict]:
        with self._lock:
            found = list(self._entries)
        if endpoint:
            found = [e for e in found if e["endpoint"] == endpoint]
        if has_violations is not None:
            found = [e for e in found if bool(e["violations"]) == has_violations]
        return found

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
