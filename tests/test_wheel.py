"""The wheel, tested as users get it (issue 19): built, installed in a fresh venv, used from elsewhere.

mockcre is not on PyPI, so the README tells users to install it from a checkout or a wheel built
there. This builds the wheel from a copy of the checkout (``pip wheel --no-deps``), installs it
with its dependencies from the package index into a new venv without system site-packages, and
from a folder outside the checkout runs ``mockcre serve --scenario shop`` and a request,
``mockcre validate`` on a file, and the README's pytest example with the plugin. The schemas and
the bundled scenarios must come from the wheel: the checkout is nowhere on that venv's path.
Every step is bounded in time.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from pathlib import Path

import pytest

import servekit
from servekit import ServeProcess

ROOT = Path(__file__).resolve().parent.parent
BUILD_TIMEOUT = 300  # seconds: pip fetches setuptools for the isolated build
INSTALL_TIMEOUT = 600  # seconds: the dependencies come from the package index
RUN_TIMEOUT = 120


def run(*args, cwd: Path, timeout: float = RUN_TIMEOUT, env=None) -> subprocess.CompletedProcess:
    return subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def copy_checkout(dest: Path) -> None:
    """The files git tracks (or, without git, the tree less environments and build output)."""
    git = shutil.which("git")  # a checkout unpacked from an archive, on a machine without git, has neither
    listed = subprocess.run([git, "ls-files", "-z"], cwd=ROOT, capture_output=True, timeout=30) if git else None
    if listed is not None and listed.returncode == 0 and listed.stdout:
        for name in listed.stdout.decode().split("\0"):
            if name and (ROOT / name).is_file():
                (dest / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(ROOT / name, dest / name)
    else:
        shutil.copytree(ROOT, dest, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
            ".venv", ".git", "build", "dist", "site", "*.egg-info", "__pycache__", "test-artifacts", ".hypothesis"))


def readme_test_block() -> str:
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(encoding="utf-8"), re.S)
    [block] = [b for b in blocks if "def test_" in b]
    return block


pytestmark = pytest.mark.slow  # builds and installs a wheel into a fresh venv


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """(venv's bin folder, a user's folder outside the checkout, the wheel's path)."""
    base = tmp_path_factory.mktemp("wheel")
    src, dist, user = base / "src", base / "dist", base / "user"
    for folder in (src, dist, user):
        folder.mkdir()
    copy_checkout(src)
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PIP_USER")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    built = run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", dist, src, cwd=base,
                timeout=BUILD_TIMEOUT, env=env)
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = dist.glob("mockcre-*.whl")
    made = run(sys.executable, "-m", "venv", base / "venv", cwd=base, env=env)  # no system site-packages
    assert made.returncode == 0, made.stderr
    bin_dir = base / "venv" / "bin"
    done = run(bin_dir / "python", "-m", "pip", "install", "-q", wheel, "requests", cwd=user,
               timeout=INSTALL_TIMEOUT, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    return bin_dir, user, wheel, env


def test_the_wheel_carries_schemas_scenarios_and_templates(installed):
    _, _, wheel, _ = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert "mockcre/schemas/cre.item.schema.json" in names and "mockcre/schemas/scenario.schema.json" in names
    assert "mockcre/scenario_files/shop.yaml" in names and "mockcre/scenario_files/errors.yaml" in names
    assert "mockcre/faces/templates/dashboard_journal.html" in names
    assert any(n.endswith("entry_points.txt") for n in names)


def test_the_installed_package_reads_its_data_from_the_venv(installed):
    bin_dir, user, _, env = installed
    done = run(bin_dir / "python", "-c", "import json, mockcre, mockcre.common.resources as r; print(json.dumps("
               "[mockcre.__file__, str(r.schemas_dir()), str(r.scenarios_dir())]))", cwd=user, env=env)
    assert done.returncode == 0, done.stderr
    venv = bin_dir.parent.resolve()
    for path in json.loads(done.stdout):
        assert Path(path).resolve().is_relative_to(venv), path
        assert not Path(path).resolve().is_relative_to(ROOT), path


def test_serve_shop_and_answer_a_request(installed, monkeypatch):
    bin_dir, user, _, env = installed
    monkeypatch.setattr(servekit, "mockcre_command", lambda: [str(bin_dir / "mockcre")])
    monkeypatch.delenv("PYTHONPATH", raising=False)
    with ServeProcess(user, "--scenario", "shop", cwd=user) as server:
        body = {"seq_no": "1", "token": "t", "proj_id": "1", "scn_id": "1", "uid_type": "5", "user_id": "shopper001",
                "pool_id": "sports", "request_num": "3"}
        request = urllib.request.Request(server.url + "/query", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            reply = json.load(response)
        assert reply["code"] == "0" and len(reply["rec"]["sports"]) == 3, reply
        [line] = [line for line in server.stdout().splitlines() if "scenario shop" in line]
        assert str(bin_dir.parent) in line and str(ROOT) not in line, line  # the wheel's shop.yaml


def test_validate_a_file(installed):
    bin_dir, user, _, env = installed
    (user / "good.json").write_text(json.dumps({"version": "1", "data_type": "1", "token": "t", "data": [
        {"busi_id": "1", "test_id": "1", "item_id": "a1", "pool_id": "p1"}]}), encoding="utf-8")
    (user / "bad.json").write_text(json.dumps({"version": "1", "data_type": "1", "token": "t", "data": [
        {"busi_id": "1", "test_id": "1", "item_id": "a1"}]}), encoding="utf-8")
    good = run(bin_dir / "mockcre", "validate", "good.json", cwd=user, env=env)
    assert good.returncode == 0, good.stdout + good.stderr
    bad = run(bin_dir / "mockcre", "validate", "bad.json", cwd=user, env=env)
    assert bad.returncode == 1 and "/data/0/pool_id" in bad.stdout, bad.stdout + bad.stderr


def test_the_readmes_pytest_example_with_the_plugin(installed):
    bin_dir, user, _, env = installed
    (user / "test_readme_example.py").write_text(readme_test_block(), encoding="utf-8")
    done = run(bin_dir / "python", "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_example.py",
               cwd=user, env=env, timeout=RUN_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 passed" in done.stdout
