"""Every example of README.md and docs/ runs, and prints what the page says it prints (issue 19).

Sybil finds the fenced blocks; two evaluators here say what running one means:

- ``console`` blocks: each ``$ `` line (continued by a trailing ``\\``) is a shell command, and the
  lines under it are what it prints. The command runs in bash, in a fresh folder, with this
  environment's ``mockcre`` first on PATH, against a real ``mockcre serve --scenario shop``
  started for the page on a free 127.0.0.1 port (``127.0.0.1:8088`` and ``localhost:8088`` in the
  command are rewritten to it, and back in what it prints). It must exit 0 (write ``|| echo "exit $?"`` to show a failure).
  Its output is compared as JSON when the page's text is JSON (one document, or one a line), where
  the string ``"..."`` stands for any value (ids that vary, such as ``trace_id``); otherwise as
  text, where ``...`` stands for any run of characters (doctest's ELLIPSIS). Blocks of one page
  run in order and share the server, so a page can upload and then query.
- ``python`` blocks: a block that defines ``test_`` functions is a test file, run by pytest in a
  subprocess (the mockcre plugin included) and required to pass; any other block is executed.
  A block that is only a snippet line (``--8<-- "path"``, pymdownx.snippets) stands for that file.
- ``yaml`` blocks with a top-level ``name:`` (or a snippet line of such a file) are scenarios: ``mockcre
  scenario lint`` must pass them.

Other blocks (``sh`` install and server lines, ``text``) are shown, not run; a ``curl`` line or an
address on port 8088 in any block but ``console`` fails :func:`test_every_request_is_in_a_console_block`,
so no request a page shows escapes this.
"""

from __future__ import annotations

import doctest
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from sybil import Document
from sybil.parsers.markdown import CodeBlockParser

from servekit import ServeProcess

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
BIN = Path(sys.executable).parent
ANY = "..."  # in a JSON reply: any value
RUN_TIMEOUT = 60  # seconds for one command
PYTEST_TIMEOUT = 180  # seconds for one test-file block
SERVER_ADDRESSES = re.compile(r"(?:127\.0\.0\.1|localhost):8088\b")
SNIPPET = re.compile(r'^\s*--8<--\s+"([^"]+)"\s*$')


def page_id(page: Path) -> str:
    return str(page.relative_to(ROOT))


class Page:
    """What the examples of one page share: a folder to run in and a server started on first use."""

    def __init__(self, workdir: Path):
        self.workdir = workdir
        self.server: ServeProcess | None = None
        self.blocks = 0

    def url(self) -> str:
        if self.server is None:
            logs = self.workdir / ".server"
            logs.mkdir()
            self.server = ServeProcess(logs, "--scenario", "shop")
        return f"127.0.0.1:{self.server.port}"

    def close(self) -> None:
        if self.server is not None:
            self.server.close()


def where(example) -> str:
    return f"{page_id(Path(example.path))}, line {example.line}"


# -- console blocks ---------------------------------------------------------------------------

def commands(source: str) -> list[tuple[str, list[str]]]:
    """``[(command, expected output lines)]`` of a console block."""
    found: list[tuple[str, list[str]]] = []
    continued = False
    for line in source.splitlines():
        if continued:
            found[-1] = (found[-1][0] + "\n" + line, found[-1][1])
        elif line.startswith("$ "):
            found.append((line[2:], []))
        elif found:
            found[-1][1].append(line)
        elif line.strip():
            raise AssertionError(f"console blocks start with a '$ ' command line, not {line!r}")
        continued = line.endswith("\\")
    return found


