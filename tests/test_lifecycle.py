"""Starting and stopping leaves nothing behind: no thread, no open file, no ResourceWarning; the scenario
watcher sees an edit from OS file events and stops when asked."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

import requests

from httpkit import cre_query
from mockcre.testing import MockcreServer

SCENARIO = "name: live\nrules:\n  - when: {endpoint: cre.query}\n    then: {code: \"-3\", message: %s}\n"

HANDLE_RUN = textwrap.dedent("""
    import gc, os, sys, threading
    import requests
    from mockcre.testing import MockcreServer

    folder = sys.argv[1]
    scenario = os.path.join(folder, "live.yaml")
    with open(scenario, "w") as f:
        f.write({scenario!r} % "first")
    before = set(threading.enumerate())
    with MockcreServer(scenario=scenario, allow_violations=True, watch=True,
                       journal_file=os.path.join(folder, "journal.jsonl"),
                       state_file=os.path.join(folder, "state.sqlite")) as mock:
        with requests.Session() as session:
            session.post(mock.url + "/query", json={{"user_id": "u1"}}, timeout=10)
        assert any(t.name == "mockcre-watch" for t in threading.enumerate())
    gc.collect()
    left = [t.name for t in set(threading.enumerate()) - before if t.is_alive()]
    assert not left, left
    files = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            files.append(os.readlink(f"/proc/self/fd/{{fd}}"))
        except FileNotFoundError:  # the listing's own descriptor, closed already
            pass
    mine = [f for f in files if f.startswith(folder)]
    assert not mine, mine
    print("clean")
""").format(scenario=SCENARIO)


def test_the_handle_stops_with_no_thread_no_open_file_and_no_resource_warning(tmp_path):
    script = tmp_path / "run_handle.py"
    script.write_text(HANDLE_RUN)
    done = subprocess.run([sys.executable, "-X", "dev", "-W", "error::ResourceWarning", str(script), str(tmp_path)],
                          capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert done.returncode == 0 and done.stdout.strip() == "clean", done.stdout + done.stderr
    assert "ResourceWarning" not in done.stderr and "Exception ignored" not in done.stderr, done.stderr


def test_the_watcher_reloads_an_edit_from_file_events_and_stops(tmp_path):
    path = tmp_path / "live.yaml"
    path.write_text(SCENARIO % "first")
    with MockcreServer(scenario=path, watch=True, allow_violations=True) as mock:
        def message() -> str:
            return requests.post(mock.url + "/query", json=cre_query(user_id="u1"), timeout=10).json()["message"]

        assert message() == "first"
        path.write_text(SCENARIO % "second")
        deadline = time.monotonic() + 5
        while message() != "second" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert message() == "second"
        path.write_text("name: live\nrules: [{when: {}, then: {}}]\n")  # no longer lints: the loaded one stays
        time.sleep(0.5)
        assert message() == "second"
        watcher = mock.service.scenarios._watcher
        assert watcher is not None and watcher.is_alive()
        started = time.monotonic()
        mock.service.scenarios.stop_watching()
        assert not watcher.is_alive() and time.monotonic() - started < 2
