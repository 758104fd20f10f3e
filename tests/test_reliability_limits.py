"""Issue 9.4, limits: body size, records per batch, ``describe`` length and journal entries.

Each limit is tried on a real ``mockcre serve`` (flags as a user passes them) on a free 127.0.0.1
port: the defaults, a value set on the command line, the value itself (accepted) and one over it
(refused with the dialect's -1 envelope, whose message names the limit and how to change it),
whatever way the body arrives (Content-Length, chunked, gzip). Servers are killed in ``finally``.
"""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import time

import pytest

from httpkit import cre_action, cre_item, cre_upload, dm_action, dm_item, free_port
from servekit import ServeProcess, mockcre_command, run_cli, started_servers

from mockcre.pipeline.config import Config

MIB = 1024 * 1024
DESCRIBE_MAX = 30_720  # "at most 30k", read as 30 x 1,024 characters


class Serve(ServeProcess):
    def post(self, path: str, raw: bytes, **headers) -> dict:
        """A JSON POST answered 200 in JSON; extra headers as keywords, ``_`` for ``-`` (``Content_Encoding="gzip"``)."""
        sent = {"Content-Type": "application/json", **{k.replace("_", "-"): v for k, v in headers.items()}}
        status, reply_headers, body = self.request("POST", path, raw, sent)
        ctype = reply_headers.get("content-type", "")
        assert status == 200 and ctype.startswith("application/json"), (status, ctype, body[:300])
        return json.loads(body)

    def post_chunked(self, path: str, raw: bytes) -> dict:
        """The body in 64 KiB chunks, without Content-Length."""
        conn = self.connection()
        try:
            conn.request("POST", path, (raw[i:i + 65_536] for i in range(0, len(raw), 65_536)),
                         {"Content-Type": "application/json"}, encode_chunked=True)
            resp = conn.getresponse()
            body = resp.read()
        finally:
            conn.close()
        assert resp.status == 200, (resp.status, body[:300])
        return json.loads(body)

    def journal(self) -> dict:
        return json.loads(self.request("GET", "/__admin/journal")[2])


@pytest.fixture
def serve(tmp_path):
    with started_servers(Serve, tmp_path) as start:
        yield start


@pytest.fixture(scope="module")
def default_server(tmp_path_factory):
    with Serve(tmp_path_factory.mktemp("limits-default")) as server:
        yield server


def dumps(body) -> bytes:
    return json.dumps(body, ensure_ascii=False).encode("utf-8")


def padded(body: dict, size: int) -> bytes:
    """``body`` as JSON, padded with trailing whitespace to exactly ``size`` bytes (still the same JSON)."""
    raw = dumps(body)
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def assert_cre_limit(reply: dict, *names: str, seq_no: str | None = None) -> None:
    assert reply["code"] == "-1" and isinstance(reply["message"], str), reply
    assert set(reply) <= {"seq_no", "code", "message"}, reply
    if seq_no is not None:
        assert reply["seq_no"] == seq_no
    for name in names:
        assert name in reply["message"], (name, reply["message"])


def assert_dm_limit(reply: dict, *names: str, request_id: str | None = None) -> None:
    assert reply["code"] == -1 and isinstance(reply["msg"], str), reply
    assert set(reply) == {"request_id", "code", "msg"}, reply
    if request_id is not None:
        assert reply["request_id"] == request_id
    for name in names:
        assert name in reply["msg"], (name, reply["msg"])


# -- the defaults --------------------------------------------------------------------------------------------


def test_default_limits():
    config = Config()
    assert config.max_body_bytes == 8 * MIB
    assert config.max_batch_records == 10_000
    assert config.journal_size == 10_000
    done = run_cli("serve", "--help", timeout=30)
    help_text = " ".join(done.stdout.split())
    for flag, default in (("--max-body-bytes", "8,388,608"), ("--max-batch-records", "10,000"), ("--journal-size", "10,000")):
        assert flag in help_text and default in help_text, (flag, default)


def realistic_batch(n: int, tag: str) -> dict:
    """n records as a shop uploads them: Chinese text, tags, several pools, expiry, score."""
    records = [cre_item(f"{tag}-{i:04d}", pool_id="shoes;sale;new", tags={"男装": "1", "休闲裤": "2", f"品牌{i % 50}": "1"},
                        describe=("这是一件适合春秋季节穿着的休闲裤，面料舒适透气，" * 4)[:120], item_time="1700000000",
                        expire_time="1731536000", score=str(i % 100), vender="店铺" + str(i % 30),
                        big_type="服装", middle_type="男装", small_type="裤子", title=f"商品标题 {i}")
               for i in range(n)]
    return cre_upload("1", records, seq_no=tag)


