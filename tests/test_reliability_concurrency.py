"""Issue 9.2, concurrency: 32 clients uploading mixed batches at once while others query.

One real ``mockcre serve`` (one process, ``--state`` and ``--journal`` on) on a free
127.0.0.1 port. 32 client threads, each on its own keep-alive connection, upload their own items
and actions in a seeded random mix — cre item batches, cre action batches (several item_action
entries per record), single dm item reports, dm actions naming several items, each client also
asking for recommendations between its uploads — while 4 more threads query both dialects and
read the admin API. Afterwards:

- no request got a 5xx, a non-JSON answer or a dropped connection (no retries are made);
- every item and every action is in the store exactly once per report: item records, report
  counts and each user's action history (in order) equal what was sent, per partition;
- the journal recorded exactly one entry per API request, and the ``--journal`` file holds them
  all, each ``seq`` once; the ``--state`` file holds one row per accepted report.

The volume is the issue's (1,000 items and 5,000 actions per client) times
``MOCKCRE_CONCURRENCY_SCALE`` (default 0.5, so the test takes well under 90 s on 2 cores); the
32 clients and the mix stay the same at any scale.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import random
import threading
import time
from collections import Counter, defaultdict

import pytest

from servekit import ServeProcess

CLIENTS = 32
QUERIERS = 4
SCALE = float(os.environ.get("MOCKCRE_CONCURRENCY_SCALE", "0.5"))
ITEMS_PER_CLIENT = max(10, round(1_000 * SCALE))
ACTIONS_PER_CLIENT = max(50, round(5_000 * SCALE))
USERS_PER_CLIENT = 8
BIDS = ("bid0", "bid1", "bid2", "bid3")
NOW = 1_700_000_000
RUN_LIMIT = 150.0  # seconds: every client thread stops by then, finished or not
TIMEOUT = 30.0


def dumps(body) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


# -- the plan: every request of every client, and what the store must hold afterwards ------------------------


class Expected:
    def __init__(self):
        self.items: dict[tuple, dict] = {}  # (partition, item_id) -> {"record": ..., "reports": n}
        self.actions: dict[tuple, list] = defaultdict(list)  # (partition, uid) -> [(item, action, time, trace, scene, pos)]
        self.reports = 0  # accepted item/action requests


def cre_record(c: int, k: int, pool: str, rng: random.Random) -> dict:
    record = {"busi_id": "1000191", "test_id": "1", "item_id": f"c{c}-i{k}", "pool_id": pool,
              "describe": f"物料 {c}/{k} " + "x" * rng.randint(0, 60), "tags": {f"t{rng.randint(0, 9)}": "1"}}
    if rng.random() < 0.3:
        record["score"] = str(rng.randint(1, 100))
    return record


def plan(c: int, expected: Expected, lock: threading.Lock) -> list[tuple[str, bytes, str]]:
    """Client ``c``'s requests in order: (path, body, kind) with kind "report" or "query"."""
    rng = random.Random(1000 + c)
    bid = BIDS[c % len(BIDS)]
    users = [f"c{c}-u{j}" for j in range(USERS_PER_CLIENT)]
    n_cre_items = round(ITEMS_PER_CLIENT * 0.7)
    cre_ids = list(range(n_cre_items))
    dm_ids = list(range(n_cre_items, ITEMS_PER_CLIENT))
    steps: list[tuple[str, bytes, str]] = []
    mine = Expected()

    def cre_items_batch(ids):
        records = [cre_record(c, k, f"p{k % 5}", rng) for k in ids]
        for r in records:
            entry = mine.items.setdefault((("cre", "prod"), r["item_id"]), {"reports": 0})
            entry["record"], entry["reports"] = r, entry["reports"] + 1
        steps.append(("/upload", dumps({"version": "1", "seq_no": f"{c}-{len(steps)}", "data_type": "1", "token": "t",
                                        "data": records}), "report"))

    def dm_item_report(k):
        body = {"request_id": f"{NOW}000_{c}_{len(steps)}", "data_type": 1, "bid": bid, "MD5": "0" * 32,
                "item_id": f"c{c}-i{k}", "pool_id": f"d{k % 3}", "tags": "a;b", "describe": f"商品 {k}"}
        entry = mine.items.setdefault((("dm", bid), body["item_id"]), {"reports": 0})
        entry["record"], entry["reports"] = {**body, "MD5": "0000…"}, entry["reports"] + 1  # the state masks the signature
        steps.append(("/dm/data", dumps(body), "report"))

    def cre_actions_batch(budget):
        records, used = [], 0
        while used < budget:
            uid = rng.choice(users)
            n = min(rng.randint(1, 5), budget - used)
            code = rng.choice(["101", "102", "103", "104"])
            when = NOW - rng.randint(0, 86_400)
            entries = [{"item_id": f"c{c}-i{rng.choice(cre_ids)}", "trace_id": f"tr{rng.randint(0, 99)}",
                        "position_id": str(p)} for p in range(n)]
            records.append({"uid_type": "5", "uid": uid, "oper_time": str(when), "source": "1",
                            "action_id": code, "item_action": entries})
            for p, e in enumerate(entries):
                mine.actions[(("cre", "prod"), uid)].append((e["item_id"], code, when, e["trace_id"], None, p))
            used += n
        steps.append(("/upload", dumps({"version": "1", "seq_no": f"{c}-{len(steps)}", "data_type": "2", "token": "t",
                                        "data": records}), "report"))
        return used

    def dm_action_report(budget):
        uid = rng.choice(users)
        n = min(rng.randint(1, 8), budget)
        ids = [f"c{c}-i{rng.choice(dm_ids)}" for _ in range(n)]
        code = rng.choice([1, 2, 3, 4])
        when = NOW - rng.randint(0, 86_400)
        body = {"request_id": f"{NOW}000_{c}_{len(steps)}", "data_type": 2, "bid": bid, "MD5": "0" * 32,
                "uid_type": 1, "uid": uid, "item_id": ";".join(ids), "scene_id": "s1", "action_type": code,
                "source": "tx", "trace_id": f"dt{len(steps)}", "action_time": str(when)}
        for p, item in enumerate(ids):
            mine.actions[(("dm", bid), uid)].append((item, str(code), when, body["trace_id"], "s1", p))
        steps.append(("/dm/data", dumps(body), "report"))
        return n

    def query():
        uid = rng.choice(users)
        if rng.random() < 0.5:
            body = {"seq_no": f"q{c}-{len(steps)}", "token": "t", "proj_id": "1", "scn_id": "1", "uid_type": "5",
                    "user_id": uid, "pool_id": f"p{rng.randint(0, 4)},p{rng.randint(0, 4)}", "request_num": "10"}
            steps.append(("/query", dumps(body), "query"))
        else:
            body = {"request_id": f"{NOW}000_q{c}_{len(steps)}", "service_type": 3, "bid": bid, "MD5": "0" * 32,
                    "uid_type": 1, "uid": uid, "scene_id": "s1", "pool_id": "0", "request_num": 20}
            steps.append(("/dm/service", dumps(body), "query"))

    # items first (in batches, dm one by one), interleaved with actions on what already exists
    pending_cre, pending_dm = list(cre_ids), list(dm_ids)
    actions_left = ACTIONS_PER_CLIENT
    cre_ids_known, dm_ids_known = [], []
    while pending_cre or pending_dm or actions_left:
        roll = rng.random()
        if pending_cre and (roll < 0.25 or not (pending_dm or actions_left)):
            size = rng.randint(1, 100)
            batch, pending_cre = pending_cre[:size], pending_cre[size:]
            cre_items_batch(batch)
            cre_ids_known += batch
        elif pending_dm and (roll < 0.5 or not actions_left):
            k = pending_dm.pop(0)
            dm_item_report(k)
            dm_ids_known.append(k)
        elif actions_left and (cre_ids_known or dm_ids_known):
            if dm_ids_known and (rng.random() < 0.3 or not cre_ids_known):
                actions_left -= dm_action_report(actions_left)
            else:
                actions_left -= cre_actions_batch(min(actions_left, rng.randint(1, 150)))
        elif pending_cre:
            size = rng.randint(1, 100)
            batch, pending_cre = pending_cre[:size], pending_cre[size:]
            cre_items_batch(batch)
            cre_ids_known += batch
        else:
            k = pending_dm.pop(0)
            dm_item_report(k)
            dm_ids_known.append(k)
        if rng.random() < 0.1:
            query()
    # some items reported a second time (an update: reports 2, the newer record)
    again = rng.sample(cre_ids, max(1, len(cre_ids) // 20))
    cre_items_batch(again)
    mine.reports = sum(1 for _, _, kind in steps if kind == "report")
    with lock:
        expected.items.update(mine.items)
        expected.actions.update(mine.actions)
        expected.reports += mine.reports
    return steps


# -- running it ------------------------------------------------------------------------------------------------


class Results:
    def __init__(self):
        self.lock = threading.Lock()
        self.failures: list[str] = []
        self.api_requests = 0
        self.admin_requests = 0
        self.by_kind = Counter()

    def fail(self, text: str) -> None:
        with self.lock:
            if len(self.failures) < 50:
                self.failures.append(text)


def exchange(conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None):
    conn.request(method, path, body, {"Content-Type": "application/json"} if body is not None else {})
    resp = conn.getresponse()
    return resp.status, resp.getheader("Content-Type", ""), resp.read()


def uploader(port: int, steps, results: Results, deadline: float) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        for path, body, kind in steps:
            if time.monotonic() > deadline:
                results.fail("uploader stopped by the time limit")
                return
            try:
                status, ctype, reply = exchange(conn, "POST", path, body)
            except (OSError, http.client.HTTPException) as exc:  # a dropped connection: no retry
                results.fail(f"POST {path}: connection failed: {exc!r}")
                return
            with results.lock:
                results.api_requests += 1
                results.by_kind[kind] += 1
            if status != 200 or not ctype.startswith("application/json"):
                results.fail(f"POST {path}: HTTP {status} {ctype} {reply[:200]!r}")
                continue
            answer = json.loads(reply)
            if kind == "report" and answer.get("code") not in (0, "0"):
                results.fail(f"POST {path}: report refused {answer} for {body[:200]!r}")
            if kind == "query" and answer.get("code") not in (0, "0", -3):
                results.fail(f"POST {path}: query answered {answer}")
    finally:
        conn.close()


def querier(port: int, n: int, results: Results, stop: threading.Event, deadline: float) -> None:
    rng = random.Random(n)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=TIMEOUT)
    try:
        for i in range(100_000):  # bounded; stop ends it when the uploaders are done
            if stop.is_set() or time.monotonic() > deadline:
                return
            c = rng.randrange(CLIENTS)
            roll = i % 5
            if roll == 0:
                method, path, body = "POST", "/query", dumps({
                    "seq_no": "1", "token": "t", "proj_id": "1", "scn_id": "1", "uid_type": "5",
                    "user_id": f"c{c}-u{rng.randrange(USERS_PER_CLIENT)}", "pool_id": "p1"})
            elif roll == 1:
                method, path, body = "POST", "/test-query", dumps({
                    "seq_no": "1", "token": "t", "proj_id": "1", "scn_id": "1", "uid_type": "5", "user_id": "nobody",
                    "pool": {"item_type": "1", "items": [f"c{c}-i{k}" for k in range(5)]}})
            elif roll == 2:
                method, path, body = "POST", "/dm/service", dumps({
                    "request_id": f"{NOW}000_z{n}_{i}", "service_type": rng.choice([1, 2, 3, 4]), "bid": BIDS[c % 4],
                    "MD5": "0" * 32, "uid_type": 1, "uid": f"c{c}-u0", "scene_id": "s1", "pool_id": "0;d1"})
            elif roll == 3:
                method, path, body = "GET", f"/__admin/journal?limit=3&endpoint=dm.data&user=c{c}-u1", None
            else:
                method, path, body = "GET", f"/__admin/state?partition=dm:{BIDS[c % 4]}&limit=5&user=c{c}-u2", None
            try:
                status, ctype, reply = exchange(conn, method, path, body)
            except (OSError, http.client.HTTPException) as exc:
                results.fail(f"{method} {path}: connection failed: {exc!r}")
                return
            with results.lock:
                if method == "POST":
                    results.api_requests += 1
                    results.by_kind["side query"] += 1
                else:
                    results.admin_requests += 1
            if status != 200 or not ctype.startswith("application/json"):
                results.fail(f"{method} {path}: HTTP {status} {ctype} {reply[:200]!r}")
                continue
            answer = json.loads(reply)
            if method == "POST" and answer.get("code") not in (0, "0", -3):
                results.fail(f"POST {path}: answered {answer}")
    finally:
        conn.close()


def get_json(port: int, path: str):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        status, _, body = exchange(conn, "GET", path, None)
    finally:
        conn.close()
    assert status == 200, (path, status, body[:300])
    return json.loads(body)


def whole_store(port: int) -> dict:
    """partition -> {"items": {...}, "users": {...}, "totals": {...}}, every page of /__admin/state."""
    merged: dict = {}
    offset = 0
    for _ in range(10_000):
        page = get_json(port, f"/__admin/state?limit=1000&offset={offset}&actions=1000000")
        for part in page["partitions"]:
            into = merged.setdefault(tuple(part["partition"]), {"items": {}, "users": {}, "totals": part["totals"]})
            into["items"].update(part["items"])
            into["users"].update(part["users"])
        if page["next_offset"] is None:
            return merged
        offset = page["next_offset"]
    raise AssertionError("/__admin/state never ran out of pages")


@pytest.mark.slow
def test_32_concurrent_clients_mixed_batches_exactly_once(tmp_path):
    expected, plan_lock = Expected(), threading.Lock()
    plans = [plan(c, expected, plan_lock) for c in range(CLIENTS)]
    db, journal_file = tmp_path / "state.db", tmp_path / "journal.jsonl"
    with ServeProcess(tmp_path, "--state", str(db), "--journal", str(journal_file)) as server:
        port = server.port
        results = Results()
        stop = threading.Event()
        started = time.monotonic()
        limit = started + RUN_LIMIT
        threads = [threading.Thread(target=uploader, args=(port, steps, results, limit), daemon=True) for steps in plans]
        side = [threading.Thread(target=querier, args=(port, n, results, stop, limit), daemon=True) for n in range(QUERIERS)]
        for t in threads + side:
            t.start()
        for t in threads:
            t.join(timeout=max(0.0, limit - time.monotonic()) + 5)
        stop.set()
        for t in side:
            t.join(timeout=TIMEOUT + 5)
        elapsed = time.monotonic() - started
        assert not any(t.is_alive() for t in threads + side), "client threads still running after the time limit"
        n_items = len(expected.items)
        n_actions = sum(len(v) for v in expected.actions.values())
        print(f"\n{CLIENTS} clients + {QUERIERS} queriers: {results.api_requests:,} API requests "
              f"({dict(results.by_kind)}) and {results.admin_requests:,} admin reads in {elapsed:.1f} s "
              f"({results.api_requests / elapsed:,.0f} req/s); {n_items:,} items, {n_actions:,} actions, "
              f"{expected.reports:,} reports")
        assert not results.failures, "\n".join(results.failures)

        # -- the store: every item and action exactly once per report ----------------------------------------
        store = whole_store(port)
        for key, part in store.items():
            want_items = {i: e for (p, i), e in expected.items.items() if p == key}
            assert set(part["items"]) == set(want_items), f"{key}: item ids differ"
            for item_id, want in want_items.items():
                got = part["items"][item_id]
                assert got["reports"] == want["reports"], (key, item_id, got["reports"], want["reports"])
                assert got["record"] == want["record"], (key, item_id)
            want_actions = sum(len(v) for (p, _), v in expected.actions.items() if p == key)
            assert part["totals"]["actions"] == want_actions, (key, part["totals"]["actions"], want_actions)
            for (p, uid), history in expected.actions.items():
                if p != key:
                    continue
                got = [(a["item_id"], a["action"], a["time"], a["trace_id"], a["scene"], a["position"])
                       for a in part["users"][uid]["actions"]]
                want = list(history)
                assert got == want, f"{key} {uid}: {len(got)} actions, expected {len(want)}"
                assert part["users"][uid]["action_count"] == len(want)
        assert set(store) == {("cre", "prod")} | {("dm", b) for b in BIDS}

        # -- the journal: one entry per API request --------------------------------------------------------
        stats = get_json(port, "/__admin/journal?limit=0")
        assert stats["recorded"] == results.api_requests, (stats["recorded"], results.api_requests)
        assert stats["kept"] == min(results.api_requests, stats["size"]) or stats["bytes"] <= stats["max_bytes"]
        assert stats["kept"] <= stats["size"]
        seqs = []
        with open(journal_file, encoding="utf-8") as lines:
            for line in lines:
                seqs.append(json.loads(line)["seq"])
        assert len(seqs) == results.api_requests and sorted(seqs) == list(range(1, results.api_requests + 1))

        # -- the state file: one row per accepted report ----------------------------------------------------
        import sqlite3

        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as con:
            assert con.execute("SELECT COUNT(*) FROM reports").fetchone()[0] == expected.reports
        print(f"journal recorded {stats['recorded']:,} (kept {stats['kept']:,}), state file {expected.reports:,} reports")
