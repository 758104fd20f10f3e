"""The architecture, written down as import-linter contracts in pyproject.toml, holds."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout, done.stdout


def test_a_broken_direction_is_caught(tmp_path):
    """The contracts can fail: a store that imported a face would break the layers. The probe is planted in a
    copy of the package (never in the package itself, which other tests import at the same time)."""
    shutil.copytree(ROOT / "mockcre", tmp_path / "mockcre", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    (tmp_path / "mockcre" / "engine" / "_layer_probe.py").write_text("import mockcre.faces.app  # noqa: F401\n",
                                                                      encoding="utf-8")
    lint = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run([str(lint), "--no-cache"], cwd=tmp_path, capture_output=True, text=True, timeout=120, env=env)
    assert done.returncode != 0 and "mockcre.engine._layer_probe" in done.stdout, done.stdout
    assert not (ROOT / "mockcre" / "engine" / "_layer_probe.py").exists()
