"""What was received, what was answered, and what was wrong with it: a bounded ring buffer.

Every request the service answers becomes one entry (built by ``Service.record``)::

    {"seq": 7, "time": 1700000000.123, "endpoint": "cre.upload", "dialect": "cre", "kind": "item",
     "partition": ["cre", "prod"], "headers": {...}, "body": {...}, "violations": [...],
     "scenario": [...], "reply": {...}, "latency_ms": 0.4, "users": [...], "items": [...]}

``seq`` numbers entries from 1 for the life of the journal (clearing does not restart them), so a
client can tell what it has already seen. ``users`` and ``items`` are derived here from the body
for the filters, by asking the dialect (:meth:`Dialect.users`, :meth:`Dialect.item_ids`).
Secrets (``token``, ``MD5``, ``Authorization``…) are masked before an entry is made.

The buffer holds at most ``size`` entries (and ``max_bytes`` of them as JSON): the oldest drop
off, so memory stays flat however long the server runs. With a ``path`` every entry is also
appended to that file as one JSON line (the file is the complete record, the buffer the recent
past).

An entry is kept as its JSON text beside the few fields the filters read, and parsed again when
asked for. Kept as dicts, ten thousand entries were a few hundred thousand objects for Python's
cyclic garbage collector to walk on every full collection while requests waited (the benchmark's
p99); now each is one small record, and a journal full of 1,000-action uploads holds ~60 MB.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import logging
import threading
from collections import deque
from typing import NamedTuple

from mockcre.common import jsontext
from mockcre.dialects import DIALECTS
from mockcre.dialects.base import mask
from mockcre.common.domain import SECRET_HEADERS

log = logging.getLogger("mockcre")

DEFAULT_SIZE = 10_000
DEFAULT_MAX_BYTES = 32 * 1024 * 1024  # of entries as JSON text, which is how they are kept
MAX_BODY_BYTES = 1024 * 1024  # of one entry's body as JSON text: a larger one is kept cut, with its length and hash
MAX_IDS = 1_000  # users/items kept per entry for the filters (a cre batch holds at most a few hundred)


def masked_headers(headers) -> dict:
    """The request's headers as shown anywhere: :data:`~mockcre.common.domain.SECRET_HEADERS` masked, in any case."""
    return {k: mask(v) if k.lower() in SECRET_HEADERS else v for k, v in headers}


# -- users and items of a body -----------------------------------------------------------------


def body_users(body, dialect: str | None = None) -> list[str]:
    """The user ids a request body is about (empty when none or unreadable); any dialect's when not given."""
    if dialect and isinstance(body, dict):  # every journaled request but an unroutable one
        return DIALECTS[dialect].users(body)[:MAX_IDS]
    return _each_dialect(body, lambda adapter: adapter.users(body))


def body_items(body, dialect: str | None = None) -> list[str]:
    """The item ids a request body names: reported, acted on, asked to rank or the current item."""
    if dialect and isinstance(body, dict):
        return DIALECTS[dialect].item_ids(body)[:MAX_IDS]
    return _each_dialect(body, lambda adapter: adapter.item_ids(body))


def _each_dialect(body, read) -> list[str]:
    """What every dialect reads in ``body``, each id once (a dialect's own list is already free of repeats)."""
    if not isinstance(body, dict):
        return []
    return list(dict.fromkeys(found for adapter in DIALECTS.values() for found in read(adapter)))[:MAX_IDS]


def kept_body(body):
    """``body`` as a journal entry keeps it: whole up to :data:`MAX_BODY_BYTES` of JSON text, else the
    start of that text with its full length and SHA-256, so one request cannot take the journal's budget."""
    text = jsontext.dumps(body)
    if len(text) <= MAX_BODY_BYTES:
        return body
    return {"truncated": True, "bytes": len(text), "sha256": hashlib.sha256(text).hexdigest(),
            "start": text[:TRUNCATED_START_BYTES].decode("utf-8", "ignore")}


def is_cut(body) -> bool:
    """Whether a journal entry's body is the stand-in :func:`kept_body` made for one too large to keep."""
    return isinstance(body, dict) and body.get("truncated") is True and "sha256" in body and "start" in body


TRUNCATED_START_BYTES = 4096  # of a cut body's JSON text: enough to tell which request it was


def has_errors(entry: dict) -> bool:
    return any(v.get("severity") == "error" for v in entry.get("violations") or ())


# -- the journal -------------------------------------------------------------------------------


class _Kept(NamedTuple):
    """One entry as the journal holds it: what the filters read, and the entry as JSON text."""

    seq: int
    time: float
    endpoint: str | None
    dialect: str | None
    kind: str | None
    users: tuple
    items: tuple
    violations: bool
    errors: bool
    text: bytes  # UTF-8 JSON


