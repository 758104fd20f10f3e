"""The README as a front door (issue 19): its shape, its two commands, and what they rely on.

The examples inside README.md and docs/ are run by test_docs_examples.py; the site is built by
test_docs_site.py; the wheel the README tells you to install is tested by test_wheel.py.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from mockcre.resources import scenarios_dir
from mockcre.scenarios.loader import read

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


def test_a_one_word_text_that_names_no_bundled_scenario_is_still_text():
    src = read("nosuchscenario")
    assert (src.data, src.path) == ("nosuchscenario", None)  # then refused: "a scenario is a mapping"
