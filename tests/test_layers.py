"""The architecture, written down as import-linter contracts in pyproject.toml, holds."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_the_import_contracts_hold():
    lint = Path(sys.executable).parent / "lint-imports"
    done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 kept, 0 broken" in done.stdout, done.stdout


def test_a_broken_direction_is_caught():
    """The contracts can fail: a store that imported a face would break the layers."""
    config = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    probe = ROOT / "mockcre" / "engine" / "_layer_probe.py"
    probe.write_text("import mockcre.faces.app  # noqa: F401\n", encoding="utf-8")
    try:
        lint = Path(sys.executable).parent / "lint-imports"
        done = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        probe.unlink()
    assert done.returncode != 0 and "mockcre.engine._layer_probe" in done.stdout, done.stdout
    assert config == (ROOT / "pyproject.toml").read_text(encoding="utf-8")
