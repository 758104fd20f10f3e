"""The dashboard supports triage (issue 25.6), in headless chromium over real HTTP.

The journal list shows users, items, errors and warnings apart, and colours -1/-2/-3 rows by
severity; every date is a UTC date, not epoch seconds; the report's charts have labelled axes; a
request's page gives a curl command that sends the same request again, and runs under the
admin pages' Content-Security-Policy (no inline script).
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from mockcre import create_app
from mockcre.faces.server import ThreadedServer

ROOT = Path(__file__).resolve().parent.parent
NOW = 1_767_830_400  # 2026-01-08 00:00:00 UTC
ITEM = {"busi_id": "b", "test_id": "t", "item_id": "shoe-1", "pool_id": "p", "describe": "跑鞋 \"light\"\n'x'",
        "tags": {"t": "1"}, "expire_time": str(NOW + 86400)}


@pytest.fixture
def server():
    app = create_app({"clock": lambda: NOW})
    app.extensions["mockcre"].scenarios.load((ROOT / "scenarios" / "errors.yaml").read_bytes(), label="errors.yaml")
    with ThreadedServer(app) as srv:
        yield srv


def upload(url, data_type, records, headers=None, token="tok", **kwargs):
    body = {"version": "1", "data_type": data_type, "token": token, "data": records}
    return requests.post(url + "/upload", json=body, headers=headers, timeout=5, **kwargs).json()


def query(url, user, code_header=None):
    body = {"seq_no": "9", "token": "tok", "proj_id": "1", "scn_id": "1", "uid_type": "5", "user_id": user,
            "pool_id": "p", "request_num": "3"}
    headers = {"X-Mockcre-Code": code_header} if code_header else {}
    return requests.post(url + "/query", json=body, headers=headers, timeout=5).json()


def rows(browser) -> dict:
    """The journal's rows by seq: each a dict of its class and the texts of its named cells."""
    found = {}
    for tr in browser.find_elements(By.CSS_SELECTOR, "#rows tr"):
        cells = {td.get_attribute("class"): td.text for td in tr.find_elements(By.CSS_SELECTOR, "td[class]")}
        found[int(tr.find_element(By.CSS_SELECTOR, "td a").text)] = {"class": tr.get_attribute("class"), **cells,
                                                                     "bg": tr.value_of_css_property("background-color")}
    return found


def test_the_journal_shows_ids_counts_apart_and_colours_by_code(browser, server):
    url = server.url
    text_plain = {"Content-Type": "text/plain"}  # JSON under another type: accepted with one warning
    assert requests.post(url + "/upload", data=b'{"version": "1", "data_type": "1", "token": "tok", "data": [' +
                         __import__("json").dumps(ITEM).encode() + b"]}", headers=text_plain, timeout=5).json()["code"] == "0"
    assert upload(url, "1", [{"busi_id": "b", "test_id": "t", "item_id": "bad-1", "pool_id": "0"}])["code"] == "-1"
    assert query(url, "shopper-2", "-2")["code"] == "-2"
    assert query(url, "shopper-3", "-3")["code"] == "-3"
    many = [{"busi_id": "b", "test_id": "t", "item_id": f"m{i}", "pool_id": "p"} for i in range(5)]
    assert upload(url, "1", many)["code"] == "0"

    browser.get(url + "/__admin/")
    seen = rows(browser)
    assert seen[1]["items"] == "shoe-1" and seen[1]["errors"] == "0" and seen[1]["warnings"] == "1"
    assert seen[1]["class"] == "" and seen[1]["code"] == "0"  # a code-0 row with a warning is not an error row
    assert seen[2]["items"] == "bad-1" and int(seen[2]["errors"]) >= 1 and seen[2]["warnings"] == "0"
    assert seen[3]["users"] == "shopper-2" and seen[4]["users"] == "shopper-3"
    assert seen[5]["items"] == "m0, m1, m2 +2"  # long lists are cut, with how many more
    assert [seen[n]["class"] for n in (2, 3, 4)] == ["code-format-error", "code-system-error", "code-algorithm-error"]
    backgrounds = {seen[n]["bg"] for n in (1, 2, 3, 4)}
    assert len(backgrounds) == 4, backgrounds  # each severity its own colour, and none on a code-0 row
    assert re.fullmatch(r"2026-01-08 00:00:00 UTC", browser.find_element(By.CSS_SELECTOR, "#req-1 td:nth-child(2)").text)
    headers = [th.text for th in browser.find_elements(By.CSS_SELECTOR, "thead th")]
    assert headers[4:9] == ["code", "users", "items", "errors", "warnings"]


