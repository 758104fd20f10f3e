"""Issue 15 in headless chromium: web pages on another local port, as a developer's browser holds them.

An H5 page may report to the API (CORS); a hostile page may not steer the admin API, whatever it
tries. The pages come from a tiny ``http.server`` on a second 127.0.0.1 port, so they are another
origin of the same site as the mock (``Sec-Fetch-Site: same-site``). Every browser wait is bounded
(page loads 20 s, scripts 15 s, see conftest's ``browser``).
"""

from __future__ import annotations

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from httpkit import TIMEOUT, cre_action, cre_item, cre_upload, dm_action, serve  # noqa: F401 - serve: a fixture

PAGE = b"<!doctype html><title>H5 page</title><h1>an ordinary page</h1>"
POST_JSON = """
const [url, body, done] = arguments;
fetch(url, {method: "POST", headers: {"Content-Type": "application/json"}, body: JSON.stringify(body)})
  .then(r => r.json()).then(reply => done({reply}), error => done({error: String(error)}));
"""


def scenario(name: str) -> str:
    """YAML of a scenario that breaks every request: what a hostile page would like to load."""
    return f"name: {name}\nrules:\n  - when: {{endpoint: any}}\n    then: {{code: -2, msg: hijacked}}\n"


class _Page(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - http.server's name
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(PAGE)))
        self.end_headers()
        self.wfile.write(PAGE)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def page_origin():
    """The origin of a plain page on a second 127.0.0.1 port."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Page)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join(timeout=5)
    server.server_close()


class Arrivals:
    """WSGI in front of the mock: (method, path, status) of every request that reached it."""

    def __init__(self, mock):
        app = mock.server.app
        self.seen: list[tuple[str, str, int]] = []
        self.wsgi_app = app.wsgi_app
        app.wsgi_app = self

    def __call__(self, environ, start_response):
        def start(status, headers, exc_info=None):
            self.seen.append((environ["REQUEST_METHOD"], environ["PATH_INFO"], int(status.split()[0])))
            return start_response(status, headers, exc_info)

        return self.wsgi_app(environ, start)


def get(mock, path: str):
    reply = mock.session.get(mock.url + path, timeout=TIMEOUT)
    assert reply.status_code == 200, (path, reply.status_code, reply.text[:200])
    return reply.json()


def test_an_h5_page_reports_both_dialects(browser, page_origin, serve):
    mock = serve()
    browser.get(page_origin + "/shop.html")
    cre = browser.execute_async_script(POST_JSON, mock.url + "/upload",
                                       cre_upload("2", [cre_action("u1", "102", ["i1"])], seq_no="page-1"))
    dm = browser.execute_async_script(POST_JSON, mock.url + "/dm/data",
                                      dm_action("u2", 2, ["i1"], request_id="page-2"))
    assert cre == {"reply": {"seq_no": "page-1", "code": "0", "message": "success"}}
    assert dm["reply"]["code"] == 0 and dm["reply"]["request_id"] == "page-2", dm
    partitions = {tuple(p["partition"]): p["users"] for p in get(mock, "/__admin/state")["partitions"]}
    assert [a["action"] for a in partitions["cre", "prod"]["u1"]["actions"]] == ["102"]
    assert [a["action"] for a in partitions["dm", "b_demo"]["u2"]["actions"]] == ["2"]
    assert [e["headers"]["Origin"] for e in get(mock, "/__admin/journal")["entries"]] == [page_origin] * 2

    browser.get(mock.url + "/__admin/requests/1")
    assert browser.find_element(By.ID, "origin").text == page_origin


def test_a_page_outside_the_cors_origins_is_refused_by_the_browser(browser, page_origin, serve):
    mock = serve({"cors_origins": ["http://localhost:3000"]})
    arrivals = Arrivals(mock)
    browser.get(page_origin + "/shop.html")
    result = browser.execute_async_script(POST_JSON, mock.url + "/upload",
                                          cre_upload("2", [cre_action("u1", "102", ["i1"])]))
    assert "Failed to fetch" in result.get("error", ""), result
    assert arrivals.seen == [("OPTIONS", "/upload", 403)]  # the preflight only; the report never left
    assert get(mock, "/__admin/state")["partitions"] == []
    assert get(mock, "/__admin/journal")["count"] == 0


HOSTILE = """
const [mock, scenario, done] = arguments;
const sink = document.createElement("iframe");
sink.name = "sink";
document.body.appendChild(sink);
const form = document.createElement("form");
Object.assign(form, {method: "POST", action: mock + "/__admin/reset", enctype: "text/plain", target: "sink"});
form.innerHTML = '<input name="x" value="y">';
document.body.appendChild(form);
const settled = p => p.then(() => "sent", e => String(e));
Promise.all([
  settled(fetch(mock + "/__admin/scenarios", {method: "POST", mode: "no-cors", body: scenario})),
  settled(fetch(mock + "/__admin/scenarios", {method: "POST", mode: "no-cors", body: new Blob([scenario])})),
  settled(fetch(mock + "/__admin/journal", {method: "DELETE"})),
  new Promise(resolve => { sink.onload = () => resolve("form posted"); form.submit(); }),
]).then(done);
"""


def test_a_hostile_page_cannot_steer_the_admin_api(browser, page_origin, serve):
    mock = serve()
    arrivals = Arrivals(mock)
    mock.ok("/upload", cre_upload("1", [cre_item("kept")]))
    assert mock.post("/__admin/scenarios", data=scenario("mine")).status_code == 201
    before = [get(mock, path) for path in ("/__admin/scenarios", "/__admin/state", "/__admin/journal")]

    browser.get(page_origin + "/news.html")
    outcomes = browser.execute_async_script(HOSTILE, mock.url, scenario("hijack"))
    assert outcomes[:2] == ["sent", "sent"] and outcomes[3] == "form posted", outcomes  # opaque: the page learns nothing
    assert "Failed to fetch" in outcomes[2]  # the DELETE's preflight got no CORS answer

    after = [get(mock, path) for path in ("/__admin/scenarios", "/__admin/state", "/__admin/journal")]
    assert after == before
    hostile = [seen for seen in arrivals.seen if seen[0] != "GET"][2:]  # after the setup's two POSTs
    assert sorted(hostile) == [("OPTIONS", "/__admin/journal", 200), ("POST", "/__admin/reset", 403),
                               ("POST", "/__admin/scenarios", 403), ("POST", "/__admin/scenarios", 403)]


def test_the_dashboards_own_buttons_still_work(browser, serve):
    mock = serve()
    mock.ok("/upload", cre_upload("1", [cre_item("kept")]))
    browser.get(mock.url + "/__admin/")
    browser.find_element(By.TAG_NAME, "summary").click()
    browser.find_element(By.NAME, "text").send_keys(scenario("from-the-dashboard"))
    browser.find_element(By.CSS_SELECTOR, "details button[type=submit]").click()
    browser.switch_to.alert.dismiss()  # it asks first (issue 22): saying no loads nothing
    assert get(mock, "/__admin/scenarios")["scenarios"] == []
    browser.find_element(By.CSS_SELECTOR, "details button[type=submit]").click()
    browser.switch_to.alert.accept()
    WebDriverWait(browser, 5, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: "Loaded scenario from-the-dashboard" in d.find_element(
        By.CSS_SELECTOR, "[role=status]").text)
    assert [s["name"] for s in get(mock, "/__admin/scenarios")["scenarios"]] == ["from-the-dashboard"]

    browser.find_element(By.ID, "reset").click()
    browser.switch_to.alert.dismiss()  # saying no keeps everything
    assert get(mock, "/__admin/journal")["count"] > 0
    browser.find_element(By.ID, "reset").click()
    browser.switch_to.alert.accept()
    WebDriverWait(browser, 5, ignored_exceptions=(StaleElementReferenceException,)).until(lambda d: "reset" in d.find_element(By.CSS_SELECTOR, "[role=status]").text)
    assert get(mock, "/__admin/state")["partitions"] == []
    assert get(mock, "/__admin/journal")["count"] == 0
