"""Issue 9.1, persistence: ``mockcre serve --state FILE`` survives ``kill -9``.

Every test drives the real ``mockcre serve`` (one process, one asyncio loop) in a subprocess of its own
session on a free 127.0.0.1 port, kills it with SIGKILL and
starts it again on the same SQLite file. What must hold:

- every upload answered code 0, in both dialects and all four partitions, is in the store after
  the restart, and ``GET /__admin/state`` shows exactly what it showed before the kill;
- ``mockcre state export`` gives back each acknowledged body byte for byte, in order;
- a kill in the middle of concurrent uploads loses no acknowledged report, and a report whose
  answer never arrived is either wholly there or wholly absent;
- rejected reports and queries are never kept; ``POST /__admin/reset`` empties the file too;
- export/import moves a store to a new file (all or nothing), and scenario states survive;
- ingest with ``--state`` is within 2x of ingest without it (issue 9.1).

Every process is killed in ``finally``; every wait is bounded.
"""

from __future__ import annotations

import gzip
import http.client
import json
import os
import random
import signal
import threading
import time
from pathlib import Path

import pytest

from httpkit import cre_action, cre_item, cre_upload, dm_action, dm_item, dm_recommend
from servekit import ServeProcess, run_cli, started_servers

HTTP_TIMEOUT = 15.0


class Serve(ServeProcess):
    """``mockcre serve`` with JSON helpers; ``kill9`` is what a crash looks like."""

    timeout = HTTP_TIMEOUT

    def get_json(self, path: str):
        status, _, body = self.request("GET", path)
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def post_json(self, path: str, raw: bytes = b"", headers=None) -> dict:
        status, _, body = self.request("POST", path, raw, {"Content-Type": "application/json", **(headers or {})})
        assert status == 200, (path, status, body[:500])
        return json.loads(body)

    def state(self) -> list:
        """Every partition, item, pool and user with every action: the whole store, unpaginated."""
        snapshot = self.get_json("/__admin/state?limit=1000&actions=1000000")
        assert snapshot["next_offset"] is None, "more than 1,000 entries in a list: page through them"
        return sorted(snapshot["partitions"], key=lambda p: p["partition"])

    def kill9(self) -> None:
        """SIGKILL the serve process (as a crash would): it serves in one process, so nothing outlives it."""
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)


@pytest.fixture
def servers(tmp_path):
    with started_servers(Serve, tmp_path) as start:
        yield start


def encode(body: dict) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def exported_bodies(db: Path, tmp_path: Path) -> tuple[list[bytes], dict]:
    """``mockcre state export`` of ``db``: the report bodies as bytes, in order, and the scenario states."""
    out = tmp_path / f"export-{random.randrange(10**9)}.jsonl"
    done = run_cli("state", "export", str(out), "--state", str(db))
    assert done.returncode == 0, done.stderr
    bodies, states = [], {}
    for line in out.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if "scenario" in row:
            states[row["scenario"]] = row["state"]
        else:
            bodies.append(row["body"].encode("utf-8"))
    return bodies, states


# -- what the tests send ---------------------------------------------------------------------------------