def json_matches(expected, actual) -> bool:
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        return isinstance(actual, dict) and expected.keys() == actual.keys() and all(
            json_matches(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(
            json_matches(e, a) for e, a in zip(expected, actual))
    return type(expected) is type(actual) and expected == actual


def as_json(text: str):
    """The JSON documents of ``text``: one document, or one a line; None when it is not JSON."""
    try:
        return [json.loads(text)]
    except ValueError:
        pass
    try:
        return [json.loads(line) for line in text.splitlines() if line.strip()] or None
    except ValueError:
        return None


def output_matches(expected: str, actual: str) -> bool:
    wanted = as_json(expected) if expected.strip() else None
    if wanted is not None:
        got = as_json(actual)
        return got is not None and len(got) == len(wanted) and all(map(json_matches, wanted, got))
    checker = doctest.OutputChecker()
    return checker.check_output(expected.strip() + "\n", actual.strip() + "\n",
                                doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE) if expected.strip() else not actual.strip()


def evaluate_console(example) -> None:
    page: Page = example.namespace["page"]
    page.blocks += 1
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed (apt-get install curl): the pages' requests are curl lines")
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}", "NO_COLOR": "1"}
    for command, expected in commands(example.parsed):
        if SERVER_ADDRESSES.search(command):
            command = SERVER_ADDRESSES.sub(page.url(), command)
        try:
            done = subprocess.run(["bash", "-c", command], cwd=page.workdir, env=env, capture_output=True, text=True,
                                  timeout=RUN_TIMEOUT, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise AssertionError(f"{where(example)}: did not end within {RUN_TIMEOUT} s: {command}") from None
        assert done.returncode == 0, (f"{where(example)}: exit {done.returncode}: {command}\n"
                                      f"stdout: {done.stdout}\nstderr: {done.stderr}")
        expected_text = "\n".join(expected)
        printed = done.stdout if page.server is None else done.stdout.replace(page.url(), "127.0.0.1:8088")
        assert output_matches(expected_text, printed), (
            f"{where(example)}: {command}\n--- the page says:\n{expected_text}\n--- it printed:\n{done.stdout}")


# -- python blocks ----------------------------------------------------------------------------

def block_source(example) -> str:
    """The block's text, or the file it includes when it is only a snippet line."""
    lines = [line for line in example.parsed.splitlines() if line.strip()]
    if len(lines) == 1 and (snippet := SNIPPET.match(lines[0])):
        return (ROOT / snippet.group(1)).read_text(encoding="utf-8")
    return example.parsed


def evaluate_python(example) -> None:
    page: Page = example.namespace["page"]
    page.blocks += 1
    source = block_source(example)
    if SERVER_ADDRESSES.search(source):
        source = SERVER_ADDRESSES.sub(page.url(), source)
    if re.search(r"^def test_", source, re.M):
        test_file = page.workdir / f"test_block_{example.line}.py"
        test_file.write_text(source, encoding="utf-8")
        done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", test_file.name],
                              cwd=page.workdir, capture_output=True, text=True, timeout=PYTEST_TIMEOUT,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, f"{where(example)}: the tests of this block fail:\n{done.stdout}\n{done.stderr}"
    else:
        code = compile(source, f"{example.path}:{example.line}", "exec")
        exec(code, example.namespace)  # noqa: S102 - the page's own example


# -- yaml blocks ------------------------------------------------------------------------------

def evaluate_yaml(example) -> None:
    """A scenario (a block with a top-level ``name:``) must pass ``mockcre scenario lint``; other YAML is shown only."""
    page: Page = example.namespace["page"]
    source = block_source(example)
    if not re.search(r"^name:", source, re.M):
        return
    page.blocks += 1
    scenario = page.workdir / f"scenario_block_{example.line}.yaml"
    scenario.write_text(source, encoding="utf-8")
    done = subprocess.run([str(BIN / "mockcre") if (BIN / "mockcre").exists() else "mockcre", "scenario", "lint",
                           scenario.name], cwd=page.workdir, capture_output=True, text=True, timeout=RUN_TIMEOUT,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 0, f"{where(example)}: the scenario does not lint:\n{done.stdout}{done.stderr}"


PARSERS = [CodeBlockParser("console", evaluate_console), CodeBlockParser("python", evaluate_python),
           CodeBlockParser("yaml", evaluate_yaml)]


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_the_examples_of_a_page_run_as_shown(page, tmp_path):
    document = Document.parse(str(page), *PARSERS)
    state = Page(tmp_path)
    document.namespace["page"] = state
    try:
        for example in document.examples():
            example.evaluate()
    finally:
        state.close()


FENCE = re.compile(r"^```(\S*)[^\n]*\n(.*?)^```", re.M | re.S)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_request_is_in_a_console_block(page):
    for language, body in FENCE.findall(page.read_text(encoding="utf-8")):
        if language == "console":
            continue
        for line in body.splitlines():
            if line.lstrip().startswith("#"):
                continue
            code = line.split("  #")[0]
            assert not re.search(r"\bcurl\s+(-|http)", code), f"{page_id(page)}: a curl line outside a console block: {line}"
            assert not SERVER_ADDRESSES.search(code) or "mockcre serve" in code or language == "python", (
                f"{page_id(page)}: an address on port 8088 outside a console block: {line}")


def test_the_pages_have_examples_that_run():
    """Guard against a runner that finds nothing: the README alone has console and python blocks."""
    document = Document.parse(str(ROOT / "README.md"), *PARSERS)
    languages = {example.region.parsed and example.region.lexemes.get("arguments") for example in document.examples()}
    assert {"console", "python"} <= languages
