"""The journal: what each entry holds, the filters, the ring-buffer bound and the JSON-lines file."""

from __future__ import annotations

import dataclasses
import gc
import json
import time
import tracemalloc
from decimal import Decimal

import pytest

from mockcre.common import jsontext
from mockcre.contracts import WARNING, Violation
from mockcre.dialects.base import masked_body
from mockcre.faces.app import create_app
from mockcre.pipeline.journal import Journal, body_items, body_users
from mockcre.pipeline.service import Service

TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"
CRE_ITEMS = {"version": "1", "seq_no": "1", "data_type": "1", "token": TOKEN, "data": [
    {"busi_id": "1", "test_id": "1", "item_id": "a1", "pool_id": "p1", "describe": "one"},
    {"busi_id": "1", "test_id": "1", "item_id": "a2", "pool_id": "p1", "describe": "two"}]}
CRE_ACTION = {"version": "1", "seq_no": "2", "data_type": "2", "token": TOKEN, "data": [
    {"uid_type": "2", "uid": "u1", "oper_time": "1700000000", "source": "1", "action_id": "102", "busi_id": "1",
     "item_action": [{"item_id": "a1"}, {"item_id": "a3"}]}]}
CRE_QUERY = {"seq_no": "3", "token": TOKEN, "proj_id": "1", "scn_id": "1", "uid_type": "2", "user_id": "u2",
             "pool_id": "p1", "pool": {"item_type": "1", "items": ["a1", "a9"]}}
DM_ACTION = {"MD5": "40379db889f9124819228947faaeb1f7", "request_id": "1700000000000_123", "data_type": 2,
             "bid": "b1", "uid_type": 3, "uid": "d1", "item_id": "x1;x2", "scene_id": "1", "action_type": 2,
             "source": "tx", "trace_id": "t1", "action_time": "1700000000"}
DM_RECOMMEND = {"MD5": "40379db889f9124819228947faaeb1f7", "service_type": 3, "request_id": "1700000000000_124",
                "bid": "b1", "uid_type": 3, "uid": "d2", "scene_id": "1", "request_num": 5, "pool_id": "0", "cid": "x1"}
HEADERS = [("Content-Type", "application/json"), ("Authorization", "Bearer very-secret-value")]


def send(service: Service, endpoint: str, body, headers=HEADERS):
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return json.loads(service.handle(endpoint, raw, headers).body)


@pytest.fixture
def service():
    return Service()


def test_an_entry_holds_the_whole_exchange(service):
    reply = send(service, "cre.upload", CRE_ITEMS)
    [entry] = service.journal.query()
    assert entry["seq"] == 1
    assert entry["endpoint"] == "cre.upload" and entry["dialect"] == "cre" and entry["kind"] == "item"
    assert entry["partition"] == ["cre", "prod"]
    assert entry["reply"] == reply and reply["code"] == "0"
    assert entry["body"]["data"] == CRE_ITEMS["data"]
    assert entry["violations"] == [] and entry["scenario"] == []
    assert entry["latency_ms"] >= 0 and abs(entry["time"] - time.time()) < 60
    assert entry["items"] == ["a1", "a2"] and entry["users"] == []


def test_secrets_are_masked_in_body_and_headers(service):
    send(service, "cre.upload", CRE_ITEMS)
    [entry] = service.journal.query()
    assert TOKEN not in json.dumps(entry)
    assert "very-secret-value" not in json.dumps(entry)
    assert entry["body"]["token"].startswith("7d10") and entry["headers"]["Authorization"].startswith("Bear")


def test_masking_copies_only_the_way_to_a_secret_and_never_changes_the_body():
    """Every journaled request is masked, so a body without secrets is given back as it is, and one with
    secrets shares every object and array that holds none."""
    plain = {"user_id": "u", "pool": {"items": ["a", {"b": 1}]}, "n": None}
    assert masked_body(plain) is plain
    body = {"TOKEN": "abcdefghij", "md5": None, "keep": {"x": [1]}, "deep": [{"x": 1}, {"Md5": "0123456789abcdef"}]}
    sent = json.loads(json.dumps(body))
    masked = masked_body(body)
    assert masked == {"TOKEN": "abcd…", "md5": None, "keep": {"x": [1]}, "deep": [{"x": 1}, {"Md5": "0123…"}]}
    assert body == sent  # the request as parsed is untouched
    assert masked["keep"] is body["keep"] and masked["deep"][0] is body["deep"][0]
    assert [masked_body(v) for v in (None, "token", 3, [])] == [None, "token", 3, []]


def test_a_violation_as_a_dict_has_every_field():
    violation = Violation("/a", "a: expected a string", WARNING, "schema.type")
    assert violation.to_dict() == dataclasses.asdict(violation)


