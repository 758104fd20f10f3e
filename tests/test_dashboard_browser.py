"""The dashboard in a real browser: headless Debian chromium driven by selenium over real HTTP."""

from __future__ import annotations

from pathlib import Path

import pytest
import requests
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from mockcre import create_app
from mockcre.faces.server import ThreadedServer

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest.fixture
def server():
    with ThreadedServer(create_app({"clock": lambda: 1_767_830_400})) as srv:
        yield srv


def _upload(url, data_type, records):
    return requests.post(url + "/upload", json={"version": "1", "data_type": data_type, "token": "t", "data": records},
                         timeout=5).json()


def test_journal_detail_report_and_escaping(browser, server):
    url = server.url
    # a valid item whose describe is markup, an invalid one, and a planted quality problem (a click with no exposure)
    assert _upload(url, "1", [{"busi_id": "b", "test_id": "t", "item_id": "xss", "pool_id": "p",
                               "describe": "<script>alert('x')</script>", "tags": {"t": "1"}, "lv1class": "c"}])["code"] == "0"
    assert _upload(url, "1", [{"busi_id": "b", "test_id": "t", "item_id": "bad", "pool_id": "0"}])["code"] == "-1"
    assert _upload(url, "2", [{"uid_type": "5", "uid": "u1", "oper_time": "1767830000", "source": "1", "action_id": "102",
                               "item_action": [{"item_id": "xss", "trace_id": "lonely"}]}])["code"] == "0"

    browser.get(url + "/__admin/")
    rows = browser.find_elements(By.CSS_SELECTOR, "#rows tr")
    assert [r.find_element(By.CSS_SELECTOR, "td a").text for r in rows] == ["3", "2", "1"]  # newest first
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text

    # a new request shows up by itself (auto-refresh)
    _upload(url, "1", [{"busi_id": "b", "test_id": "t", "item_id": "late", "pool_id": "p"}])
    WebDriverWait(browser, 8).until(lambda d: d.find_element(By.CSS_SELECTOR, "#rows tr td a").text == "4")

    browser.get(url + "/__admin/requests/2")
    marked = browser.find_elements(By.CSS_SELECTOR, "#body mark.violation.error")
    assert [m.get_attribute("data-path") for m in marked] == ["/data/0/pool_id"]
    assert "global pool" in marked[0].get_attribute("title")

    browser.get(url + "/__admin/requests/1")
    assert "<script>alert('x')</script>" in browser.find_element(By.ID, "body").text  # shown as text
    with pytest.raises(NoAlertPresentException):
        browser.switch_to.alert.text

    browser.get(url + "/__admin/report?format=html")
    rules = [c.text for c in browser.find_elements(By.CSS_SELECTOR, "table.findings code")]
    assert "click-without-exposure" in rules
    ARTIFACTS.mkdir(exist_ok=True)
    assert browser.save_screenshot(str(ARTIFACTS / "dashboard-report.png"))

    browser.get(url + "/__admin/")
    browser.find_element(By.ID, "reset").click()
    browser.switch_to.alert.accept()  # Reset asks first (issue 22)
    WebDriverWait(browser, 5).until(lambda d: "reset" in d.find_element(By.CSS_SELECTOR, "[role=status]").text)
    assert browser.find_element(By.CSS_SELECTOR, "#rows").text == "No requests yet."
    browser.save_screenshot(str(ARTIFACTS / "dashboard-journal.png"))


def test_keyboard_reaches_every_control(browser, server):
    browser.get(server.url + "/__admin/")
    body = browser.find_element(By.TAG_NAME, "body")
    seen = set()
    for _ in range(25):
        body.send_keys("\ue004")  # Tab
        active = browser.switch_to.active_element
        seen.add(active.get_attribute("id") or active.get_attribute("name") or active.text)
    assert {"endpoint", "user", "violations", "reset"} <= seen
