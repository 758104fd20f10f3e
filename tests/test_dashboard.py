"""Dashboard pages over real HTTP: token cookie for browsers, filters, escaping, request detail, report formats."""

from __future__ import annotations

import requests

from mockcre import create_app
from mockcre.faces.server import ThreadedServer


def test_a_browser_logs_in_with_the_token_once_and_the_url_drops_it():
    with ThreadedServer(create_app({"admin_token": "s3cret"})) as srv:
        session = requests.Session()
        assert session.get(srv.url + "/__admin/", timeout=5).status_code == 401
        assert session.get(srv.url + "/__admin/?token=wrong", timeout=5).status_code == 401
        page = session.get(srv.url + "/__admin/?token=s3cret", timeout=5)
        assert page.status_code == 200 and page.url == srv.url + "/__admin/"  # redirected without the token
        assert "Journal" in page.text
        assert session.get(srv.url + "/__admin/journal", timeout=5).status_code == 200  # the cookie carries on
        assert requests.get(srv.url + "/__admin/journal", timeout=5).status_code == 401  # others still need it
        cookie = page.history[0].headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/__admin" in cookie


def test_pages_filter_escape_and_explain():
    with ThreadedServer(create_app({"clock": lambda: 1_767_830_400})) as srv:
        post = lambda path, body: requests.post(srv.url + path, json=body, timeout=5).json()  # noqa: E731
        post("/upload", {"version": "1", "data_type": "1", "token": "t",
                         "data": [{"busi_id": "b", "test_id": "t", "item_id": "<i>x</i>", "pool_id": "p"}]})
        post("/dm/service", {"MD5": "0" * 32, "request_id": "1700000000000_123", "service_type": 3, "bid": "b",
                             "uid": "reader-7", "scene_id": "s", "pool_id": "0"})
        page = requests.get(srv.url + "/__admin/?user=reader-7", timeout=5).text
        assert page.count('id="req-') == 1 and 'id="req-2"' in page
        page = requests.get(srv.url + "/__admin/?endpoint=cre.upload", timeout=5).text
        assert page.count('id="req-') == 1 and 'id="req-1"' in page
        detail = requests.get(srv.url + "/__admin/requests/1", timeout=5).text
        assert "&lt;i&gt;x&lt;/i&gt;" in detail and "<i>x</i>" not in detail
        assert requests.get(srv.url + "/__admin/requests/99", timeout=5).status_code == 404
        report = requests.get(srv.url + "/__admin/report", timeout=5).json()
        assert {"scores", "totals", "findings", "charts"} <= set(report)
        assert "mockcre data-quality report" in requests.get(srv.url + "/__admin/report?format=text", timeout=5).text
        store = requests.get(srv.url + "/__admin/store", timeout=5).text
        assert "cre/prod" in store and "&lt;i&gt;x&lt;/i&gt;" in store


def test_the_pattern_box_filters_in_the_request_matching_language():
    """A plain GET form: ?where= takes a scenario's when as JSON; a bad one is explained on the page, escaped."""
    import json

    with ThreadedServer(create_app({})) as srv:
        for uid in ("u1", "u2", "x1"):
            requests.post(srv.url + "/query", json={"user_id": uid}, timeout=5)
        page = lambda where: requests.get(srv.url + "/__admin/", params={"where": where}, timeout=5)  # noqa: E731
        shown = page(json.dumps({"match": {"user_id": {"regex": "^u"}}})).text
        assert shown.count('id="req-') == 2 and 'id="req-1"' in shown and 'id="req-2"' in shown
        assert 'name="where"' in shown and "&#34;regex&#34;" in shown  # the box keeps what was typed, escaped
        unanchored = page(json.dumps({"match": {"user_id": {"regex": "1"}}})).text
        assert unanchored.count('id="req-') == 2 and 'id="req-3"' in unanchored
        bad = page('{"match": {"user_id": {"regex": "(a)\\\\1"}}, "x": "<b>"}')
        assert bad.status_code == 200 and 'id="pattern-problem"' in bad.text and bad.text.count('id="req-') == 0
        assert "x: not a request condition" in bad.text
        assert "RE2" in page('{"match": {"user_id": {"regex": "(a)\\\\1"}}}').text
        assert "Not a request pattern" in page("{not json").text


def test_the_report_reads_the_journal_without_holding_the_store_lock(monkeypatch):
    """The store lock is taken for the store's part only: the journal (up to 32 MiB) is parsed outside it."""
    from mockcre.tools import quality

    held = []
    with ThreadedServer(create_app({})) as srv:
        service = srv.app.extensions["mockcre"]
        lock = service.store.lock

        def noting(where, what):
            return lambda *a, **k: (held.append((where, lock._is_owned())), what(*a, **k))[1]

        monkeypatch.setattr(service.journal, "entries", noting("journal", service.journal.entries))
        monkeypatch.setattr(quality, "_item_reports", noting("journal", quality._item_reports))
        monkeypatch.setattr(quality, "_items_held", noting("store", quality._items_held))
        assert requests.get(srv.url + "/__admin/report", timeout=5).status_code == 200
    assert ("store", True) in held and ("journal", False) in held and ("journal", True) not in held, held
