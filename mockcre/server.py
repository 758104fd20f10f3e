"""Running the app: granian for ``mockcre serve``, a background thread for tests and the pytest plugin.

granian (a Rust HTTP server) serves Flask about twice as fast as waitress on two cores; it runs
the app in one worker process, so all state lives in one place. In-process use (the pytest
fixture) wants the app in the test's own process instead, and uses Werkzeug's threaded server.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import sys
import threading

from werkzeug.serving import WSGIRequestHandler, make_server

from mockcre import __version__

CONFIG_ENV = "MOCKCRE_SERVE_CONFIG"

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


def app_from_env():
    """granian's factory target: the worker process builds the app from the serve command's settings."""
    from mockcre.app import create_app

    return create_app(json.loads(os.environ[CONFIG_ENV]))


def port_is_free(host: str, port: int) -> bool:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(host: str, port: int, config: dict, threads: int = 16, out=sys.stdout) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 1 when the port is taken."""
    from granian import Granian
    from granian.constants import Interfaces

    if not port_is_free(host, port):
        sys.stderr.write(f"mockcre serve: cannot listen on {host}:{port}: the port is already in use\n")
        return 1
    from mockcre.app import create_app

    create_app(config)  # fail here, in the parent, on a bad scenario or setting: not in the worker
    os.environ[CONFIG_ENV] = json.dumps(config)
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    out.write(f"mockcre {__version__} serving both dialects on {base}\n")
    for label, path in ENDPOINT_LINES:
        out.write(f"  {label:<30} {base}{path}\n")
    out.flush()
    Granian("mockcre.server:app_from_env", factory=True, interface=Interfaces.WSGI, address=host, port=port,
            workers=1, blocking_threads=threads, log_enabled=False).serve()
    return 0


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args, **kwargs):  # the journal records requests; no access log on test output
        pass


class ThreadedServer:
    """The app on a free 127.0.0.1 port in a background thread (pytest-httpserver style)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        self.app = app
        self._server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
        self._server.daemon_threads = True
        self.host, self.port = host, self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="mockcre-server", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "ThreadedServer":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
