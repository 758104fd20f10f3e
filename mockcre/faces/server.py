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
import ssl
import sys
import threading
from dataclasses import dataclass
from functools import partial
from typing import Callable

from werkzeug.serving import WSGIRequestHandler

from mockcre.common import __version__, memory
from mockcre.common.domain import PATHS
from mockcre.common.text import plural
from mockcre.faces.tls import Certificates, granian_options, trust_lines

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
        # granian copies os.environ into every request's WSGI environ: a server variable such as HTTP_PROXY
        # would read as a request header (and be journaled as one)
        for name in [n for n in os.environ if n.startswith("HTTP_") or n in ("CONTENT_TYPE", "CONTENT_LENGTH")]:
            del os.environ[name]
        if self.after_fork is not None:
            self.after_fork(self.app)
        return self.app


def run_granian(handoff: WorkerHandoff, host: str, port: int, threads: int, tls: Certificates | None = None) -> None:
    """Serve ``handoff.app`` in one granian worker until SIGINT or SIGTERM (serve and proxy alike; HTTPS with ``tls``)."""
    from granian import Granian
    from granian.constants import Interfaces

    Granian("mockcre", interface=Interfaces.WSGI, address=host, port=port, workers=1, blocking_threads=threads,
            log_enabled=False, **granian_options(tls)).serve(target_loader=handoff, wrap_loader=False)


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def base_url(host: str, port: int, secure: bool = False) -> str:
    return f"{'https' if secure else 'http'}://{host if ':' not in host else f'[{host}]'}:{port}"


def serve(host: str, port: int, config: dict, threads: int = SERVER_THREADS, out=sys.stdout,
          tls: Certificates | None = None, tls_port: int | None = None) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 2 when it cannot start (a port is taken).

    With ``tls`` the port speaks HTTPS; with ``tls_port`` too, HTTPS is on ``tls_port`` and plain HTTP
    stays on ``port``, both into one app (see :func:`_start_in_worker`).
    """
    for taken in (p for p in (port, tls_port) if p is not None and not port_is_free(host, p)):
        sys.stderr.write(f"mockcre serve: cannot listen on {host}:{taken}: the port is already in use\n")
        return EXIT_CANNOT_START
    from mockcre.faces.app import create_app, service_of

    memory.limit_arenas()  # before any thread: the forked worker inherits it
    app = create_app({**config, "watch": False})  # built once; a bad scenario fails here, cleanly
    listen = tls_port or port
    base = base_url(host, listen, tls is not None)
    out.write(f"mockcre {__version__} serving both dialects on {base}\n")
    for label, path in ENDPOINT_LINES:
        out.write(f"  {label:<30} {base}{path}\n")
    if tls_port:
        out.write(f"  {'the same over plain HTTP':<30} {base_url(host, port)}/\n")
    for scenario in service_of(app).scenarios.describe():
        loaded = scenario["fixtures"]
        out.write(f"  {'scenario ' + scenario['name']:<30} {plural(loaded['items'], 'item')}, "
                  f"{plural(loaded['actions'], 'action')}, {plural(scenario['rules'], 'rule')} ({scenario['source']})\n")
    if tls is not None and tls.ca_path is not None:
        out.write("\n".join(trust_lines(tls.ca_path, base)) + "\n")
    out.flush()
    after_fork = partial(_start_in_worker, watch=bool(config.get("watch")), plain_door=(host, port) if tls_port else None)
    run_granian(WorkerHandoff(app, os.getpid(), after_fork), host, listen, threads, tls)
    return 0


def _start_in_worker(app, watch: bool, plain_door: tuple | None) -> None:
    """Threads do not survive fork, so these start in granian's worker: the scenario watcher, and with
    ``--tls-port`` plain HTTP on ``--port`` through a thread serving the very same app object.

    granian listens on one address per server, and a second granian would be a second process with a
    store, journal and clock of its own; this door shares them, so a report sent over HTTP is recommended
    over HTTPS. It is Werkzeug's threaded server, slower than granian, which keeps the HTTPS port (the one
    an unchanged client dials) and its TLS handshakes in Rust.
    """
    from mockcre.faces.app import service_of

    if watch:
        service_of(app).scenarios.watch()
    if plain_door is not None:
        ThreadedServer(app, *plain_door).start()


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # the journal records requests; no access log on test output
        pass


class ThreadedServer:
    """The app on a free 127.0.0.1 port in a background thread (pytest-httpserver style).

    Quiet: no access log, and connection errors go to the ``mockcre.faces.server`` logger at debug level
    instead of stderr. ``sock`` serves on a socket bound (and listening) beforehand, which is how the
    pytest plugin shows the URL in its header before the app exists. A host other than loopback
    needs the app's ``admin_token``, as ``mockcre serve`` does; :attr:`url` always names a loopback
    address, so tests reach a server bound to 0.0.0.0 through 127.0.0.1. ``ssl_context`` (a server
    context, e.g. ``mockcre.faces.tls.make_local(folder).server_context()``) serves HTTPS.
    """

    class Handler(_QuietHandler):
        def log(self, type, message, *args):  # noqa: A002 - werkzeug's signature
            import logging

            logging.getLogger("mockcre.server").debug("%s: " + message, type, *args)

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None,
                 ssl_context: ssl.SSLContext | None = None):
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
        if ssl_context is not None:
            # Werkzeug's own wrapping shakes hands in the accept loop, where one silent client would hold
            # up every other; unshaken, each connection shakes hands on its first read, in its own thread.
            self._server.socket = ssl_context.wrap_socket(self._server.socket, server_side=True,
                                                          do_handshake_on_connect=False)
            self._server.ssl_context = ssl_context  # wsgi.url_scheme https
        self.scheme = "http" if ssl_context is None else "https"
        self.host, self.port = host, self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"mockcre-server-{self.port}", daemon=True)
        self._started = False

    @property
    def service(self):
        """The :class:`mockcre.pipeline.service.Service` behind the app."""
        return self.app.extensions["mockcre"]

    @property
    def url(self) -> str:
        host = self.host
        if host in ("0.0.0.0", ""):
            host = "127.0.0.1"
        elif host == "::":
            host = "::1"
        return f"{self.scheme}://[{host}]:{self.port}" if ":" in host else f"{self.scheme}://{host}:{self.port}"

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
