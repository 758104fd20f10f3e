"""The Flask app factory: routes for both dialects on one port, JSON errors everywhere."""

from __future__ import annotations

import json
import socket
import struct
import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException

from mockcre.service import Reply, Service

#: HTTP path -> endpoint name (domain.ENDPOINTS); ``POST /`` is dm's real host root.
PATHS = {
    "/upload": "cre.upload",
    "/cre_test_upload": "cre.test_upload",
    "/query": "cre.query",
    "/test-query": "cre.test_query",
    "/dm/data": "dm.data",
    "/dm/service": "dm.service",
    "/": "dm.root",
}


def create_app(config=None) -> Flask:
    """A mockcre app; ``config`` is a mapping of :class:`mockcre.config.Config` fields (or a Config)."""
    service = Service(config)
    if service.config.watch:
        service.scenarios.watch()
    app = Flask("mockcre")
    app.json.ensure_ascii = False
    app.extensions["mockcre"] = service

    for path, endpoint in PATHS.items():
        app.add_url_rule(path, endpoint, _view(service, endpoint), methods=["POST"])

    from mockcre import admin, dashboard

    app.register_blueprint(admin.blueprint, url_prefix="/__admin")
    app.register_blueprint(dashboard.blueprint, url_prefix="/__admin")

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        response = exc.get_response()  # keeps what Werkzeug set, such as Allow on a 405
        response.set_data(json.dumps({"error": exc.name, "status": exc.code, "message": exc.description}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # never an HTML page or a traceback to the client
        app.logger.exception("mockcre: unexpected error")
        return {"error": "Internal Server Error", "status": 500, "message": "mockcre failed; see the server log"}, 500

    return app


def _view(service: Service, endpoint: str):
    def view():
        limit = service.config.max_body_bytes
        raw = request.stream.read(limit + 1)  # a body over the limit is refused, never read whole
        reply = service.handle(endpoint, raw, request.headers.items(), request.host)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.fault:
            return _break_connection(reply)
        return Response(reply.body, reply.status, list(reply.headers))

    view.__name__ = endpoint.replace(".", "_")
    return view


def _break_connection(reply: Reply) -> Response:
    """A scenario fault: end the connection without an answer (after holding it, for a timeout).

    Werkzeug's server hands over its socket, which is shut down with SO_LINGER 0 so the client
    sees the connection drop; other servers (granian) abort the connection when the body raises.
    Either way the client gets a connection error, not a reply.
    """
    if reply.hold:
        time.sleep(reply.hold)
    sock = request.environ.get("werkzeug.socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        sock.shutdown(socket.SHUT_RDWR)  # also ends keep-alive, so the server thread lets go at once

    def aborted():
        raise ConnectionAbortedError(f"mockcre scenario fault: {reply.fault}")
        yield b""  # a generator, so the error comes while the body is sent

    # A declared length the body never delivers: granian would otherwise end an empty chunked body cleanly.
    return Response(aborted(), 200, [("Content-Type", "application/json"), ("Content-Length", "64")])


def service_of(app: Flask) -> Service:
    return app.extensions["mockcre"]