def mixed_reports(rng: random.Random, n: int, tag: str) -> list[tuple[str, bytes, dict]]:
    """``n`` reports that must be accepted: (path, raw body, extra headers), both dialects, all partitions."""
    reports = []
    for i in range(n):
        choice = i % 8
        if choice == 0:  # a cre item batch with Chinese text, tags, expiry
            records = [cre_item(f"{tag}-ci{i}-{k}", pool_id=f"p{k % 3};sale", tags={"男装": "1", f"t{k}": "2"},
                                describe=f"物料描述 {i}/{k} 🚀", item_time="1700000000", expire_time="1800000000")
                       for k in range(rng.randint(1, 30))]
            reports.append(("/upload", encode(cre_upload("1", records, seq_no=f"{tag}{i}")), {}))
        elif choice == 1:  # cre actions
            records = [cre_action(f"{tag}-cu{k % 4}", rng.choice(["101", "102", "103", "104"]),
                                  [f"{tag}-ci0-0", f"{tag}-x{i}-{k}"], oper_time=1_700_000_000 + i)
                       for k in range(rng.randint(1, 20))]
            reports.append(("/upload", encode(cre_upload("2", records, seq_no=f"{tag}{i}")), {}))
        elif choice == 2:  # the test namespace
            records = [cre_item(f"{tag}-ti{i}-{k}", pool_id="test") for k in range(rng.randint(1, 5))]
            reports.append(("/cre_test_upload", encode(cre_upload("1", records, seq_no=f"{tag}{i}")), {}))
        elif choice == 3:  # a dm item, bid b_demo
            reports.append(("/dm/data", encode(dm_item(f"{tag}-di{i}", pool_id="news;hot", tags=["a", "b"],
                                                       describe="最新款 " * rng.randint(1, 9))), {}))
        elif choice == 4:  # a dm action naming several items
            items = ";".join(f"{tag}-di{j}" for j in range(max(0, i - 12), i, 4)) or f"{tag}-di3"
            body = dm_action(f"{tag}-du{i % 5}", rng.choice([1, 2, 3, 4]), [items])
            reports.append(("/dm/data", encode(body), {}))
        elif choice == 5:  # the real dm host posts to "/": routed by Host; a second bid
            reports.append(("/", encode(dm_item(f"{tag}-ri{i}", bid="b_other", pool_id="p")),
                            {"Host": "data.dm.qcloud.com"}))
        elif choice == 6:  # gzip on the wire: the decoded body is what is kept
            records = [cre_item(f"{tag}-gi{i}-{k}") for k in range(3)]
            reports.append(("/upload", encode(cre_upload("1", records, seq_no=f"{tag}{i}")), {"Content-Encoding": "gzip"}))
        else:  # a second report of an existing item (reports counter, upsert)
            reports.append(("/upload", encode(cre_upload("1", [cre_item(f"{tag}-ci0-0", pool_id="again")],
                                                         seq_no=f"{tag}{i}")), {}))
    return reports


def rejected_reports(tag: str) -> list[tuple[str, bytes, dict]]:
    """Reports answered -1: none of them may reach the state file."""
    return [
        ("/upload", encode(cre_upload("1", [{"item_id": f"{tag}-no-pool"}])), {}),
        ("/upload", b'{"version": "1", "data_type": "1", "data": [', {}),
        ("/dm/data", encode(dm_item(f"{tag}-bad", pool_id="0")), {}),  # pool "0" is the global pool: an error
        ("/upload", b"\xff\xfe not utf-8", {}),
        ("/dm/data", encode({**dm_item(f"{tag}-nan"), "tags": "x"}).replace(b'"x"', b"NaN"), {}),
    ]


def send(server: Serve, conn: http.client.HTTPConnection, path: str, raw: bytes, headers: dict) -> dict:
    wire = gzip.compress(raw) if headers.get("Content-Encoding") == "gzip" else raw
    conn.request("POST", path, wire, {"Content-Type": "application/json", **headers})
    resp = conn.getresponse()
    body = resp.read()
    assert resp.status == 200, (path, resp.status, body[:300])
    return json.loads(body)


def accepted(reply: dict) -> bool:
    return reply.get("code") in (0, "0")


def upload_all(server: Serve, reports) -> list[bytes]:
    """Send ``reports`` one after another; every one must be accepted. Returns the acknowledged bodies."""
    conn = server.connection()
    acked = []
    try:
        for path, raw, headers in reports:
            reply = send(server, conn, path, raw, headers)
            assert accepted(reply), (path, raw[:200], reply)
            acked.append(raw)
    finally:
        conn.close()
    return acked


# -- the tests -------------------------------------------------------------------------------------------


