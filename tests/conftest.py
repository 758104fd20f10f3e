"""Shared fixtures of the test suite."""

from __future__ import annotations

import copy
import importlib.util
import os
import shutil

import pytest

from mockcre.common.resources import load_schema


def in_ci() -> bool:
    """CI=true (GitHub Actions, GitLab, most CI services set it): every optional tool is installed there."""
    return os.environ.get("CI", "").strip().lower() == "true"


def need(found, what: str, install: str):
    """An optional tool a test needs: ``found`` when it is there; else a skip saying what is missing and how to
    install it, except in CI, where a missing tool is a failure (a skip there would hide an untested face)."""
    if found:
        return found
    message = f"{what} is not installed ({install})"
    if in_ci():
        pytest.fail(f"{message}; CI=true, where every optional tool must be installed", pytrace=False)
    pytest.skip(message)


def need_tools(*names: str, install: str) -> list[str]:
    """The paths of the programs ``names`` (see :func:`need`)."""
    paths = [shutil.which(name) for name in names]
    need(all(paths), " and ".join(n for n, p in zip(names, paths) if not p) or "", install)
    return paths


def need_module(name: str, install: str = "pip install -e '.[test]'") -> None:
    """A Python module of the test extra (see :func:`need`)."""
    need(importlib.util.find_spec(name) is not None, f"the Python module {name}", install)


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

    chromium, chromedriver = need_tools("chromium", "chromedriver", install="apt-get install chromium chromium-driver")
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

    from mockcre.faces.tls import CA_DIR_ENV

    folder = tempfile.TemporaryDirectory(prefix="mockcre-test-ca-")
    atexit.register(folder.cleanup)
    os.environ[CA_DIR_ENV] = os.path.join(folder.name, "ca")
