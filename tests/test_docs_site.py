"""The docs/ site (MkDocs, Material theme) builds with --strict, offline, and holds every page (issue 19)."""

from __future__ import annotations

from conftest import need_module

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 180  # seconds


def nav_pages() -> list[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return [next(iter(entry.values())) for entry in config["nav"]]


def test_every_page_is_in_the_navigation():
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav_pages()) == on_disk


def test_mkdocs_build_strict(tmp_path):
    need_module("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not re.search(r"^(WARNING|ERROR)", done.stderr, re.M), done.stderr
    for page in nav_pages():
        html = tmp_path / "site" / (page[: -len(".md")] + "/index.html" if page != "index.md" else "index.html")
        assert html.is_file(), page
    # the complete example is pulled from examples/ by pymdownx.snippets, not copied
    assert "RecoClient" in (tmp_path / "site" / "pytest" / "index.html").read_text(encoding="utf-8")
    # nothing is fetched when the site is read: no font CDN
    assert "fonts.googleapis.com" not in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