@pytest.mark.parametrize("body, dialect, users, items", [
    (CRE_ITEMS, "cre", [], ["a1", "a2"]),
    (CRE_ACTION, "cre", ["u1"], ["a1", "a3"]),
    (CRE_QUERY, "cre", ["u2"], ["a1", "a9"]),
    (DM_ACTION, "dm", ["d1"], ["x1", "x2"]),
    (DM_RECOMMEND, "dm", ["d2"], ["x1"]),
    ({"uid": 7, "item_id": "a;;b; "}, "dm", ["7"], ["a", "b"]),
    ({"data": "not a list", "pool": {"items": "nope"}}, "cre", [], []),
    (["not", "an", "object"], None, [], []),
    (None, None, [], []),
])
def test_users_and_items_come_from_the_body(body, dialect, users, items):
    assert body_users(body, dialect) == users
    assert body_items(body, dialect) == items


def test_filters(service):
    send(service, "cre.upload", CRE_ITEMS)  # seq 1
    send(service, "cre.upload", CRE_ACTION)  # 2
    send(service, "cre.query", CRE_QUERY)  # 3
    send(service, "dm.data", DM_ACTION)  # 4
    send(service, "dm.service", DM_RECOMMEND)  # 5
    send(service, "cre.upload", {"data_type": "1", "data": [{"item_id": "bad"}]})  # 6: errors
    journal = service.journal

    def seqs(**filters):
        return [e["seq"] for e in journal.query(**filters)]

    assert seqs() == [1, 2, 3, 4, 5, 6]
    assert seqs(endpoint="cre.upload") == [1, 2, 6]
    assert seqs(endpoint=["cre.query", "dm.service"]) == [3, 5]
    assert seqs(dialect="dm") == [4, 5] and seqs(kind="action") == [2, 4]
    assert seqs(user="u1") == [2] and seqs(user="d2") == [5]
    assert seqs(item="a1") == [1, 2, 3] and seqs(item="x1") == [4, 5] and seqs(item="bad") == [6]
    assert seqs(has_errors=True) == [6]
    assert 6 in seqs(has_violations=True) and 1 not in seqs(has_violations=True)
    assert seqs(after_seq=4) == [5, 6] and seqs(limit=2) == [5, 6] and seqs(limit=0) == []
    times = [e["time"] for e in journal.query()]
    assert seqs(since=times[2], until=times[3]) == [3, 4]
    assert seqs(until=times[0] - 1) == []
    assert journal.entries(endpoint="dm.data") == journal.query("dm.data")  # the older name still works


def test_clear_keeps_counting(service):
    send(service, "cre.upload", CRE_ITEMS)
    service.journal.clear()
    assert len(service.journal) == 0
    send(service, "cre.upload", CRE_ITEMS)
    assert [e["seq"] for e in service.journal.query()] == [2]
    assert service.journal.last_seq == 2


def test_the_buffer_is_bounded_the_oldest_drop():
    """10,000 requests through the real pipeline into a journal of 100: it keeps the newest 100.

    Each is a dm report without data_type (rejected early, so the loop is quick; the entry still
    holds body, violations and reply); every 100th is a valid action that reaches the store."""
    service = Service({"journal_size": 100})
    rejected, valid = json.dumps(dict(DM_ACTION, data_type=None)).encode(), json.dumps(DM_ACTION).encode()
    for n in range(10_000):
        service.handle("dm.data", valid if n % 100 == 0 else rejected, HEADERS)
    journal = service.journal
    assert len(journal) == 100
    seqs = [e["seq"] for e in journal.query()]
    assert seqs == list(range(9_901, 10_001))
    stats = journal.stats()
    assert {k: stats[k] for k in ("size", "kept", "recorded", "oldest_seq")} == {
        "size": 100, "kept": 100, "recorded": 10_000, "oldest_seq": 9_901}
    assert journal.query()[0]["reply"]["code"] == 0 and journal.query()[1]["violations"]


def test_memory_stays_flat_once_the_buffer_is_full():
    template = {"time": 0.0, "endpoint": "cre.upload", "dialect": "cre", "kind": "action", "partition": ["cre", "prod"],
                "headers": {"Content-Type": "application/json"}, "body": CRE_ACTION, "violations": [],
                "scenario": [], "reply": {"code": "0"}, "latency_ms": 0.1}
    text = json.dumps(template)  # each entry a fresh copy, as the service makes them
    journal = Journal(size=100)
    tracemalloc.start()
    try:
        for _ in range(1_000):
            journal.record(json.loads(text))
        full = tracemalloc.get_traced_memory()[0]
        for _ in range(9_000):
            journal.record(json.loads(text))
        later = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(journal) == 100 and journal.query()[0]["seq"] == 9_901
    assert later - full < 64 * 1024, f"memory grew by {later - full} bytes after the buffer was full"


