"""Testing your own recommendation client against mockcre: copy this file next to your tests.

    .venv/bin/pip install /path/to/mockcre-checkout requests   # or the wheel: pip install mockcre-0.1.0-py3-none-any.whl
    .venv/bin/python -m pytest test_example_usage.py -v

(mockcre is not on PyPI: install it from a checkout of its repository or from a wheel built there
with ``pip wheel --no-deps -w dist .``.)

The ``mockcre`` fixture comes with the package (no conftest needed): a real HTTP server on
127.0.0.1, emptied before every test. A request that breaks the documented contract fails the
test that sent it, with each problem listed.
"""

import time

import pytest
import requests

TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"


# -- the code under test: in real life this lives in your application ----------------------------


class RecoClient:
    """A small cre (云推荐引擎) client: upload items, report clicks, ask for recommendations."""

    def __init__(self, base_url: str, token: str = TOKEN, busi_id: str = "1000191"):
        self.base_url, self.token, self.busi_id = base_url, token, busi_id
        self.seq = 0

    def _post(self, path: str, body: dict) -> dict:
        self.seq += 1
        reply = requests.post(self.base_url + path, json={"seq_no": str(self.seq), "token": self.token, **body},
                              timeout=5)
        reply.raise_for_status()
        return reply.json()

    def upload_items(self, items: list[dict]) -> None:
        records = [{"busi_id": self.busi_id, "test_id": "1", **item} for item in items]
        answer = self._post("/upload", {"version": "1", "data_type": "1", "data": records})
        if answer["code"] != "0":
            raise RuntimeError(answer["message"])

    def report_click(self, uid: str, item_id: str) -> None:
        record = {"uid_type": "2", "uid": uid, "oper_time": str(int(time.time())), "source": "1",
                  "action_id": "102", "busi_id": self.busi_id, "item_action": [{"item_id": item_id}]}
        answer = self._post("/upload", {"version": "1", "data_type": "2", "data": [record]})
        if answer["code"] != "0":
            raise RuntimeError(answer["message"])

    def recommend(self, uid: str, pool_id: str) -> list[str]:
        """Item ids, best first; an empty list when the service fails (the page then shows defaults)."""
        answer = self._post("/query", {"proj_id": "100001", "scn_id": "1", "uid_type": "2", "user_id": uid,
                                       "pool_id": pool_id})
        if answer["code"] != "0":
            return []
        return [entry["id"] for entry in answer["rec"].get(pool_id, [])]


SHOES = [{"item_id": "sneaker", "pool_id": "shoes", "tags": {"sport": "1"}},
         {"item_id": "boot", "pool_id": "shoes", "tags": {"winter": "1"}},
         {"item_id": "sandal", "pool_id": "shoes", "tags": {"summer": "1"}}]


# -- the tests ------------------------------------------------------------------------------------


@pytest.fixture
def client(mockcre):
    return RecoClient(mockcre.url)


def test_uploaded_items_are_recommended(client, mockcre):
    client.upload_items(SHOES)

    assert sorted(client.recommend("u1", "shoes")) == ["boot", "sandal", "sneaker"]
    mockcre.assert_called("cre.upload", item_id="sneaker", pool_id="shoes")
    mockcre.assert_called("cre.query", times=1, user="u1", pool_id="shoes")


def test_clicks_reach_the_service(client, mockcre):
    client.upload_items(SHOES)
    client.report_click("u1", "boot")
    client.report_click("u1", "boot")

    mockcre.assert_called("cre.upload", times=2, kind="action", user="u1", item="boot")
    user = mockcre.state(partition="cre:prod")["partitions"][0]["users"]["u1"]
    assert [a["item_id"] for a in user["actions"]] == ["boot", "boot"]
    assert client.recommend("u1", "shoes")[0] == "boot"  # what the user engaged with ranks first


def test_every_test_starts_empty(mockcre):
    assert mockcre.journal == []
    assert mockcre.state()["partitions"] == []


@pytest.mark.mockcre(allow_violations=True)  # this test sends a bad upload on purpose
def test_a_rejected_upload_raises(client, mockcre):
    with pytest.raises(RuntimeError, match="format error"):
        client.upload_items([{"item_id": "no-pool"}])  # pool_id is required

    [(entry, violation)] = mockcre.violations()
    assert violation["path"] == "/data/0/pool_id"


@pytest.mark.mockcre(scenario="errors")  # a bundled scenario, by bare name: user "error-2" gets code -2
def test_a_service_error_falls_back_to_defaults(client):
    client.upload_items(SHOES)

    assert client.recommend("error-2", "shoes") == []
    assert client.recommend("u1", "shoes") != []


def test_an_outage_falls_back_to_defaults(client, mockcre):
    mockcre.load_scenario({
        "name": "query outage",
        "rules": [{"when": {"endpoint": "cre.query"}, "then": {"code": -2, "msg": "system busy"}}],
    })
    client.upload_items(SHOES)

    assert client.recommend("u1", "shoes") == []
    mockcre.assert_no_violations()
