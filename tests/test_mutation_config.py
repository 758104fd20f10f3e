"""The documented mutation run (bench/mutation.py, [tool.mutmut]) names modules and test files that exist.

The run itself takes minutes a module and is not part of the suite; this keeps its command from rotting
when a module or a test file is renamed.
"""

from __future__ import annotations

import importlib.util
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _mutmut_config() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]


def test_every_mutated_module_and_test_file_exists():
    config = _mutmut_config()
    assert config["source_paths"] == ["mockcre"]
    missing = [p for p in config["only_mutate"] + config["pytest_add_cli_args_test_selection"] + config["also_copy"]
               if not (ROOT / p).exists()]
    assert not missing


def test_the_script_offers_exactly_the_configured_modules():
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "bench" / "mutation.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    modules = script.configured_modules()
    assert "mockcre.faces.cors" in modules and "mockcre.contracts.jsonbody" in modules
    assert all(importlib.util.find_spec(m) is not None for m in modules)
