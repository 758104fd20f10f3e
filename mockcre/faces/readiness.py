"""``mockcre serve --port 0`` and the ready line: how a test run in any language starts mockcre and finds it.

A Maven, Gradle or npm run starts ``mockcre serve --port 0`` as a plain process, waits for the line
``mockcre ready on URL`` (or for ``--port-file FILE`` to appear) and then sends its requests. The line
is printed, and the file written, only once the port accepts connections, so nothing has to poll.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
import time
from pathlib import Path

READY_WITHIN_SECONDS = 60.0  # a server not listening by then has failed; serve itself reports why


def chosen_ports(host: str, *ports: int | None) -> list[int | None]:
    """``ports`` with each 0 replaced by a port free now on ``host`` (the OS picks them, all different; the
    server binds them again at once). ``None`` (a door not asked for) stays ``None``."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with contextlib.ExitStack() as probes:  # held open together, so two zeros get two ports
        chosen = []
        for port in ports:
            if port == 0:
                probe = probes.enter_context(socket.socket(family, socket.SOCK_STREAM))
                probe.bind((host, 0))
                port = probe.getsockname()[1]
            chosen.append(port)
    return chosen


def announce_when_listening(host: str, port: int, tls_port: int | None, secure: bool, port_file: str | None,
                            out=sys.stdout) -> threading.Thread:
    """In a daemon thread: once every door accepts connections, print the ready line and write ``port_file``."""
    from mockcre.faces.server import base_url

    doors = [(port, secure and tls_port is None)] + ([(tls_port, True)] if tls_port is not None else [])

    def wait_then_announce() -> None:
        deadline = time.monotonic() + READY_WITHIN_SECONDS
        for door, _ in doors:
            while not _accepts(host, door):
                if time.monotonic() > deadline:
                    return
                time.sleep(0.02)
        if port_file:
            _write_atomically(Path(port_file), f"{port}\n")
        out.write("mockcre ready on " + " and ".join(base_url(host, door, https) for door, https in doors) + "\n")
        out.flush()

    thread = threading.Thread(target=wait_then_announce, name="mockcre-ready", daemon=True)
    thread.start()
    return thread


def _accepts(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def _write_atomically(path: Path, text: str) -> None:
    """A reader polling for the file never sees it half written."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)
