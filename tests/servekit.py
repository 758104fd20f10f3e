"""Helpers for the tests that run ``mockcre`` as a user does: a real process, a real port, real signals.

``mockcre serve`` is one process with one asyncio loop; a server is started in a session of its own
and :meth:`ServeProcess.close` kills the whole group: a hanging or failed test can never leave a
server behind.
Output goes to files, never to a pipe, so a chatty server cannot block on a full pipe.
Every wait is bounded; everything talks to 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import http.client
import os
import queue
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from httpkit import free_port


def mockcre_command() -> list[str]:
    """The ``mockcre`` console script of this interpreter's environment (else ``python -m mockcre``)."""
    script = Path(sys.executable).parent / "mockcre"
    if script.exists():
        return [str(script)]
    found = shutil.which("mockcre")
    return [found] if found else [sys.executable, "-m", "mockcre"]


def run_cli(*args: str, timeout: float = 60, cwd=None) -> subprocess.CompletedProcess:
    """A mockcre command that ends by itself: output captured as text, no stdin, bounded by ``timeout``."""
    return subprocess.run(mockcre_command() + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, cwd=cwd)


def alive(pid: int) -> bool:
    """``pid`` exists and is not a zombie (a killed process stays in /proc until its parent reaps it)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return False
    return stat[stat.rindex(b")") + 2:][:1] != b"Z"


def kill_group(proc: subprocess.Popen, timeout: float = 10) -> None:
    """SIGKILL ``proc``'s process group (it leads one: started with ``start_new_session``) and reap it."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=timeout)


class ServeProcess:
    """``mockcre serve --port PORT ARGS`` on a free 127.0.0.1 port, in a session of its own.

    Ready (``GET /__admin/health`` answered 200) when the constructor returns, unless ``wait=False``;
    stdout and stderr go to ``serve-PORT.out`` (or ``proxy-``) and ``.err`` in ``workdir``. :meth:`request` is plain
    ``http.client`` on a fresh connection; subclasses add what their tests need.
    """

    command = "serve"  # or "proxy", which answers the same health check
    timeout = 30.0  # seconds for one request
    start_within = 15.0  # seconds for the health check to answer

    def __init__(self, workdir: Path, *args: str, port: int | None = None, cwd=None, wait: bool = True):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.args = args
        # with --admin-token even the health check needs the token
        self.admin_token = args[args.index("--admin-token") + 1] if "--admin-token" in args else None
        self._out = open(workdir / f"{self.command}-{self.port}.out", "w+", encoding="utf-8")
        self._err = open(workdir / f"{self.command}-{self.port}.err", "w+", encoding="utf-8")
        self.started = time.monotonic()
        self.proc = subprocess.Popen(mockcre_command() + [self.command, "--port", str(self.port), *args],
                                     stdout=self._out, stderr=self._err, stdin=subprocess.DEVNULL,
                                     start_new_session=True, cwd=cwd)
        if wait:
            try:
                self.wait_ready()
            except BaseException:
                self.close()  # nobody else holds it yet
                raise

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def wait_ready(self, within: float | None = None) -> float:
        """Poll the health check until it answers 200 (the process must not exit meanwhile); seconds since start."""
        deadline = time.monotonic() + (self.start_within if within is None else within)
        while True:
            assert self.proc.poll() is None, f"mockcre serve exited {self.proc.returncode}: {self.log()}"
            try:
                if self.request("GET", "/__admin/health", headers=self.admin_headers(), timeout=1)[0] == 200:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "mockcre serve did not start: " + self.log()
            time.sleep(0.05)
        return time.monotonic() - self.started

    def admin_headers(self) -> dict:
        return {"Authorization": f"Bearer {self.admin_token}"} if self.admin_token else {}

    def stdout(self) -> str:
        self._out.flush()
        return Path(self._out.name).read_text(encoding="utf-8", errors="replace")

    def stderr(self) -> str:
        self._err.flush()
        return Path(self._err.name).read_text(encoding="utf-8", errors="replace")

    def log(self) -> str:
        """Everything the server printed: stdout, then stderr."""
        return self.stdout() + self.stderr()

    def connection(self, timeout: float | None = None) -> http.client.HTTPConnection:
        return http.client.HTTPConnection("127.0.0.1", self.port, timeout=self.timeout if timeout is None else timeout)

    def request(self, method: str, path: str, body: bytes | None = None, headers=None, timeout: float | None = None):
        """(status, headers with lower-case names, body) of one request on a connection of its own."""
        conn = self.connection(timeout)
        try:
            self.send(conn, method, path, body, headers or {})
            resp = conn.getresponse()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
        finally:
            conn.close()

    def send(self, conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None, headers: dict) -> None:
        """Put one request on the wire, as ``http.client`` does (Host, Accept-Encoding and Content-Length added)."""
        conn.request(method, path, body, headers)

    def close(self) -> None:
        """Kill the process group (serve is one process with one loop); safe to call twice."""
        kill_group(self.proc)
        self._out.close()
        self._err.close()


@contextlib.contextmanager
def started_servers(cls: type[ServeProcess], workdir: Path):
    """``start(*args, **kwargs)`` makes ``cls(workdir, *args, **kwargs)``; every server it made is closed on exit.

    For factory fixtures: ``with started_servers(Serve, tmp_path) as start: yield start``.
    """
    running: list[ServeProcess] = []

    def start(*args, **kwargs) -> ServeProcess:
        server = cls(workdir, *args, **kwargs)
        running.append(server)
        return server

    try:
        yield start
    finally:
        for server in running:
            server.close()


READY = re.compile(r"^mockcre ready on (http.+)$")


def start_serve(cwd, *args: str, env=None) -> subprocess.Popen:
    """``mockcre serve ARGS`` as a plain process with its output on a pipe, as a Maven or npm run starts it
    (its own session: :func:`kill_group` stops it and its worker)."""
    return subprocess.Popen([*mockcre_command(), "serve", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True, env=env)


def ready_line(proc: subprocess.Popen, within: float = 30) -> str:
    """The URL(s) of the ready line, read line by line as a test runner's process reader does (in a thread,
    so a server that never says it is ready fails the test after ``within`` seconds instead of hanging it)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in iter(proc.stdout.readline, "")] + [lines.put("")],
                     daemon=True).start()
    deadline = time.monotonic() + within
    seen = []
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        seen.append(line)
        found = READY.match(line.rstrip("\n"))
        if found:
            return found.group(1)
        assert line, "serve ended before its ready line: " + "".join(seen)
    raise AssertionError("no ready line within the time: " + "".join(seen))