def test_kill9_after_acknowledged_uploads_keeps_every_one_byte_for_byte(servers, tmp_path):
    db = tmp_path / "store.db"
    rng = random.Random(9)
    first = servers("--state", str(db))
    reports = mixed_reports(rng, 160, "a")
    acked = upload_all(first, reports)
    conn = first.connection()
    try:
        for path, raw, headers in rejected_reports("a"):
            assert send(first, conn, path, raw, headers)["code"] in (-1, "-1")
        # queries are answered but not kept
        send(first, conn, "/query", encode({"seq_no": "q", "token": "t", "proj_id": "1", "scn_id": "1", "uid_type": "5",
                                            "user_id": "a-cu1", "pool_id": "p1"}), {})
        send(first, conn, "/dm/service", encode(dm_recommend(uid="a-du1")), {})
    finally:
        conn.close()
    before = first.state()
    assert {tuple(p["partition"]) for p in before} == {("cre", "prod"), ("cre", "test"), ("dm", "b_demo"), ("dm", "b_other")}
    assert sum(p["totals"]["items"] for p in before) > 400 and sum(p["totals"]["actions"] for p in before) > 300

    first.kill9()
    second = servers("--state", str(db))
    assert second.state() == before  # items, pools, users, every action, popularity: as before the crash
    bodies, _ = exported_bodies(db, tmp_path)
    assert len(bodies) == len(acked) == 160
    assert bodies == acked  # byte for byte, in the order they were accepted


def test_kill9_during_concurrent_uploads_loses_no_acknowledged_report(servers, tmp_path):
    """Kill while 6 clients are uploading: what was answered 0 is kept; what was cut off is all or nothing."""
    db = tmp_path / "store.db"
    server = servers("--state", str(db))
    acked: list[bytes] = []
    sent: list[bytes] = []
    lock = threading.Lock()
    stop = threading.Event()
    kill_after = 300

    def client(n: int) -> None:
        rng = random.Random(n)
        conn = server.connection()
        try:
            for i in range(2_000):  # bounded; the kill ends it much sooner
                if stop.is_set():
                    return
                if i % 2:
                    records = [cre_item(f"k{n}-{i}-{k}", pool_id=f"p{k % 4}") for k in range(rng.randint(1, 40))]
                    path, raw = "/upload", encode(cre_upload("1", records, seq_no=f"{n}-{i}"))
                else:
                    path, raw = "/dm/data", encode(dm_action(f"k{n}-u{i % 7}", 2, [f"k{n}-{i}-a;k{n}-{i}-b"]))
                with lock:
                    sent.append(raw)
                try:
                    reply = send(server, conn, path, raw, {})
                except (OSError, http.client.HTTPException):
                    return  # the server is gone: this report's fate is unknown
                assert accepted(reply), reply
                with lock:
                    acked.append(raw)
        finally:
            conn.close()

    threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(6)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 60
    while len(acked) < kill_after and time.monotonic() < deadline and any(t.is_alive() for t in threads):
        time.sleep(0.002)
    assert len(acked) >= kill_after, f"only {len(acked)} uploads acknowledged in 60 s"
    server.kill9()  # uploads are in flight right now
    stop.set()
    for t in threads:
        t.join(timeout=20)
    acked_at_kill = list(acked)

    bodies, _ = exported_bodies(db, tmp_path)
    kept = set(bodies)
    assert len(kept) == len(bodies)  # no report kept twice
    missing = [raw[:120] for raw in acked_at_kill if raw not in kept]
    assert not missing, f"{len(missing)} acknowledged reports lost by kill -9, e.g. {missing[:3]}"
    assert kept <= set(sent)  # nothing that was not sent, and each kept body equals a sent one byte for byte
    in_flight = len(kept) - len(acked_at_kill)
    assert 0 <= in_flight <= 6  # at most one unanswered report per client was committed

    restarted = servers("--state", str(db))
    partitions = {tuple(p["partition"]): p for p in _all_pages(restarted)}
    items = set(partitions[("cre", "prod")]["items"])
    actions = partitions[("dm", "b_demo")]["totals"]["actions"]
    expected_items = {r["item_id"] for raw in kept if raw.startswith(b'{"version"') for r in json.loads(raw)["data"]}
    assert items == expected_items
    assert actions == 2 * sum(1 for raw in kept if b'"data_type": 2' in raw)