def test_default_body_limit_takes_a_1000_record_batch_and_stops_abuse(default_server):
    batch = dumps(realistic_batch(1_000, "big"))
    assert 0.3 * MIB < len(batch) < 2 * MIB  # a real 1,000-record batch is about a megabyte
    assert default_server.post("/upload", batch)["code"] == "0"
    actions = dumps(cre_upload("2", [cre_action(f"u{i % 20}", "102", [f"big-{i:04d}"]) for i in range(1_000)]))
    assert default_server.post("/upload", actions)["code"] == "0"
    # exactly at the limit: the size check passes (whitespace-padded valid JSON)
    at_limit = padded(cre_upload("1", [cre_item("edge")], seq_no="edge"), 8 * MIB)
    assert default_server.post("/upload", at_limit)["code"] == "0"
    # one byte over: refused, naming the limit and the flag
    over = padded(cre_upload("1", [cre_item("over")], seq_no="over"), 8 * MIB + 1)
    assert_cre_limit(default_server.post("/upload", over), "8,388,608", "--max-body-bytes")
    dm_over = padded(dm_item("over"), 8 * MIB + 1)
    assert_dm_limit(default_server.post("/dm/data", dm_over), "8,388,608", "--max-body-bytes")
    assert_dm_limit(default_server.post("/dm/service", dm_over), "8,388,608", "--max-body-bytes")


def test_default_batch_limit(default_server):
    records = [cre_item(f"b{i}") for i in range(10_001)]
    assert_cre_limit(default_server.post("/upload", dumps(cre_upload("1", records, seq_no="many"))),
                     "10,001", "10,000", "--max-batch-records", seq_no="many")
    assert default_server.post("/cre_test_upload", dumps(cre_upload("1", records[:10_000])))["code"] == "0"


# Short ids: pytest puts the test id in PYTEST_CURRENT_TEST, and a 30,720-emoji id made that variable too long
# for the kernel to start the server with (E2BIG) when this test was the first to need it.
@pytest.mark.parametrize("text", ["d" * DESCRIBE_MAX, "描" * DESCRIBE_MAX, "🚀" * DESCRIBE_MAX], ids=["ascii", "hanzi", "emoji"])
def test_describe_of_30720_characters_is_accepted_in_both_dialects(default_server, text):
    assert default_server.post("/upload", dumps(cre_upload("1", [cre_item("long", describe=text)])))["code"] == "0"
    assert default_server.post("/dm/data", dumps(dm_item("long", describe=text)))["code"] == 0


@pytest.mark.parametrize("text", ["d" * (DESCRIBE_MAX + 1), "描" * (DESCRIBE_MAX + 1), "x" * 200_000],
                         ids=["ascii-30721", "hanzi-30721", "ascii-200000"])
def test_describe_over_30720_characters_is_refused_naming_the_limit(default_server, text):
    reply = default_server.post("/upload", dumps(cre_upload("1", [cre_item("long", describe=text)], seq_no="d1")))
    assert_cre_limit(reply, "describe", "30720", seq_no="d1")
    body = dm_item("long", describe=text)
    assert_dm_limit(default_server.post("/dm/data", dumps(body)), "describe", "30720", request_id=body["request_id"])
    assert text[:100] not in reply["message"]  # the message names the limit, it does not echo the text


# -- limits set on the command line ---------------------------------------------------------------------------


