"""``mockcre.testing.MockcreServer`` without the pytest fixture: a plain script, unittest, start()/stop()."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap

import pytest
import requests
from httpkit import Client, cre_item, cre_query, cre_upload

from mockcre.testing import MockcreServer, ScenarioLoadError

RUN_TIMEOUT = 120  # seconds for one child python (it imports Flask and loads the shop scenario)

# The bad upload of the test_plugin files: an item without busi_id, test_id and pool_id.
BAD_UPLOAD = cre_upload("1", [{"item_id": "x"}])
LENIENT_ONLY = cre_upload("1", [cre_item("a1", rule_id="7")])  # a field outside the cre item table


def run_python(tmp_path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, *args], cwd=tmp_path, capture_output=True, text=True,
                          timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)


def test_a_plain_script_uses_the_handle_over_real_http(tmp_path):
    tmp_path.joinpath("check_client.py").write_text(textwrap.dedent('''
        import json
        import urllib.request

        from mockcre.testing import MockcreServer

        TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"

        def post(url, body):
            request = urllib.request.Request(url, data=json.dumps(body).encode(),
                                             headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as reply:
                return json.load(reply)

        with MockcreServer(scenario="shop") as mock:
            reply = post(mock.url + "/query", {"seq_no": "1", "token": TOKEN, "proj_id": "1", "scn_id": "1",
                                               "uid_type": "2", "user_id": "u1", "pool_id": "apparel"})
            assert reply["code"] == "0" and reply["rec"]["apparel"], reply
            mock.assert_called("cre.query", times=1, user="u1", pool_id="apparel")
            try:
                mock.assert_called("cre.query", pool_id="food")
            except AssertionError as exc:
                print(exc)
            else:
                raise SystemExit("assert_called passed for a pool that was never asked for")
        print("done")
    '''), encoding="utf-8")
    result = run_python(tmp_path, "check_client.py")
    assert result.returncode == 0, result.stdout + result.stderr
    out = result.stdout
    assert "assert_called('cre.query', pool_id='food'): expected at least 1 matching request, got 0." in out
    assert re.search(r"pool_id: 'food' +\| 'apparel' +<<<<< differs", out)
    assert out.rstrip().endswith("done")


def test_the_handle_in_a_unittest_testcase(tmp_path):
    tmp_path.joinpath("test_client_unittest.py").write_text(textwrap.dedent('''
        import unittest

        import requests

        from mockcre.testing import MockcreServer

        TOKEN = "7d10d09d-be62-4979-9ee0-414f7a23086a"

        def upload(url, *records):
            body = {"version": "1", "seq_no": "1", "data_type": "1", "token": TOKEN, "data": list(records)}
            return requests.post(url + "/upload", json=body, timeout=10).json()

        def item(item_id):
            return {"busi_id": "1", "test_id": "1", "item_id": item_id, "pool_id": "p1"}

        class ClientTest(unittest.TestCase):
            @classmethod
            def setUpClass(cls):
                cls.mock = MockcreServer().start()

            @classmethod
            def tearDownClass(cls):
                cls.mock.stop()

            def setUp(self):
                self.mock.begin_test()

            def tearDown(self):
                self.mock.assert_no_violations()

            def test_1_upload_arrives(self):
                self.assertEqual(upload(self.mock.url, item("a1"))["code"], "0")
                self.mock.assert_called("cre.upload", times=1, item_id="a1", pool_id="p1")

            def test_2_each_test_starts_empty(self):
                self.assertEqual(self.mock.journal, [])
                self.assertEqual(self.mock.state()["partitions"], [])

            def test_3_fails_with_the_near_miss(self):
                upload(self.mock.url, item("a1"))
                self.mock.assert_called("cre.upload", item_id="a9")

            def test_4_fails_on_a_bad_request_at_teardown(self):
                upload(self.mock.url, {"item_id": "x"})
    '''), encoding="utf-8")
    result = run_python(tmp_path, "-m", "unittest", "-v", "test_client_unittest")
    out = result.stderr  # unittest reports there
    assert result.returncode == 1, out
    assert "test_1_upload_arrives (test_client_unittest.ClientTest" in out and "... ok" in out
    assert "Ran 4 tests" in out and "FAILED (failures=2)" in out
    assert "FAIL: test_3_fails_with_the_near_miss" in out
    assert re.search(r"item_id: 'a9' +\| 'a1' +<<<<< differs", out)
    assert "FAIL: test_4_fails_on_a_bad_request_at_teardown" in out
    assert "/data/0/pool_id: data[0].pool_id: required field is missing" in out
    assert out.count("... ok") == 2


def test_leaving_the_block_fails_on_a_contract_breaking_request():
    with pytest.raises(AssertionError, match=r"sent 1 request that breaks the contract \(3 violations\)"):
        with MockcreServer() as mock:
            assert Client(mock.url).call("/upload", BAD_UPLOAD)["code"] == "-1"
    with MockcreServer(allow_violations=True) as mock:
        Client(mock.url).call("/upload", BAD_UPLOAD)
    assert [v["path"] for _, v in mock.violations()] == ["/data/0/busi_id", "/data/0/test_id", "/data/0/pool_id"]


def test_an_error_in_the_block_is_not_replaced_by_the_contract_check():
    with pytest.raises(KeyError, match="mine"):
        with MockcreServer() as mock:
            Client(mock.url).call("/upload", BAD_UPLOAD)
            raise KeyError("mine")


def test_start_and_stop_for_frameworks_without_with():
    mock = MockcreServer()
    assert mock.url.startswith("http://127.0.0.1:")  # known before start: the port is bound already
    with pytest.raises(RuntimeError, match="start"):
        mock.journal
    assert mock.start() is mock and mock.start() is mock
    Client(mock.url).call("/upload", cre_upload("1", [cre_item("a1")]))
    mock.stop()
    mock.stop()
    assert [e["items"] for e in mock.journal] == [["a1"]]  # still readable
    with pytest.raises(requests.ConnectionError):
        requests.get(mock.url + "/__admin/health", timeout=5)
    with pytest.raises(RuntimeError, match="was stopped"):
        mock.start()


def test_begin_test_starts_afresh_and_reset_keeps_the_violations():
    outage = {"name": "outage", "rules": [{"when": {"endpoint": "cre.query"}, "then": {"code": -2}}]}
    with MockcreServer(scenario=outage, allow_violations=True) as mock:
        client = Client(mock.url)
        client.call("/upload", BAD_UPLOAD)
        mock.reset()
        assert mock.journal == [] and len(mock.violations()) == 3
        mock.begin_test()
        assert mock.violations() == []
        assert client.call("/query", cre_query("u1"))["code"] == "-2"  # the server's scenario
        mock.begin_test(scenario=[])
        assert mock.service.scenarios.describe() == []
        assert mock.tally["cre.upload"] == {"requests": 1, "with_violations": 1, "errors": 3, "warnings": 0}


def test_strict_and_app_config_reach_the_server():
    with MockcreServer(strict=True, allow_violations=True) as mock:
        assert Client(mock.url).call("/upload", LENIENT_ONLY)["code"] == "-1"
        mock.begin_test(strict=False)
        assert Client(mock.url).call("/upload", LENIENT_ONLY)["code"] == "0"
    with MockcreServer(accounts=["cre:right"], allow_violations=True) as mock:
        assert Client(mock.url).call("/upload", cre_upload("1", [cre_item("a1")], token="right"))["code"] == "0"
        assert Client(mock.url).call("/upload", cre_upload("1", [cre_item("a1")], token="wrong"))["code"] == "-1"
    with pytest.raises(ValueError, match="unknown mockcre config keys: sede"):
        MockcreServer(sede=1).start()


def test_a_scenario_that_does_not_load_stops_the_server():
    mock = MockcreServer(scenario="no-such-scenario")
    with pytest.raises(ScenarioLoadError, match="no scenario 'no-such-scenario'; looked in") as caught:
        mock.start()
    assert caught.value.source == "no-such-scenario"
    with pytest.raises(requests.ConnectionError):
        requests.get(mock.url + "/__admin/health", timeout=5)