def _all_pages(server: Serve) -> list:
    """Every partition with every item and user, paging through /__admin/state."""
    merged: dict = {}
    offset = 0
    for _ in range(1_000):  # bounded
        page = server.get_json(f"/__admin/state?limit=1000&offset={offset}&actions=1000000")
        for part in page["partitions"]:
            key = tuple(part["partition"])
            into = merged.setdefault(key, {"partition": part["partition"], "totals": part["totals"], "items": {},
                                           "users": {}, "pools": {}})
            into["items"].update(part["items"])
            into["users"].update(part["users"])
            for name, pool in part["pools"].items():
                into["pools"].setdefault(name, {"size": pool["size"], "items": []})["items"] += pool["items"]
        if page["next_offset"] is None:
            return list(merged.values())
        offset = page["next_offset"]
    raise AssertionError("/__admin/state kept announcing more pages")


def test_restart_without_state_starts_empty_and_reset_empties_the_file(servers, tmp_path):
    plain = servers()
    upload_all(plain, mixed_reports(random.Random(1), 8, "m"))
    assert plain.state()
    plain.kill9()
    assert servers().state() == []  # without --state everything stayed in memory, as before

    db = tmp_path / "store.db"
    kept = servers("--state", str(db))
    upload_all(kept, mixed_reports(random.Random(2), 8, "r"))
    assert kept.post_json("/__admin/reset") == {"status": "ok"}
    upload_all(kept, mixed_reports(random.Random(3), 3, "after"))
    expected = kept.state()
    kept.kill9()
    again = servers("--state", str(db))
    assert again.state() == expected  # only what came after the reset
    assert all(not item.startswith("r-") for p in expected for item in p["items"])


def test_scenario_state_survives_kill9(servers, tmp_path):
    db = tmp_path / "store.db"
    scenario = tmp_path / "stateful.yaml"
    scenario.write_text(
        "name: stateful\n"
        "rules:\n"
        "  - name: first recommendation fails\n"
        "    when: {endpoint: dm.service, state: Started}\n"
        "    then: {code: -2, msg: busy, next_state: Recovered}\n"
        "  - name: degraded after the second\n"
        "    when: {endpoint: dm.service, state: Recovered, match: {uid: degrade}}\n"
        "    then: {passthrough: true, next_state: Degraded}\n", encoding="utf-8")
    first = servers("--state", str(db), "--scenario", str(scenario))
    upload_all(first, [("/dm/data", encode(dm_item("s1", pool_id="p")), {})])
    assert first.post_json("/dm/service", encode(dm_recommend(uid="u")))["code"] == -2
    assert first.get_json("/__admin/scenarios")["scenarios"][0]["state"] == "Recovered"
    first.kill9()

    second = servers("--state", str(db), "--scenario", str(scenario))
    assert second.get_json("/__admin/scenarios")["scenarios"][0]["state"] == "Recovered"
    reply = second.post_json("/dm/service", encode(dm_recommend(uid="u")))
    assert reply["code"] == 0 and [e["item"] for e in reply["data"]] == ["s1"]  # the -2 rule no longer fires
    assert second.post_json("/dm/service", encode(dm_recommend(uid="degrade")))["code"] == 0
    second.kill9()

    _, states = exported_bodies(db, tmp_path)
    assert states == {"stateful": "Degraded"}
    third = servers("--state", str(db), "--scenario", str(scenario))
    assert third.get_json("/__admin/scenarios")["scenarios"][0]["state"] == "Degraded"