def test_store_and_report_show_dates_and_labelled_axes(browser, server):
    url = server.url
    assert upload(url, "1", [ITEM])["code"] == "0"
    actions = [{"uid_type": "5", "uid": "u1", "oper_time": str(NOW - 3600 * h), "source": "1", "action_id": aid,
                "item_action": [{"item_id": "shoe-1", "trace_id": "t1"}]} for h, aid in ((1, "101"), (1, "102"), (3, "101"))]
    assert upload(url, "2", actions)["code"] == "0"

    browser.get(url + "/__admin/store")
    cells = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table td")]
    assert "2026-01-09 00:00:00 UTC" in cells, cells  # expire_time, not 1767916800
    assert not any(re.fullmatch(r"\d{9,}", c) for c in cells)
    browser.find_element(By.LINK_TEXT, "u1").click()
    history = [td.text for td in browser.find_elements(By.CSS_SELECTOR, "table td")]
    assert "2026-01-07 23:00:00 UTC" in history and not any(re.fullmatch(r"\d{9,}", c) for c in history)

    browser.get(url + "/__admin/report?format=html")
    chart = browser.find_element(By.CSS_SELECTOR, "figure[aria-label='actions per hour by type'] svg")
    labels = [t.text for t in chart.find_elements(By.CSS_SELECTOR, "text.axis-label")]
    assert labels == ["actions", "hour (UTC), hours with actions"]
    ticks = [t.text for t in chart.find_elements(By.CSS_SELECTOR, ".x-axis text:not(.axis-label)")]
    assert ticks == ["01-07 21:00", "01-07 23:00"]  # the first and the last hour
    assert [t.text for t in chart.find_elements(By.CSS_SELECTOR, ".y-axis text:not(.axis-label)")] == ["1", "0"]
    page = browser.find_element(By.TAG_NAME, "body").text
    assert "1767" not in page  # no epoch seconds anywhere on the page


def test_copy_as_curl_sends_the_same_request_again(browser, server):
    url = server.url
    assert upload(url, "1", [ITEM], headers={"X-Trace": "abc 'q'"})["code"] == "0"
    browser.get(url + "/__admin/requests/1")
    command = browser.find_element(By.ID, "curl").text
    assert command.startswith(f"curl -sS -X POST {url}/upload -H ")
    assert "Content-Length" not in command and "User-Agent" not in command
    assert "(token: their values end in …): fill in the real values" in browser.find_element(By.ID, "masked-note").text
    page = requests.get(url + "/__admin/requests/1", timeout=5)
    assert "script-src 'self';" in page.headers["Content-Security-Policy"]  # no inline script may run
    assert re.findall(r"<script[^>]*>", page.text) == ['<script src="/__admin/static/dashboard.js">']
    assert not re.search(r"\son[a-z]+=", page.text)  # no inline handler (onclick=...) either
    browser.find_element(By.ID, "copy-curl").click()  # the script is /__admin/static/dashboard.js, allowed by the CSP
    WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "copy-status").text != "")
    assert browser.find_element(By.ID, "copy-status").text in ("Copied.", "Selected: press Ctrl+C to copy.")

    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and '"code":"0"' in done.stdout, done.stdout + done.stderr
    first, again = requests.get(url + "/__admin/journal", timeout=5).json()["entries"][-2:]
    assert again["body"] == first["body"] and again["endpoint"] == first["endpoint"]
    assert again["headers"]["X-Trace"] == "abc 'q'" and again["violations"] == first["violations"]


def test_the_masked_note_names_what_was_masked_and_only_then(browser, server):
    """Near miss: a body whose text holds "…" but no secret gets no note; a masked header is named."""
    url = server.url
    dm_body = {"bid": "b1", "request_id": "r1", "data_type": 1, "data": [{"item_id": "i…1"}]}
    requests.post(url + "/dm/data", json=dm_body, timeout=5)
    assert upload(url, "1", [ITEM], headers={"Authorization": "Bearer secret-value"})["code"] == "0"
    browser.get(url + "/__admin/requests/1")
    assert "i…1" in browser.find_element(By.ID, "curl").text and browser.find_elements(By.ID, "masked-note") == []
    browser.get(url + "/__admin/requests/2")
    assert "(Authorization, token:" in browser.find_element(By.ID, "masked-note").text
    assert "Authorization: Bear…" in browser.find_element(By.ID, "curl").text
