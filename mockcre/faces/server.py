"""Running the app: granian for ``mockcre serve``, a background thread for tests and the pytest plugin.

granian (a Rust HTTP server) serves Flask about twice as fast as waitress on two cores; it runs
the app in one worker process, so all state lives in one place. In-process use (the pytest
fixture) wants the app in the test's own process instead, and uses Werkzeug's threaded server.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import sys
import threading
from dataclasses import dataclass
from typing import Callable

from werkzeug.serving import WSGIRequestHandler

from mockcre import __version__, memory
from mockcre.domain import PATHS
from mockcre.text import plural

# granian's WSGI threads (started as needed). A request holds one while its body arrives, and granian
# has no body-read timeout, so this many stalled uploads would starve the server; scenario delays and
# timeouts also sleep in them. 48 leaves room over the 32 stalled bodies the reliability tests hold;
# full benchmark runs gave about the same /query throughput with 48 and 128.
SERVER_THREADS = 48
# How long a thread may keep the GIL while another waits for it (Python's default: 5 ms). Every request
# gives the GIL up while granian hands it the body and must win it back; with the default, an unlucky
# one lost that race for several 5 ms turns (p99 14-16 ms at 16 connections, where a bare Flask app that
# reads the body has the same). At 0.75 ms the tail is 8-9 ms for a quarter less throughput.
GIL_SWITCH_SECONDS = 0.00075

EXIT_CANNOT_START = 2  # a flag, a scenario, the port: every reason serve and proxy cannot start (docs: exit codes)

_TITLES = {"cre.upload": "cre item/action upload", "cre.test_upload": "cre test upload", "cre.query": "cre recommendation query",
           "cre.test_query": "cre test query", "dm.data": "dm item/action report", "dm.service": "dm recommendation",
           "dm.root": "dm real-host root (by Host)"}
ENDPOINT_LINES = (*((_TITLES[endpoint], path) for path, endpoint in PATHS.items()), ("admin", "/__admin/"))


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _die_with_parent(parent: int) -> None:
    """A killed ``mockcre serve`` (even kill -9) must not leave its worker holding the port (Linux only)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


@dataclass(frozen=True)
class WorkerHandoff:
    """What the parent hands granian's worker: the app it built (a bad scenario or upstream fails there,
    before anything listens) and what must start after the fork. granian calls it in the worker as its
    target loader; the forked worker inherits the app, so no config travels by environment or global."""

    app: object
    parent: int
    after_fork: Callable[[object], None] | None = None  # threads do not survive fork: start them here

    def __call__(self):
        _die_with_parent(self.parent)
        # Ctrl-C signals the terminal's whole process group, and granian's worker and supervisor then
        # race to shut down (it hung in about 1 start of 3). In a group of its own the worker is only
        # ever stopped by the supervisor, as when the parent alone is signalled.
        os.setpgid(0, 0)
        sys.setswitchinterval(GIL_SWITCH_SECONDS)
        if self.after_fork is not None:
            self.after_fork(self.app)
        return self.app


def run_granian(handoff: WorkerHandoff, host: str, port: int, threads: int) -> None:
    """Serve ``handoff.app`` in one granian worker until SIGINT or SIGTERM (serve and proxy alike)."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian("mockcre", interface=Interfaces.WSGI, address=host, port=port, workers=1, blocking_threads=threads,
            log_enabled=False).serve(target_loader=handoff, wrap_loader=False)


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(host: str, port: int, config: dict, threads: int = SERVER_THREADS, out=sys.stdout) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 2 when it cannot start (the port is taken)."""
    if not port_is_free(host, port):
        sys.stderr.write(f"mockcre serve: cannot listen on {host}:{port}: the port is already in use\n")
        return EXIT_CANNOT_START
    from mockcre.faces.app import create_app, service_of

    memory.limit_arenas()  # before any thread: the forked worker inherits it
    app = create_app({**config, "watch": False})  # built once; a bad scenario fails here, cleanly
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    out.write(f"mockcre {__version__} serving both dialects on {base}\n")
    for label, path in ENDPOINT_LINES:
        out.write(f"  {label:<30} {base}{path}\n")
    for scenario in service_of(app).scenarios.describe():
        loaded = scenario["fixtures"]
        out.write(f"  {'scenario ' + scenario['name']:<30} {plural(loaded['items'], 'item')}, "
                  f"{plural(loaded['actions'], 'action')}, {plural(scenario['rules'], 'rule')} ({scenario['source']})\n")
    out.flush()
    run_granian(WorkerHandoff(app, os.getpid(), _start_watching if config.get("watch") else None), host, port, threads)
    return 0


def _start_watching(app) -> None:
    from mockcre.faces.app import service_of

    service_of(app).scenarios.watch()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # the journal records requests; no access log on test output
        pass


class ThreadedServer:
    """The app on a free 127.0.0.1 port in a background thread (pytest-httpserver style).

    Quiet: no access log, and connection errors go to the ``mockcre.faces.server`` logger at debug level
    instead of stderr. ``sock`` serves on a socket bound (and listening) beforehand, which is how the
    pytest plugin shows the URL in its header before the app exists. A host other than loopback
    needs the app's ``admin_token``, as ``mockcre serve`` does; :attr:`url` always names a loopback
    address, so tests reach a server bound to 0.0.0.0 through 127.0.0.1.
    """

    class Handler(_QuietHandler):
        def log(self, type, message, *args):  # noqa: A002 - werkzeug's signature
            import logging

            logging.getLogger("mockcre.server").debug("%s: " + message, type, *args)

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None):
        from werkzeug.serving import ThreadedWSGIServer

        service = app.extensions.get("mockcre") if hasattr(app, "extensions") else None
        if not is_loopback(host) and not (service is not None and service.config.admin_token):
            raise ValueError(f"ThreadedServer: host {host} exposes the server beyond this machine; the admin API then "
                             "needs an admin token (create_app({'admin_token': T}); clients send Authorization: Bearer T)")

        class Server(ThreadedWSGIServer):
            daemon_threads = True

            def handle_error(self, request, client_address):  # a client hanging up is not news
                import logging

                logging.getLogger("mockcre.server").debug("connection from %s failed", client_address, exc_info=True)

            def log(self, type, message, *args):  # noqa: A002 - to logging, never straight to stderr
                import logging

                level = logging.ERROR if type == "error" else logging.DEBUG
                logging.getLogger("mockcre.server").log(level, message, *args)

        self.app = app
        if sock is not None:
            host, port = sock.getsockname()[:2]
            self._server = Server(host, port, app, self.Handler, fd=sock.fileno())
            sock.close()  # the server holds its own duplicate of the descriptor
        else:
            self._server = Server(host, port, app, self.Handler)
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mockcre-server-{self.port}", daemon=True)
        self._started = False

    @property
    def service(self):
        """The :class:`mockcre.engine.service.Service` behind the app."""
        return self.app.extensions["mockcre"]

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    def start(self) -> "ThreadedServer":
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self) -> None:
        if self._started:
            self._server.shutdown()
            self._thread.join(timeout=5)
        self._server.server_close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
