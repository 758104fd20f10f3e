"""Running the app: ``mockcre serve`` in the foreground, a background thread for tests and the pytest plugin.

Both are the one asyncio core of :mod:`mockcre.faces.core` in this process, so all state lives in one
place and a test meets the same delays and faults as ``mockcre serve``.
"""

from __future__ import annotations

import ipaddress
import socket
import ssl
import sys

from mockcre.common import __version__, memory
from mockcre.common.domain import PATHS
from mockcre.faces.core import Background, Site, run_until_signalled
from mockcre.common.text import plural
from mockcre.faces.tls import Certificates, trust_lines

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


def serve(host: str, port: int, config: dict, out=sys.stdout,
          tls: Certificates | None = None, tls_port: int | None = None) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 2 when it cannot start (a port is taken).

    With ``tls`` the port speaks HTTPS; with ``tls_port`` too, HTTPS is on ``tls_port`` and plain HTTP
    stays on ``port``: two listening sites of one core, so a report sent over HTTP is recommended over HTTPS.
    """
    for taken in (p for p in (port, tls_port) if p is not None and not port_is_free(host, p)):
        sys.stderr.write(f"mockcre serve: cannot listen on {host}:{taken}: the port is already in use\n")
        return EXIT_CANNOT_START
    from mockcre.faces.app import create_app, service_of

    memory.limit_arenas()
    app = create_app(config)  # built once; a bad scenario fails here, cleanly
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
    sites = [Site(host, listen, ssl_context=tls.server_context() if tls is not None else None)]
    if tls_port:
        sites.append(Site(host, port))
    return run_until_signalled(app, sites)


class ThreadedServer:
    """The app on a free 127.0.0.1 port in a background thread (pytest-httpserver style).

    The same asyncio core as ``mockcre serve``, on a loop of its own. ``sock`` serves on a socket bound
    (and listening) beforehand, which is how the pytest plugin shows the URL in its header before the app
    exists. A host other than loopback needs the app's ``admin_token``, as ``mockcre serve`` does;
    :attr:`url` always names a loopback address, so tests reach a server bound to 0.0.0.0 through
    127.0.0.1. ``ssl_context`` (a server context, e.g. ``mockcre.faces.tls.make_local(folder).server_context()``)
    serves HTTPS.
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, sock: socket.socket | None = None,
                 ssl_context: ssl.SSLContext | None = None):
        service = app.extensions.get("mockcre") if hasattr(app, "extensions") else None
        if not is_loopback(host) and not (service is not None and service.config.admin_token):
            raise ValueError(f"ThreadedServer: host {host} exposes the server beyond this machine; the admin API then "
                             "needs an admin token (create_app({'admin_token': T}); clients send Authorization: Bearer T)")
        self.app = app
        if sock is None:  # bound now, so the port is known before start
            sock = socket.create_server((host, port), family=socket.AF_INET6 if ":" in host else socket.AF_INET,
                                        backlog=128)
        self.host, self.port = sock.getsockname()[:2]
        self.scheme = "http" if ssl_context is None else "https"
        self._background = Background(app, [Site(sock=sock, ssl_context=ssl_context)])
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
            self._background.start()
        return self

    def stop(self) -> None:
        if self._started:
            self._background.stop()
        else:
            for site in self._background.sites:
                site.sock.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()