class Journal:
    """At most ``size`` entries and ``max_bytes`` of them as JSON text, whichever binds first.

    The byte budget keeps a stream of large batches (a cre upload may carry hundreds of records)
    from multiplying the count bound into gigabytes; the newest entry is always kept."""

    def __init__(self, size: int = DEFAULT_SIZE, path: str | None = None, max_bytes: int = DEFAULT_MAX_BYTES):
        size = int(size)
        if size < 1:
            raise ValueError(f"journal size must be at least 1; got {size}")
        self.size = size
        self.max_bytes = int(max_bytes)
        self.path = path
        self._entries: deque[_Kept] = deque()
        self._bytes = 0  # JSON length of the kept entries
        self._seq = itertools.count(1)
        self._lock = threading.Lock()
        self.recorded = 0  # entries ever recorded, dropped ones included
        self._file = open(path, "ab") if path else None  # UTF-8 JSON lines
        self._file_failed = False

    def record(self, entry: dict) -> int:
        """Number ``entry``, add its users and items, keep it (dropping the oldest when full), log it; its seq.
        ``entry`` becomes the journal's: it is changed, and must not be used again."""
        dialect = entry.get("dialect")
        body = entry.get("body")
        entry["users"] = users = body_users(body, dialect)
        entry["items"] = items = body_items(body, dialect)
        text = jsontext.dumps(entry)
        if len(text) > MAX_BODY_BYTES and body is not None:  # only then can the body be over it
            entry["body"] = kept_body(body)
            text = jsontext.dumps(entry)  # the kept line below is a new, exact-size bytes object
        violations = entry.get("violations")
        errors = bool(violations) and has_errors(entry)
        with self._lock:
            seq = next(self._seq)
            line = b'{"seq":%d,%s' % (seq, text[1:]) if len(text) > 2 else b'{"seq":%d}' % seq
            self._entries.append(_Kept(seq, entry.get("time") or 0, entry.get("endpoint"), dialect, entry.get("kind"),
                                       tuple(users), tuple(items), bool(violations), errors, line))
            self._bytes += len(line)
            while len(self._entries) > 1 and (len(self._entries) > self.size or self._bytes > self.max_bytes):
                self._bytes -= len(self._entries.popleft().text)
            self.recorded += 1
            if self._file is not None:
                self._write(line)
        return seq

    def _write(self, line: bytes) -> None:
        try:
            self._file.write(line + b"\n")
            self._file.flush()
        except (OSError, ValueError) as exc:  # a full disk must not fail the request being answered
            if not self._file_failed:
                self._file_failed = True
                log.error("mockcre: cannot append to the journal file %s: %s", self.path, exc)

    def query(self, endpoint=None, *, dialect: str | None = None, kind: str | None = None,
              user: str | None = None, item: str | None = None, has_violations: bool | None = None,
              has_errors: bool | None = None, since: float | None = None, until: float | None = None,
              after_seq: int | None = None, limit: int | None = None) -> list[dict]:
        """Entries matching every given filter, oldest first.

        ``endpoint`` is one name (``cre.query``) or several; ``since``/``until`` are epoch seconds
        (inclusive); ``after_seq`` keeps entries newer than a seq already seen; ``limit`` keeps
        the newest N of the matches. Each call returns fresh dicts: changing them changes nothing here.
        """
        with self._lock:
            found = list(self._entries)
        if after_seq is not None:
            found = [e for e in found if e.seq > after_seq]
        if endpoint:
            names = {endpoint} if isinstance(endpoint, str) else set(endpoint)
            found = [e for e in found if e.endpoint in names]
        if dialect:
            found = [e for e in found if e.dialect == dialect]
        if kind:
            found = [e for e in found if e.kind == kind]
        if user is not None:
            found = [e for e in found if str(user) in e.users]
        if item is not None:
            found = [e for e in found if str(item) in e.items]
        if has_violations is not None:
            found = [e for e in found if e.violations == has_violations]
        if has_errors is not None:
            found = [e for e in found if e.errors == has_errors]
        if since is not None:
            found = [e for e in found if e.time >= since]
        if until is not None:
            found = [e for e in found if e.time <= until]
        if limit is not None:
            found = found[-limit:] if limit > 0 else []
        return [json.loads(e.text) for e in found]

    def entries(self, endpoint=None, has_violations: bool | None = None, **filters) -> list[dict]:
        """Same as :meth:`query` (the older name)."""
        return self.query(endpoint, has_violations=has_violations, **filters)

    @property
    def last_seq(self) -> int:
        """seq of the newest entry ever recorded (0 before the first)."""
        return self.recorded  # seq counts from 1 and never restarts

    def stats(self) -> dict:
        with self._lock:
            kept = len(self._entries)
            oldest = self._entries[0].seq if self._entries else None
            held = self._bytes
        return {"size": self.size, "kept": kept, "recorded": self.recorded, "oldest_seq": oldest,
                "bytes": held, "max_bytes": self.max_bytes, "file": self.path}

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._bytes = 0

    def __len__(self) -> int:
        return len(self._entries)

    def close(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None
