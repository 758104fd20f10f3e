"""The architecture, written down as import-linter contracts in pyproject.toml, holds: one layer a folder."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).parent / "lint-imports"


def _contracts() -> list[dict]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["importlinter"]["contracts"]


def test_the_import_contracts_hold():
    done = subprocess.run([str(LINT), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(_contracts())} kept, 0 broken" in done.stdout and len(_contracts()) >= 5, done.stdout


def test_every_folder_of_the_package_is_a_layer():
    """A new folder cannot escape the layers: each package folder is named, in order, by the layers contract."""
    layers = next(c["layers"] for c in _contracts() if c["type"] == "layers")
    named = [layer for layer in layers if "." in layer and ":" not in layer]
    folders = {f"mockcre.{p.parent.name}" for p in (ROOT / "mockcre").glob("*/__init__.py")}
    assert set(named) == folders, (named, folders)


@pytest.mark.parametrize(("lower", "higher"), [
    ("common", "model"), ("model", "dialects"), ("dialects", "contracts"), ("contracts", "scenarios"),
    ("scenarios", "pipeline"), ("pipeline", "tools"), ("tools", "faces"),
])
def test_an_import_one_layer_up_is_caught(tmp_path, lower, higher):
    """The contracts can fail: a module of each folder that imported the folder just above breaks them. The probe
    is planted in a copy of the package (never in the package itself, which other tests import at the same time)."""
    shutil.copytree(ROOT / "mockcre", tmp_path / "mockcre", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "mockcre" / lower / "_layer_probe.py").write_text(f"import mockcre.{higher}  # noqa: F401\n",
                                                                  encoding="utf-8")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([str(LINT), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0 and f"mockcre.{lower}._layer_probe" in done.stdout, done.stdout
    assert not (ROOT / "mockcre" / lower / "_layer_probe.py").exists()
