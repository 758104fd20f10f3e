"""``--state FILE``: every accepted report kept in SQLite, so a restart (even after kill -9) loses nothing.

The file holds what was *accepted* — the raw bytes of each report answered code 0, in order —
the scenario states and the clock's position; the in-memory store is rebuilt from them on start by the same dialect
adapters that built it the first time. Each report is one transaction, committed before the
reply is sent. WAL with synchronous=NORMAL survives a killed process (the OS keeps the log);
only a power cut can lose the last commits.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from typing import Iterator

SCHEMA = """
CREATE TABLE IF NOT EXISTS reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    partition TEXT NOT NULL,     -- JSON array, e.g. ["cre", "prod"]
    dialect TEXT NOT NULL,
    kind TEXT NOT NULL,          -- item | action
    received REAL NOT NULL,      -- the app clock when it was accepted
    body BLOB NOT NULL           -- the request body exactly as it arrived
);
CREATE TABLE IF NOT EXISTS scenario_states (name TEXT PRIMARY KEY, state TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS clock (one INTEGER PRIMARY KEY CHECK (one = 1), settings TEXT NOT NULL);  -- Clock.settings()
"""


class StateWriteError(OSError):
    """A report could not be written to the state file (disk full, file too large, I/O error): nothing was kept."""


class StateFile:
    def __init__(self, path: str):
        self.path = path
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._lock = threading.Lock()
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(SCHEMA)

    def append(self, partition: tuple, dialect: str, kind: str, received: float, raw: bytes) -> None:
        """Keep one accepted report; :class:`StateWriteError` when the file cannot take it (then it holds nothing of it)."""
        try:
            with self._lock:
                self._db.execute("INSERT INTO reports (partition, dialect, kind, received, body) VALUES (?, ?, ?, ?, ?)",
                                 (json.dumps(list(partition)), dialect, kind, received, bytes(raw)))
        except (sqlite3.Error, OSError) as exc:  # one statement, one transaction: SQLite rolled it back
            raise StateWriteError(f"cannot write the report to the state file {self.path}: {exc}") from exc

    def reports(self) -> Iterator[tuple]:
        """``(partition, dialect, kind, received, raw)`` in the order they were accepted."""
        with self._lock:
            rows = self._db.execute("SELECT partition, dialect, kind, received, body FROM reports ORDER BY seq").fetchall()
        for partition, dialect, kind, received, body in rows:
            yield tuple(json.loads(partition)), dialect, kind, received, bytes(body)

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM reports").fetchone()[0]

    def save_state(self, name: str, state: str) -> None:
        with self._lock:
            self._db.execute("INSERT INTO scenario_states (name, state) VALUES (?, ?) "
                             "ON CONFLICT(name) DO UPDATE SET state = excluded.state", (name, state))

    def states(self) -> dict:
        with self._lock:
            return dict(self._db.execute("SELECT name, state FROM scenario_states").fetchall())

    def save_clock(self, settings: dict) -> None:
        with self._lock:
            self._db.execute("INSERT INTO clock (one, settings) VALUES (1, ?) "
                             "ON CONFLICT(one) DO UPDATE SET settings = excluded.settings", (json.dumps(settings),))

    def clock(self) -> dict | None:
        """The clock's last saved settings (frozen moment, offset), or None when it was never moved."""
        with self._lock:
            row = self._db.execute("SELECT settings FROM clock").fetchone()
        return json.loads(row[0]) if row else None

    def clear(self) -> None:
        with self._lock:
            self._db.execute("BEGIN")
            self._db.execute("DELETE FROM reports")
            self._db.execute("DELETE FROM scenario_states")
            self._db.execute("COMMIT")

    # -- moving a store between machines: one JSON object a line ----------------------------

    def export(self, out) -> int:
        n = 0
        for partition, dialect, kind, received, raw in self.reports():
            out.write(json.dumps({"partition": list(partition), "dialect": dialect, "kind": kind, "received": received,
                                  "body": raw.decode("utf-8")}, ensure_ascii=False) + "\n")
            n += 1
        for name, state in sorted(self.states().items()):
            out.write(json.dumps({"scenario": name, "state": state}, ensure_ascii=False) + "\n")
            n += 1
        return n

    def load_lines(self, lines) -> int:
        """Append exported lines (all in one transaction: an import is whole or nothing)."""
        n = 0
        with self._lock:
            self._db.execute("BEGIN")
            try:
                for number, line in enumerate(lines, 1):
                    if not line.strip():
                        continue
                    try:
                        row = json.loads(line)
                        if "scenario" in row:
                            self._db.execute("INSERT INTO scenario_states (name, state) VALUES (?, ?) ON CONFLICT(name) "
                                             "DO UPDATE SET state = excluded.state", (row["scenario"], row["state"]))
                        else:
                            self._db.execute("INSERT INTO reports (partition, dialect, kind, received, body) VALUES (?, ?, ?, ?, ?)",
                                             (json.dumps(row["partition"]), row["dialect"], row["kind"], float(row["received"]),
                                              row["body"].encode("utf-8")))
                    except (ValueError, KeyError, TypeError) as exc:
                        raise ValueError(f"line {number}: not an exported mockcre record ({exc})") from exc
                    n += 1
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return n

    def close(self) -> None:
        with self._lock:
            self._db.close()
