"""Shared fixtures of the test suite."""

from __future__ import annotations

import copy
import shutil

import pytest

from mockcre.resources import load_schema


@pytest.fixture
def example():
    """A fresh copy of a schema's document example: ``example("dm.item")``, ``example("cre.upload-response", 1)``."""

    def make(name: str, index: int = 0):
        return copy.deepcopy(load_schema(name)["examples"][index])

    return make


@pytest.fixture(scope="module")
def browser():
    """Headless Debian chromium driven by selenium (imported here: only the browser tests need it)."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service as ChromeService

    chromium, chromedriver = shutil.which("chromium"), shutil.which("chromedriver")
    assert chromium and chromedriver, "the browser tests need Debian's chromium and chromium-driver (see the README)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--window-size=1280,900"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=ChromeService(chromedriver), options=options)
    driver.set_page_load_timeout(20)
    driver.set_script_timeout(15)  # every execute_async_script is bounded
    yield driver
    driver.quit()


def pytest_configure(config):
    """The kept local CA of every server the suite starts (in-process and ``mockcre serve``, which inherit the
    environment) lives in a temporary folder: the suite never writes into the real home's data directory."""
    import atexit
    import os
    import tempfile

    from mockcre.tls import CA_DIR_ENV

    folder = tempfile.TemporaryDirectory(prefix="mockcre-test-ca-")
    atexit.register(folder.cleanup)
    os.environ[CA_DIR_ENV] = os.path.join(folder.name, "ca")
