"""Helpers for the HTTP serving tests: valid cre/dm bodies, a client that posts them, servers on free ports.

Every builder returns a body with no contract violation at all (not even a warning) unless the
caller passes fields that make one, so a test that expects warnings knows where they came from.
Servers are real HTTP servers (``mockcre.faces.server.ThreadedServer``) on a free 127.0.0.1 port.
"""

from __future__ import annotations

import hashlib
import itertools
import socket
import threading
import time

import pytest
import requests

import mockcre
from mockcre.faces.server import ThreadedServer

NOW = 1_700_000_000  # the fixed clock of the tests' servers
DAY = 86_400
CRE_TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"
DM_BID = "b_demo"
DM_TOKEN = "secret-token-123"
TIMEOUT = 10  # seconds; every HTTP call is bounded

_request_ids = itertools.count(100)


def fixed_clock(now: float = NOW):
    return lambda: now


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def md5(text: str) -> str:
    return hashlib.md5(text.encode("utf-8")).hexdigest()


# -- cre bodies ------------------------------------------------------------------------------

def cre_item(item_id, pool_id="p1", tags=None, **fields) -> dict:
    """One cre item record; ``publish``, ``item_time``, ``expire_time``, ``score``... go in ``fields`` (strings)."""
    record = {"busi_id": "1000191", "test_id": "201008", "item_id": str(item_id), "pool_id": pool_id}
    if tags is not None:
        record["tags"] = {t: "1" for t in tags} if isinstance(tags, (list, tuple)) else tags
    record.update(fields)
    return record


def cre_action(uid, action_id, item_ids, oper_time=NOW, **fields) -> dict:
    """One cre action record of ``action_id`` (e.g. "102" click) on each of ``item_ids``."""
    record = {"uid_type": "5", "uid": str(uid), "oper_time": str(oper_time), "source": "0", "test_id": "201008",
              "rule_id": "200723", "action_id": str(action_id),
              "item_action": [{"item_id": str(i), "trace_id": f"t-{i}"} for i in item_ids]}
    record.update(fields)
    return record


def cre_upload(data_type: str, records: list, seq_no="1", token=CRE_TOKEN, **fields) -> dict:
    body = {"version": "1", "seq_no": seq_no, "data_type": data_type, "token": token, "data": records}
    body.update(fields)
    return body


def cre_query(user_id="", pool_id=None, request_num=None, seq_no="987654321", token=CRE_TOKEN, **fields) -> dict:
    body = {"seq_no": seq_no, "token": token, "proj_id": "100001", "scn_id": "123456789", "uid_type": "5",
            "user_id": user_id}
    if pool_id is not None:
        body["pool_id"] = pool_id
    if request_num is not None:
        body["request_num"] = str(request_num)
    body.update(fields)
    return body


# -- dm bodies -------------------------------------------------------------------------------

def request_id() -> str:
    return f"{NOW}000_{next(_request_ids)}"


def _signed(body: dict, token: str | None) -> dict:
    if "MD5" not in body:
        body["MD5"] = md5(f"{body['bid']}&{body['request_id']}&{token or DM_TOKEN}")
    return body


def dm_item(item_id, pool_id="p1", tags=None, bid=DM_BID, token=None, **fields) -> dict:
    """One dm item report; ``tags`` a list (joined by ';') or a string; ``publish`` an int (0 = off shelf)."""
    body = {"request_id": fields.pop("request_id", request_id()), "data_type": 1, "bid": bid, "item_id": str(item_id),
            "pool_id": pool_id}
    if tags is not None:
        body["tags"] = ";".join(tags) if isinstance(tags, (list, tuple)) else tags
    body.update(fields)
    return _signed(body, token)


def dm_action(uid, action_type, item_ids, bid=DM_BID, token=None, action_time=NOW, **fields) -> dict:
    """One dm action report: 1 exposure, 2 click, 3 conversion (purchase), 4 like."""
    body = {"request_id": fields.pop("request_id", request_id()), "data_type": 2, "bid": bid, "uid_type": 1,
            "uid": str(uid), "item_id": ";".join(str(i) for i in item_ids), "scene_id": "1001",
            "action_type": action_type, "source": "tx", "trace_id": "trace_1", "action_time": str(action_time)}
    body.update(fields)
    return _signed(body, token)


