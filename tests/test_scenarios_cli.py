"""``mockcre scenario lint`` and ``mockcre serve --scenario`` as real subprocesses (issue 4).

Every subprocess is bounded by a timeout and killed in ``finally``; servers listen on free ports,
so the file runs under xdist. ``mockcre serve`` is the real thing, which is why the faults are
checked here too: a client must see a connection error, not a reply.
"""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from mockcre.common.resources import scenarios_dir

from httpkit import cre_query, dm_item, dm_recommend

MOCKCRE = [sys.executable, "-m", "mockcre"]
LINT_TIMEOUT = 60
START_TIMEOUT = 20


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(*args, cwd=None, timeout=LINT_TIMEOUT) -> subprocess.CompletedProcess:
    return subprocess.run([*MOCKCRE, *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def bundled_files() -> list[Path]:
    return sorted(scenarios_dir().glob("*.yaml"))


# -- mockcre scenario lint -----------------------------------------------------------------------

def test_lint_passes_every_bundled_scenario():
    files = bundled_files()
    assert len(files) >= 6
    done = run("scenario", "lint", *map(str, files))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip().splitlines()[-1] == f"{len(files)} files checked, 0 problems"


def test_lint_through_the_console_script():
    script = Path(sys.executable).parent / "mockcre"  # installed beside the interpreter that runs the suite
    assert script.exists(), f"no console script at {script}: is mockcre installed in this environment?"
    done = subprocess.run([str(script), "scenario", "lint", str(scenarios_dir() / "errors.yaml")],
                          capture_output=True, text=True, timeout=LINT_TIMEOUT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 file checked, 0 problems" in done.stdout


BAD = """\
name: bad
rules:
  - when: {endpoint: cre.query}
    then:
      cdoe: -1
  - when:
      endpoint: dm.serivce
    then: {code: -2}
  - when: {match: {uid: {regex: "(unclosed"}}}
    then: {code: -3}
  - when: {endpoint: any}
    then: {fault: reset}
  - when: {endpoint: dm.data, match: {uid: x}}
    then: {code: -1}
  - when: {endpoint: cre.query, match: {user_id: y}}
    then: {body_file: ../../etc/passwd}
"""


def _problem_lines(stdout: str, path: Path) -> list[tuple[int, int, str]]:
    pattern = re.compile(rf"^{re.escape(str(path))}:(\d+):(\d+): (.+)$")
    found = []
    for line in stdout.splitlines():
        match = pattern.match(line)
        if match:
            found.append((int(match[1]), int(match[2]), match[3]))
    return found


def test_lint_bad_file_exits_1_with_file_line_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    done = run("scenario", "lint", str(path))
    assert done.returncode == 1, done.stdout + done.stderr
    problems = _problem_lines(done.stdout, path)
    assert len(problems) == len(done.stdout.strip().splitlines()) - 1, done.stdout  # every line but the summary
    lines = {line for line, _, _ in problems}
    assert {5, 7, 9, 13, 16} <= lines, done.stdout  # typo, endpoint, regex, unreachable, body_file
    assert all(line >= 1 and column >= 1 for line, column, _ in problems)
    assert re.search(r"1 file checked, \d+ problems", done.stdout)


def test_lint_several_files_names_each(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD, encoding="utf-8")
    good = scenarios_dir() / "flaky.yaml"
    done = run("scenario", "lint", str(good), str(bad))
    assert done.returncode == 1
    assert str(good) not in done.stdout
    assert _problem_lines(done.stdout, bad)
    assert "2 files checked" in done.stdout


@pytest.mark.parametrize("text, line, column", [
    ('name: tagged\ndescription: !!python/object/apply:os.system ["touch {marker}"]\n', 2, 14),
    ("name: broken\nrules: [\n", 3, 1),
], ids=["python-tag", "syntax-error"])
def test_lint_yaml_errors_have_file_line_column(tmp_path, text, line, column):
    marker = tmp_path / "pwned"
    path = tmp_path / "yaml-error.yaml"
    path.write_text(text.format(marker=marker), encoding="utf-8")
    done = run("scenario", "lint", str(path))
    assert done.returncode == 1
    assert not marker.exists()
    first = done.stdout.splitlines()[0]
    assert first.startswith(f"{path}:{line}:{column}: not valid YAML"), first
    assert first.count(str(path)) == 1, first


def test_lint_missing_file(tmp_path):
    path = tmp_path / "nowhere.yaml"
    done = run("scenario", "lint", str(path))
    assert done.returncode == 1
    assert done.stdout.startswith(f"{path}:1:1: "), done.stdout


# -- mockcre serve --scenario --------------------------------------------------------------------

class Served:
    """A ``mockcre serve`` subprocess on a free port, with its output in files."""

    def __init__(self, tmp_path: Path, *args: str):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.out = tmp_path / f"serve-{self.port}.out"
        self.err = tmp_path / f"serve-{self.port}.err"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.started = time.monotonic()
            self.proc = subprocess.Popen([*MOCKCRE, "serve", "--port", str(self.port), *args], cwd=tmp_path,
                                         stdout=out, stderr=err)

    def output(self) -> str:
        return self.out.read_text() + self.err.read_text()

    def wait_until(self, attempt, timeout: float = START_TIMEOUT):
        """Call ``attempt()`` until it returns without a connection error; the result and the seconds taken."""
        deadline = self.started + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"mockcre serve exited with {self.proc.returncode}:\n{self.output()}")
            try:
                return attempt(), time.monotonic() - self.started
            except requests.exceptions.ConnectionError:
                time.sleep(0.02)
        pytest.fail(f"mockcre serve did not answer within {timeout} s:\n{self.output()}")

    def stop(self) -> int | None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        return self.proc.poll()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


@pytest.fixture
def served(tmp_path):
    started = []

    def factory(*args: str) -> Served:
        server = Served(tmp_path, *args)
        started.append(server)
        return server

    yield factory
    for server in started:
        server.stop()
        server.kill()


def test_serve_bundled_shop_by_bare_name(served):
    server = served("--scenario", "shop.yaml")
    body = cre_query(user_id="shopper001", request_num=10)
    reply, seconds = server.wait_until(lambda: requests.post(server.url + "/query", json=body, timeout=2).json())
    assert reply["code"] == "0" and reply["abtag"] == "9001", reply  # personalised from the shop's fixtures
    assert len(reply["rec"]["0"]) == 10
    assert seconds < 3.0, f"first personalised answer {seconds:.2f} s after start (wanted ~2 s)"
    scenarios = requests.get(server.url + "/__admin/scenarios", timeout=5).json()["scenarios"]
    assert [s["name"] for s in scenarios] == ["shop"]
    dm = requests.post(server.url + "/dm/service", json=dm_recommend(bid="shop", uid="shopper001"), timeout=5).json()
    assert dm["code"] == 0 and dm["algid"] == 13
    assert server.stop() == 0
    assert f"{server.url}/query" in server.output()


FAULTS = """\
name: faults-under-serve
rules:
  - name: drop
    when: {match: {uid: chaos}}
    then: {fault: reset}
  - name: hang
    when: {match: {uid: hang}}
    then: {fault: timeout, timeout_ms: 1000}
  - name: mangle
    when: {match: {uid: mangle}}
    then: {fault: malformed}
  - name: nothing
    when: {match: {uid: void}}
    then: {fault: empty}
"""


@pytest.fixture
def faulty(served, tmp_path) -> Served:
    path = tmp_path / "faults.yaml"
    path.write_text(FAULTS, encoding="utf-8")
    server = served("--scenario", str(path))
    server.wait_until(lambda: requests.get(server.url + "/__admin/health", timeout=2))
    return server


def test_serve_fault_reset_is_an_exception_for_requests(faulty):
    for path, body in (("/dm/service", dm_recommend(uid="chaos")), ("/dm/data", dm_item("i1", uid="chaos"))):
        with pytest.raises(requests.exceptions.ConnectionError, match="Connection reset by peer"):
            resp = requests.post(faulty.url + path, json=body, timeout=5)
            pytest.fail(f"a reset fault answered HTTP {resp.status_code} {dict(resp.headers)} {resp.content[:200]!r}")
    calm = requests.post(faulty.url + "/dm/service", json=dm_recommend(uid="calm"), timeout=5).json()
    assert calm["code"] == -3  # still serving
    journal = requests.get(faulty.url + "/__admin/journal", timeout=5).json()["entries"]
    assert [e["scenario"][0]["fault"] for e in journal if e["scenario"]] == ["reset", "reset"]


def test_serve_fault_timeout_then_closes_without_an_answer(faulty):
    # held, then closed without a byte: requests says the remote end closed the connection without a response
    started = time.monotonic()
    with pytest.raises(requests.exceptions.ConnectionError, match="without response"):
        resp = requests.post(faulty.url + "/dm/service", json=dm_recommend(uid="hang"), timeout=5)
        pytest.fail(f"a timeout fault answered HTTP {resp.status_code} {resp.content[:200]!r} after "
                    f"{time.monotonic() - started:.2f} s")
    assert time.monotonic() - started >= 1.0  # held for timeout_ms first


def test_serve_other_faults(faulty):
    started = time.monotonic()
    with pytest.raises(requests.exceptions.Timeout):
        requests.post(faulty.url + "/dm/service", json=dm_recommend(uid="hang"), timeout=0.3)
    assert time.monotonic() - started < 1.0
    resp = requests.post(faulty.url + "/dm/service", json=dm_recommend(uid="mangle"), timeout=5)
    assert resp.status_code == 200 and resp.content
    with pytest.raises(ValueError):
        json.loads(resp.content)
    resp = requests.post(faulty.url + "/dm/service", json=dm_recommend(uid="void"), timeout=5)
    assert resp.status_code == 200 and resp.content == b""
    journal = requests.get(faulty.url + "/__admin/journal", timeout=5).json()["entries"]
    assert [e["scenario"][0]["fault"] for e in journal] == ["timeout", "malformed", "empty"]


def test_serve_refuses_a_bad_scenario(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(BAD, encoding="utf-8")
    done = run("serve", "--port", str(free_port()), "--scenario", str(path), timeout=60)
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{path}:5:" in done.stderr and "cdoe" in done.stderr


def test_serve_several_scenarios_first_loaded_wins(served, tmp_path):
    (tmp_path / "first.yaml").write_text("name: first\nrules:\n  - when: {match: {uid: both}}\n    then: {code: -1, msg: first}\n")
    server = served("--scenario", "first.yaml", "--scenario", "errors.yaml", "--seed", "3")
    reply, _ = server.wait_until(lambda: requests.post(server.url + "/dm/service", json=dm_recommend(uid="both"),
                                                       timeout=2).json())
    assert reply["msg"] == "first"
    reply = requests.post(server.url + "/dm/service", json=dm_recommend(uid="error-2"), timeout=5).json()
    assert reply["code"] == -2
