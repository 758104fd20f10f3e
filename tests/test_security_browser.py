"""Issue 22 in headless chromium, the way an attacking page meets the mock.

Point 1, response splitting: a page on another origin auto-submits a ``text/plain`` form to
``/dm/service`` whose request_id carries CR/LF, a ``Content-Type: text/html`` header and a script that
would reset the mock. The reply must be the -1 envelope as JSON, nothing of the injection may run,
and the mock's scenarios and journal stay.

Point 3, clickjacking: a page on another origin that frames the dashboard gets no dashboard (and so
no Reset button under a decoy) in the frame, while a page of its own origin frames fine.
"""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from httpkit import TIMEOUT, dm_recommend

from mockcre.testing import MockcreServer

SPLITTING = {"name": "split", "rules": [{"name": "why", "when": {"endpoint": "dm.service"},
                                         "then": {"headers": {"X-Why": "{{ request.request_id }}"}, "passthrough": True}}]}
PAYLOAD = ("r1\r\nContent-Type: text/html\r\n\r\n<script>fetch('/__admin/reset?scenarios=1', {method: 'POST'})"
           ".then(() => document.title = 'pwned')</script>")


def script_text(text: str) -> str:
    """``text`` as a JS string literal inside <script> (its own ``</script>`` must not end the element)."""
    return json.dumps(text).replace("</", "<\\/")


def attacking_page(mock_url: str) -> bytes:
    """A text/plain form whose one field name and value rebuild a JSON body holding the payload."""
    body = json.dumps(dm_recommend(request_id=PAYLOAD))
    name, value = body[:-2] + '", "pad": "', '"}'  # name=value: the browser joins them with "="
    return (f"<!doctype html><title>attacker</title><form id=f method=post enctype=text/plain "
            f"action='{mock_url}/dm/service'><input type=hidden></form><script>"
            f"const i = document.querySelector('input'); i.name = {script_text(name)}; i.value = {script_text(value)};"
            "document.getElementById('f').submit();</script>").encode()


@pytest.fixture
def mock():
    with MockcreServer(scenario=SPLITTING, allow_violations=True) as server:
        yield server


@contextlib.contextmanager
def other_origin(pages: dict):
    """An HTTP server on another port (so another origin) answering GET ``path`` with ``pages[path]`` as HTML."""

    class Page(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            page = pages[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args):
            pass

    origin = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    threading.Thread(target=origin.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{origin.server_address[1]}"
    finally:
        origin.shutdown()
        origin.server_close()


def test_a_cross_origin_form_cannot_split_the_reply_and_take_the_admin_over(browser, mock):
    with other_origin({"/": attacking_page(mock.url)}) as attacker:
        browser.get(attacker + "/")
        WebDriverWait(browser, 10).until(lambda b: b.current_url.endswith("/dm/service"), browser.page_source[:300])
        time.sleep(0.5)  # time for an injected script to run, had one come through
        assert browser.title != "pwned"
        assert '"code":-1' in browser.page_source.replace(" ", "") and "reply header X-Why" in browser.page_source
    scenarios = requests.get(mock.url + "/__admin/scenarios", timeout=TIMEOUT).json()["scenarios"]
    assert [s["name"] for s in scenarios] == ["split"]
    entries = requests.get(mock.url + "/__admin/journal", timeout=TIMEOUT).json()["entries"]
    assert entries and entries[-1]["scenario"][0]["refused"].startswith("reply header X-Why")


def framed(browser, frame_id: str) -> tuple[str, bool]:
    """The text a frame of the current page shows, and whether it holds the dashboard's Reset button
    (WebDriver may enter a cross-origin frame; a page cannot)."""
    browser.switch_to.frame(browser.find_element(By.ID, frame_id))
    try:
        text = browser.execute_script("return document.body ? document.body.innerText : ''")
        return text, bool(browser.find_elements(By.ID, "reset"))
    finally:
        browser.switch_to.default_content()


def test_a_page_of_another_origin_cannot_frame_the_dashboard_but_frames_its_own(browser, mock):
    frames = (f"<iframe id=dashboard src='{mock.url}/__admin/'></iframe>"
              "<iframe id=own src='/decoy'></iframe>")
    pages = {"/": f"<!doctype html><title>attacker</title>{frames}".encode(),
             "/decoy": b"<!doctype html><p>click to win a prize</p>"}
    with other_origin(pages) as attacker:
        browser.get(attacker + "/")
        WebDriverWait(browser, 10).until(lambda b: "click to win a prize" in framed(b, "own")[0])  # framing works
        time.sleep(0.5)  # the dashboard's frame has had the time its neighbour needed
        shown, has_reset = framed(browser, "dashboard")
    assert not has_reset, shown[:300]  # no Reset button to click under a decoy
    assert "Reset" not in shown and "Journal" not in shown, shown[:300]
    assert requests.get(mock.url + "/__admin/", timeout=TIMEOUT).status_code == 200  # the dashboard itself is up
