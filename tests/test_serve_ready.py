"""``mockcre serve --port 0``, the ready line and ``--port-file``: how a Maven, Gradle or npm run starts mockcre.

A real ``mockcre serve`` process each time, found by what it prints or writes, as a test run in another
language finds it; every wait is bounded.
"""

from __future__ import annotations


import requests

from httpkit import TIMEOUT, free_port
from servekit import kill_group, ready_line, run_cli, start_serve

def test_port_0_takes_a_free_port_prints_it_once_listening_and_writes_the_port_file(tmp_path):
    proc = start_serve(tmp_path, "--port", "0", "--port-file", "port.txt")
    try:
        url = ready_line(proc)
        port = int((tmp_path / "port.txt").read_text())
        assert url == f"http://127.0.0.1:{port}" and port not in (0, 8088)
        assert requests.get(url + "/__admin/health", timeout=TIMEOUT).json() == {"status": "ok"}  # listening already
        assert not list(tmp_path.glob("*.partial"))
    finally:
        kill_group(proc)


def test_port_0_with_tls_port_0_names_both_doors(tmp_path):
    proc = start_serve(tmp_path, "--port", "0", "--tls-port", "0")
    try:
        plain, secure = ready_line(proc).split(" and ")
        assert plain.startswith("http://127.0.0.1:") and secure.startswith("https://127.0.0.1:") and plain[7:] != secure[8:]
        assert requests.get(plain + "/__admin/health", timeout=TIMEOUT).status_code == 200
    finally:
        kill_group(proc)


def test_a_taken_port_gives_no_ready_line_and_no_port_file(tmp_path):
    holder = start_serve(tmp_path, "--port", "0")
    try:
        taken = ready_line(holder).rsplit(":", 1)[1]
        done = run_cli("serve", "--port", taken, "--port-file", "port.txt", timeout=30, cwd=tmp_path)
        assert done.returncode == 2 and "already in use" in done.stderr
        assert "ready" not in done.stdout and not (tmp_path / "port.txt").exists()
    finally:
        kill_group(holder)
    assert free_port()  # the port helper still works after the holder is gone