def test_kept_entries_give_the_garbage_collector_nothing_to_walk_and_readers_get_copies():
    """Entries are kept as JSON text: each adds one small record to the cyclic collector's work, where as
    dicts and lists each added ten (walked on every full collection while requests waited)."""
    journal = Journal(size=5_000)
    entry = {"time": 1.0, "endpoint": "dm.data", "dialect": "dm", "body": DM_ACTION, "violations": [{"path": "/x"}],
             "reply": {"code": 0, "data": [{"item": "a"}]}}
    gc.collect()
    tracked = len(gc.get_objects())
    for _ in range(5_000):
        journal.record(json.loads(json.dumps(entry)))
    gc.collect()
    assert len(gc.get_objects()) - tracked < 6_000  # one each, and room for what other threads allocate meanwhile
    first = journal.query(limit=1)[0]
    first["body"]["uid"] = "changed"
    assert journal.query(limit=1)[0]["body"]["uid"] == DM_ACTION["uid"]


def test_the_buffer_is_also_bounded_in_bytes():
    """Big batches drop old entries sooner: the count bound alone would multiply their size."""
    journal = Journal(size=1_000, max_bytes=20_000)
    big = {"endpoint": "cre.upload", "dialect": "cre", "body": {"data": [{"item_id": f"i{n}", "describe": "x" * 40}
                                                                         for n in range(50)]}}
    for _ in range(100):
        journal.record(json.loads(json.dumps(big)))
    stats = journal.stats()
    assert 1 < stats["kept"] < 10 and stats["bytes"] <= 20_000 and stats["recorded"] == 100
    assert journal.query()[-1]["seq"] == 100
    huge = {"endpoint": "cre.upload", "body": {"describe": "x" * 50_000}}
    journal.record(huge)  # larger than the whole budget: kept alone, never dropped on arrival
    assert [e["seq"] for e in journal.query()] == [101]
    journal.clear()
    assert journal.stats()["bytes"] == 0


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        Journal(size=0)


def test_the_journal_file_gets_one_json_line_per_request(tmp_path):
    path = tmp_path / "journal.jsonl"
    app = create_app({"journal_file": str(path), "journal_size": 2})
    client = app.test_client()
    client.post("/upload", json=CRE_ITEMS, headers={"Authorization": "Bearer very-secret-value"})
    client.post("/query", json=CRE_QUERY)
    client.post("/dm/data", json=DM_ACTION)
    client.post("/upload", data=b"{not json", content_type="application/json")
    client.delete("/__admin/journal")  # clears memory, never the file
    client.post("/dm/service", json=DM_RECOMMEND)
    app.extensions["mockcre"].journal.close()

    text = path.read_text(encoding="utf-8")
    lines = [json.loads(line) for line in text.splitlines()]
    assert [e["seq"] for e in lines] == [1, 2, 3, 4, 5]
    assert [e["endpoint"] for e in lines] == ["cre.upload", "cre.query", "dm.data", "cre.upload", "dm.service"]
    assert lines[0]["items"] == ["a1", "a2"] and lines[1]["users"] == ["u2"]
    assert lines[3]["violations"] and lines[3]["body"] is None
    assert TOKEN not in text and "40379db889f9124819228947faaeb1f7" not in text and "very-secret-value" not in text
    assert len(app.extensions["mockcre"].journal) == 1  # the buffer holds 2 at most, and was cleared


def test_the_file_is_appended_to_across_runs(tmp_path):
    path = tmp_path / "journal.jsonl"
    path.write_text('{"seq": 1, "from": "an earlier run"}\n', encoding="utf-8")
    service = Service({"journal_file": str(path)})
    send(service, "dm.data", DM_ACTION)
    service.journal.close()
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 2 and json.loads(lines[1])["endpoint"] == "dm.data"


def test_what_orjson_refuses_is_still_journalled_as_valid_json(tmp_path):
    """Integers beyond 64 bits and lone surrogates (both readable from a request body) take the slow path."""
    path = tmp_path / "journal.jsonl"
    journal = Journal(size=10, path=str(path))
    journal.record({"endpoint": "dm.data", "body": {"score": 2**70, "city": "\ud800x", "at": object}})
    journal.close()
    kept = journal.query()[0]["body"]
    assert kept["score"] == 2**70 and kept["city"] == "\ud800x" and kept["at"] == str(object)
    assert json.loads(path.read_bytes().decode("utf-8"))["body"]["score"] == 2**70


@pytest.mark.parametrize("value, text", [
    ({"a": [1, 2.5, None, True]}, b'{"a":[1,2.5,null,true]}'),
    ({1: "x", "b": 2}, b'{"1":"x","b":2}'),  # a YAML scenario's integer key: the second try
    ({"n": 2**70}, b'{"n":1180591620717411303424}'),  # past 64 bits: the standard library
    ({"c": "\ud800", 1: 1}, b'{"c":"\\ud800","1":1}'),  # a lone surrogate, escaped so the text stays UTF-8
    ({"at": Decimal("1.50")}, b'{"at":"1.50"}'),  # no JSON type: its text
])
def test_json_text_is_written_whatever_the_value_holds(value, text):
    assert jsontext.dumps(value) == text
    assert json.loads(text) == json.loads(jsontext.dumps(value))
