"""Running the app: granian for ``mockcre serve``, a background thread for tests and the pytest plugin.

granian (a Rust HTTP server) serves Flask about twice as fast as waitress on two cores; it runs
the app in one worker process, so all state lives in one place. In-process use (the pytest
fixture) wants the app in the test's own process instead, and uses Werkzeug's threaded server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import ssl
import sys
import threading

from werkzeug.serving import WSGIRequestHandler

from mockcre import __version__, memory
from mockcre.tls import Certificates, granian_options, trust_lines

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
CONFIG_ENV = "MOCKCRE_SERVE_CONFIG"
PARENT_ENV = "MOCKCRE_SERVE_PARENT"
PLAIN_DOOR_ENV = "MOCKCRE_SERVE_PLAIN_DOOR"  # [host, port] of plain HTTP beside --tls-port, else empty
_prebuilt = None  # the app serve() built in the parent; granian's forked worker inherits it

ENDPOINT_LINES = (
    ("cre item/action upload", "/upload"),
    ("cre test upload", "/cre_test_upload"),
    ("cre recommendation query", "/query"),
    ("cre test query", "/test-query"),
    ("dm item/action report", "/dm/data"),
    ("dm recommendation", "/dm/service"),
    ("dm real-host root (by Host)", "/"),
    ("admin", "/__admin/"),
)


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


def app_from_env():
    """granian's factory target, run in the worker: the app the parent built (inherited by fork), else a new one."""
    from mockcre.app import create_app, service_of

    if PARENT_ENV in os.environ:
        _die_with_parent(int(os.environ[PARENT_ENV]))
        # Ctrl-C signals the terminal's whole process group, and granian's worker and supervisor then
        # race to shut down (it hung in about 1 start of 3). In a group of its own the worker is only
        # ever stopped by the supervisor, as when the parent alone is signalled.
        os.setpgid(0, 0)
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    config = json.loads(os.environ[CONFIG_ENV])
    if _prebuilt is None:
        app = create_app(config)
    else:
        app = _prebuilt
        if config.get("watch"):  # threads do not survive fork: the watcher starts in the worker
            service_of(app).scenarios.watch()
    _open_plain_door(app)
    return app


def _open_plain_door(app) -> None:
    """With ``--tls-port``: plain HTTP on ``--port`` through a thread of the worker that serves HTTPS.

    granian listens on one address per server, and a second granian would be a second process with a
    store, journal and clock of its own; this door serves the very same app object, so a report sent
    over HTTP is recommended over HTTPS. It is Werkzeug's threaded server, slower than granian, which
    keeps the HTTPS port (the one an unchanged client dials) and its TLS handshakes in Rust.
    """
    door = os.environ.get(PLAIN_DOOR_ENV)
    if door:
        host, port = json.loads(door)
        ThreadedServer(app, host, port).start()


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
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 1 when a port is taken.

    With ``tls`` the port speaks HTTPS; with ``tls_port`` too, HTTPS is on ``tls_port`` and plain HTTP
    stays on ``port``, both into one app (see :func:`_open_plain_door`).
    """
    from granian import Granian
    from granian.constants import Interfaces

    for taken in (p for p in (port, tls_port) if p is not None and not port_is_free(host, p)):
        sys.stderr.write(f"mockcre serve: cannot listen on {host}:{taken}: the port is already in use\n")
        return 1
    from mockcre.app import create_app

    global _prebuilt
    memory.limit_arenas()  # before any thread: the forked worker inherits it
    _prebuilt = create_app({**config, "watch": False})  # built once; a bad scenario fails here, cleanly
    os.environ[CONFIG_ENV] = json.dumps(config)
    os.environ[PARENT_ENV] = str(os.getpid())
    os.environ[PLAIN_DOOR_ENV] = json.dumps([host, port]) if tls_port else ""
    listen = tls_port or port
    base = base_url(host, listen, tls is not None)
    out.write(f"mockcre {__version__} serving both dialects on {base}\n")
    for label, path in ENDPOINT_LINES:
        out.write(f"  {label:<30} {base}{path}\n")
    if tls_port:
        out.write(f"  {'the same over plain HTTP':<30} {base_url(host, port)}/\n")
    if tls is not None and tls.ca_path is not None:
        out.write("\n".join(trust_lines(tls.ca_path, base)) + "\n")
    out.flush()
    Granian("mockcre.server:app_from_env", factory=True, interface=Interfaces.WSGI, address=host, port=listen,
            workers=1, blocking_threads=threads, log_enabled=False, **granian_options(tls)).serve()
    return 0


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # the journal records requests; no access log on test output
        pass


class ThreadedServer:
    """The app on a free 127.0.0.1 port in a background thread (pytest-httpserver style).

    Quiet: no access log, and connection errors go to the ``mockcre.server`` logger at debug level
    instead of stderr. ``sock`` serves on a socket bound (and listening) beforehand, which is how the
    pytest plugin shows the URL in its header before the app exists. A host other than loopback
    needs the app's ``admin_token``, as ``mockcre serve`` does; :attr:`url` always names a loopback
    address, so tests reach a server bound to 0.0.0.0 through 127.0.0.1. ``ssl_context`` (a server
    context, e.g. ``mockcre.tls.make_local(folder).server_context()``) serves HTTPS.
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
        """The :class:`mockcre.service.Service` behind the app."""
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