def dm_recommend(uid="u0", pool_id="0", bid=DM_BID, token=None, service_type=3, **fields) -> dict:
    body = {"request_id": fields.pop("request_id", request_id()), "service_type": service_type, "bid": bid,
            "uid_type": 1, "uid": str(uid), "scene_id": "1001", "pool_id": pool_id}
    body.update(fields)
    return _signed(body, token)


# -- talking to a server ---------------------------------------------------------------------

class Client:
    """A base URL and a session; ``post`` sends a JSON body (or raw bytes) and returns the response."""

    def __init__(self, url: str):
        self.url = url
        self.session = requests.Session()

    def post(self, path: str, body=None, *, data=None, headers=None, **kwargs) -> requests.Response:
        if data is None and body is not None:
            return self.session.post(self.url + path, json=body, headers=headers, timeout=TIMEOUT, **kwargs)
        return self.session.post(self.url + path, data=data, headers=headers, timeout=TIMEOUT, **kwargs)

    def call(self, path: str, body=None, **kwargs) -> dict:
        """POST and return the JSON reply, asserting the transport contract: HTTP 200 and a JSON body."""
        resp = self.post(path, body, **kwargs)
        assert resp.status_code == 200, (resp.status_code, resp.text[:500])
        assert resp.headers["Content-Type"].startswith("application/json"), resp.headers["Content-Type"]
        assert "Traceback" not in resp.text
        return resp.json()

    def ok(self, path: str, body=None, **kwargs) -> dict:
        """POST a body that must be accepted: code 0 ("0" for cre)."""
        reply = self.call(path, body, **kwargs)
        assert reply["code"] in (0, "0"), reply
        return reply

    # cre
    def cre_items(self, *records, path="/upload") -> dict:
        return self.ok(path, cre_upload("1", list(records)))

    def cre_actions(self, *records, path="/upload") -> dict:
        return self.ok(path, cre_upload("2", list(records)))

    def cre_query(self, path="/query", **fields) -> dict:
        reply = self.call(path, cre_query(**fields))
        assert reply["code"] == "0", reply
        return reply

    def cre_ids(self, pool="0", path="/query", **fields) -> list[str]:
        """The ranked ids of one pool of a cre query."""
        return [e["id"] for e in self.cre_query(path=path, **fields)["rec"][pool]]

    # dm
    def dm_item(self, item_id, **fields) -> dict:
        return self.ok("/dm/data", dm_item(item_id, **fields))

    def dm_action(self, uid, action_type, item_ids, **fields) -> dict:
        return self.ok("/dm/data", dm_action(uid, action_type, item_ids, **fields))

    def dm_recommend(self, **fields) -> dict:
        return self.call("/dm/service", dm_recommend(**fields))

    def dm_ids(self, **fields) -> list[str]:
        reply = self.dm_recommend(**fields)
        assert reply["code"] == 0, reply
        return [e["item"] for e in reply["data"]]

    # admin
    def journal(self, **params) -> list[dict]:
        resp = self.session.get(self.url + "/__admin/journal", params=params, timeout=TIMEOUT)
        assert resp.status_code == 200, resp.text[:500]
        return resp.json()["entries"]

    def last_entry(self) -> dict:
        return self.journal()[-1]


def start(config: dict | None = None) -> ThreadedServer:
    """A mockcre app on a free 127.0.0.1 port; the clock is fixed at NOW unless ``config`` says otherwise."""
    config = {"clock": fixed_clock(), **(config or {})}
    return ThreadedServer(mockcre.create_app(config)).start()


@pytest.fixture
def serve():
    """Factory fixture: ``client = serve({...config})`` starts a server; all are stopped at teardown."""
    started = []

    def factory(config: dict | None = None) -> Client:
        server = start(config)
        client = Client(server.url)
        client.server = server
        started.append(client)
        return client

    yield factory
    for client in started:
        client.session.close()
        stop_soon(client.server)


def stop_soon(server: ThreadedServer) -> None:
    """Stop a server without waiting for it: ``shutdown`` blocks up to the serve loop's poll interval."""
    threading.Thread(target=server.stop, name="mockcre-test-stop", daemon=True).start()


@pytest.fixture
def client(serve) -> Client:
    """A fresh server (fixed clock, no accounts, lenient) and a client on it."""
    return serve()


def wait_for(url: str, deadline: float) -> requests.Response | None:
    """GET ``url`` until it answers or ``deadline`` (time.monotonic()) passes."""
    while time.monotonic() < deadline:
        try:
            return requests.get(url, timeout=0.5)
        except requests.RequestException:
            time.sleep(0.02)
    return None
