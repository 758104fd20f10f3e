"""The README as a front door (issue 19): its shape, its two commands, and what they rely on.

The examples inside README.md and docs/ are run by test_docs_examples.py; the site is built by
test_docs_site.py; the wheel the README tells you to install is tested by test_wheel.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mockcre.common.resources import scenarios_dir
from mockcre.scenarios.loader import ScenarioError, read

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"


def readme_commands() -> list[str]:
    """The command lines of the README's first code block: make a venv and serve; make a venv and test."""
    match = re.search(r"```sh\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert match, "the README starts with a sh block of its two commands"
    return [line for line in match.group(1).splitlines() if line.strip()]


def test_ci_runs_the_readmes_test_command_verbatim():
    serve, test = readme_commands()
    command = test.split("  #")[0].rstrip()  # the line less its comment
    assert "pytest" in command and "python3 -m venv .venv" in command
    assert command in (ROOT / ".ci" / "run").read_text(encoding="utf-8")


def test_the_readmes_serve_command_names_a_bundled_scenario():
    serve, _ = readme_commands()
    name = re.search(r"mockcre serve --scenario (\S+)", serve).group(1)
    src = read(name)  # what `mockcre serve --scenario NAME` reads
    assert src.path == (scenarios_dir() / f"{name}.yaml").resolve()
    assert src.data["name"] == name


@pytest.mark.parametrize("text", ["shop", "errors", "cold-start"])
def test_a_bundled_scenario_loads_by_name_without_its_suffix(text):
    assert read(text).data["name"] == text


def test_a_one_word_name_of_no_scenario_lists_the_bundled_ones():
    with pytest.raises(ScenarioError) as caught:
        read("nosuchscenario")
    assert "no scenario file or bundled scenario 'nosuchscenario'" in str(caught.value) and "shop" in str(caught.value)


def test_the_readme_is_a_front_door():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 250
    headings = re.findall(r"^## (.+)$", text, re.M)
    assert headings == ["First requests", "In your tests", "In CI", "The documentation"]
    first_requests = text.split("## First requests")[1].split("## In your tests")[0]
    for path in ("/upload", "/query", "/dm/data", "/dm/service"):
        assert re.search(rf"curl -s http://127\.0\.0\.1:8088{path} -H 'Content-Type: application/json'", first_requests), path


def test_every_docs_link_of_the_readme_exists():
    for target in re.findall(r"\]\((docs/[^)#]+)", README.read_text(encoding="utf-8")):
        assert (ROOT / target).is_file(), target


def test_nothing_tells_users_to_pip_install_an_unpublished_name():
    """mockcre is not on any index: install from a checkout or a wheel (issue 19)."""
    files = [README, *(ROOT / "docs").rglob("*.md"), *(ROOT / "examples").rglob("*.py"), *(ROOT / "mockcre").rglob("*.py")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"pip install (-\S+ )*mockcre\b(?![-\w./*\[])", text), path