def test_export_import_round_trip_to_a_new_file(servers, tmp_path):
    db = tmp_path / "origin.db"
    scenario = tmp_path / "s.yaml"
    scenario.write_text("name: s\nrules:\n  - when: {endpoint: cre.query, state: Started}\n"
                        "    then: {code: -3, msg: none, next_state: Later}\n", encoding="utf-8")
    origin = servers("--state", str(db), "--scenario", str(scenario))
    acked = upload_all(origin, mixed_reports(random.Random(5), 40, "e"))
    origin.post_json("/query", encode({"seq_no": "1", "token": "t", "proj_id": "1", "scn_id": "1", "uid_type": "5",
                                       "user_id": "x"}))
    expected = origin.state()
    origin.kill9()

    exported = tmp_path / "moved.jsonl"
    done = run_cli("state", "export", str(exported), "--state", str(db))
    assert done.returncode == 0, done.stderr
    lines = exported.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(acked) + 1  # one line a report, one for the scenario state
    assert all(isinstance(json.loads(line), dict) for line in lines)
    assert "物料描述" in exported.read_text(encoding="utf-8")  # readable text, not \\u escapes

    target = tmp_path / "target.db"
    done = run_cli("state", "import", str(exported), "--state", str(target))
    assert done.returncode == 0, done.stderr
    moved = servers("--state", str(target), "--scenario", str(scenario))
    assert moved.state() == expected
    assert moved.get_json("/__admin/scenarios")["scenarios"][0]["state"] == "Later"
    assert exported_bodies(target, tmp_path)[0] == acked

    # an import is all or nothing: a broken line leaves the target as it was
    broken = tmp_path / "broken.jsonl"
    broken.write_text("\n".join(lines[:5] + ["{not json", *lines[5:]]) + "\n", encoding="utf-8")
    other = tmp_path / "other.db"
    done = run_cli("state", "import", str(broken), "--state", str(other))
    assert done.returncode == 2 and "line 6" in done.stderr and "Traceback" not in done.stderr
    assert exported_bodies(other, tmp_path) == ([], {})


def _ingest_seconds(server: Serve, batches: list[bytes]) -> float:
    conn = server.connection()
    try:
        started = time.perf_counter()
        for raw in batches:
            assert accepted(send(server, conn, "/upload", raw, {}))
        return time.perf_counter() - started
    finally:
        conn.close()


def test_ingest_with_state_is_within_2x_of_memory_only(servers, tmp_path):
    """Issue 9.1: persistence may cost at most 2x on ingest (1,000-record batches, one transaction each)."""
    memory = servers()
    kept = servers("--state", str(tmp_path / "perf.db"))

    def batches(tag: str, n: int) -> list[bytes]:
        out = []
        for b in range(n):
            items = [cre_item(f"{tag}-{b}-{i}", tags=["a", "b"], describe="d" * 40) for i in range(1_000)]
            actions = [cre_action(f"{tag}-u{i % 50}", "102", [f"{tag}-{b}-{i}"]) for i in range(1_000)]
            out += [encode(cre_upload("1", items)), encode(cre_upload("2", actions))]
        return out

    _ingest_seconds(memory, batches("warm", 1))
    _ingest_seconds(kept, batches("warm", 1))
    plain, persisted = [], []
    for round_ in range(3):  # alternate, keep the best of each: other tests share the CPU
        plain.append(_ingest_seconds(memory, batches(f"m{round_}", 2)))
        persisted.append(_ingest_seconds(kept, batches(f"k{round_}", 2)))
    ratio = min(persisted) / min(plain)
    print(f"ingest of 4,000 records: memory {min(plain):.3f} s, --state {min(persisted):.3f} s, ratio {ratio:.2f}")
    assert ratio <= 2.0, f"--state makes ingest {ratio:.2f}x slower (memory {plain}, state {persisted})"
