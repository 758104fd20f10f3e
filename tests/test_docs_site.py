"""The docs/ site (MkDocs, Material theme) builds with --strict, offline, and holds every page (issue 19)."""

from __future__ import annotations

from conftest import need_module

import os
import re
import subprocess
import sys
from pathlib import Path

import tomllib
import yaml
from urllib.parse import unquote, urlsplit

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 180  # seconds


def assert_links_resolve_as_files(site: Path) -> None:
    """Every local link of every page names a file that exists, as a browser on ``file://`` needs
    (a link to a folder, as ``use_directory_urls`` makes, shows a directory listing there)."""
    checked = 0
    for html in site.rglob("*.html"):
        if html.name == "404.html" or "assets" in html.parts:
            continue  # the 404 page links from the site's root: only a server shows it
        for target in re.findall(r'(?:href|src)="([^"]+)"', html.read_text(encoding="utf-8")):
            parts = urlsplit(target)
            if parts.scheme or parts.netloc or not parts.path:
                continue  # another site, or an anchor on this page
            resolved = (html.parent / unquote(parts.path)).resolve()
            assert resolved.is_file(), f"{html.relative_to(site)} links {target!r}: no such file under file://"
            checked += 1
    assert checked > 100  # the navigation alone links every page from every page


def nav_pages() -> list[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return [next(iter(entry.values())) for entry in config["nav"]]


def test_every_page_is_in_the_navigation():
    on_disk = sorted(str(p.relative_to(ROOT / "docs")) for p in (ROOT / "docs").rglob("*.md"))
    assert sorted(nav_pages()) == on_disk


def test_the_docs_extra_builds_the_site_without_the_test_tools():
    """``pip install -e '.[docs]'`` brings MkDocs and the theme (whose pymdown-extensions mkdocs.yml
    uses), and nothing of the test suite; the test extra includes the docs extra."""
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["optional-dependencies"]
    names = {re.match(r"[\w.-]+", req).group(0).lower() for req in extras["docs"]}
    assert names == {"mkdocs", "mkdocs-material"}
    assert "mockcre[docs]" in extras["test"]
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert "plugins:" not in config  # only mkdocs's built-in search: no plugin outside the extra
    need_module("material")
    from importlib.metadata import requires
    assert any(req.startswith("pymdown-extensions") for req in requires("mkdocs-material"))
    extensions = {next(iter(e)) if isinstance(e, dict) else e for e in yaml.safe_load(config)["markdown_extensions"]}
    assert {e for e in extensions if not e.startswith("pymdownx.")} <= {"tables", "toc", "admonition"}  # Python-Markdown's own


def test_mkdocs_build_strict(tmp_path):
    need_module("mkdocs")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1", "NO_COLOR": "1"}
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=BUILD_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not re.search(r"^(WARNING|ERROR)", done.stderr, re.M), done.stderr
    for page in nav_pages():
        assert (tmp_path / "site" / (page[: -len(".md")] + ".html")).is_file(), page
    assert_links_resolve_as_files(tmp_path / "site")
    # the complete example is pulled from examples/ by pymdownx.snippets, not copied
    assert "RecoClient" in (tmp_path / "site" / "pytest.html").read_text(encoding="utf-8")
    # nothing is fetched when the site is read: no font CDN
    assert "fonts.googleapis.com" not in (tmp_path / "site" / "index.html").read_text(encoding="utf-8")