def test_body_limit_from_the_command_line_however_the_body_arrives(serve):
    server = serve("--max-body-bytes", "4096")
    ok = padded(cre_upload("1", [cre_item("fits")]), 4096)
    assert server.post("/upload", ok)["code"] == "0"
    over = padded(cre_upload("1", [cre_item("over")]), 4097)
    assert_cre_limit(server.post("/upload", over), "4,096", "--max-body-bytes")
    assert_cre_limit(server.post("/query", over), "4,096", "--max-body-bytes")
    assert_dm_limit(server.post("/dm/data", padded(dm_item("over"), 4097)), "4,096", "--max-body-bytes")
    assert_dm_limit(server.post("/", padded(dm_item("over"), 4097)), "4,096", "--max-body-bytes")
    # chunked, no Content-Length: the server stops reading at the limit
    assert_cre_limit(server.post_chunked("/upload", over + b" " * 60_000), "4,096", "--max-body-bytes")
    assert server.post_chunked("/upload", ok)["code"] == "0"
    # gzip: the decompressed size counts (a 10 MiB bomb in 10 KiB)
    bomb = gzip.compress(b"{" + b" " * (10 * MIB) + b"}")
    assert len(bomb) < 20_000
    assert_cre_limit(server.post("/upload", bomb, Content_Encoding="gzip"), "4,096", "--max-body-bytes")
    assert server.post("/upload", gzip.compress(ok), Content_Encoding="gzip")["code"] == "0"
    entry = server.journal()["entries"][-2]
    assert [v["rule"] for v in entry["violations"]] == ["limit.body-size"]


def test_batch_limit_from_the_command_line(serve):
    server = serve("--max-batch-records", "5")
    five = [cre_item(f"r{i}") for i in range(5)]
    assert server.post("/upload", dumps(cre_upload("1", five)))["code"] == "0"
    six = five + [cre_item("r5")]
    assert_cre_limit(server.post("/upload", dumps(cre_upload("1", six, seq_no="s6"))), "6", "limit is 5",
                     "--max-batch-records", seq_no="s6")
    assert_cre_limit(server.post("/cre_test_upload", dumps(cre_upload("1", six))), "--max-batch-records")
    actions = [cre_action("u", "102", ["r0"]) for _ in range(6)]
    assert_cre_limit(server.post("/upload", dumps(cre_upload("2", actions))), "--max-batch-records")
    entry = server.journal()["entries"][-1]
    assert [(v["rule"], v["path"]) for v in entry["violations"]] == [("limit.batch-records", "/data")]
    state = json.loads(server.request("GET", "/__admin/state?partition=cre:prod")[2])
    assert set(state["partitions"][0]["items"]) == {f"r{i}" for i in range(5)}  # nothing of a refused batch is kept
    # dm reports one record per request: a long item list is one action report, not a batch
    assert server.post("/dm/data", dumps(dm_action("u", 2, [f"i{i}" for i in range(50)])))["code"] == 0


def test_journal_size_from_the_command_line(serve):
    server = serve("--journal-size", "3")
    for i in range(7):
        server.post("/dm/data", dumps(dm_item(f"j{i}")))
    journal = server.journal()
    assert journal["size"] == 3 and journal["kept"] == 3 and journal["recorded"] == 7
    assert [e["seq"] for e in journal["entries"]] == [5, 6, 7] and journal["oldest_seq"] == 5
    state = json.loads(server.request("GET", "/__admin/state")[2])
    assert state["partitions"][0]["totals"]["items"] == 7  # the journal bound drops entries, never data


@pytest.mark.parametrize("flag, value", [
    ("--journal-size", "0"), ("--journal-size", "-5"), ("--max-body-bytes", "-1"), ("--max-batch-records", "-1"),
])
def test_a_limit_that_cannot_work_is_refused_at_start(flag, value):
    """A negative limit would refuse every request, a journal of 0 entries crashes: exit 2 with one line."""
    proc = subprocess.Popen(mockcre_command() + ["serve", "--port", str(free_port()), flag, value],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=6)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=10)
        pytest.fail(f"mockcre serve {flag} {value} started serving instead of refusing the value")
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 2, (proc.returncode, err[-500:])
    assert "Traceback" not in err and flag in err, err[-500:]


def test_admin_scenario_upload_is_bounded_by_the_body_limit(serve):
    """The admin API reads bodies too: a scenario over --max-body-bytes is refused, in JSON."""
    server = serve("--max-body-bytes", "100000")
    big = b"name: big\ndescription: " + b"a" * 2_000_000 + b"\n"
    started = time.monotonic()
    status, headers, body = server.request("POST", "/__admin/scenarios", big, {"Content-Type": "application/yaml"})
    ctype = headers.get("content-type", "")
    assert status in (400, 413) and ctype.startswith("application/json"), (status, body[:300])
    assert "100,000" in body.decode() or "limit" in body.decode().lower(), body[:300]
    assert time.monotonic() - started < 5
    names = [s["name"] for s in json.loads(server.request("GET", "/__admin/scenarios")[2])["scenarios"]]
    assert "big" not in names
