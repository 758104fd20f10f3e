"""The Flask app factory: routes for both dialects on one port, JSON errors everywhere."""

from __future__ import annotations

import time

from flask import Flask
from werkzeug.exceptions import HTTPException
from werkzeug.wsgi import get_input_stream

from mockcre.faces.cors import Cors
from mockcre.common.domain import PATHS
from mockcre.pipeline.service import Reply, Service
from mockcre.faces import http_errors


def create_app(config=None) -> Flask:
    """A mockcre app; ``config`` is a mapping of :class:`mockcre.pipeline.config.Config` fields (or a Config)."""
    service = Service(config)
    if service.config.watch:
        service.scenarios.watch()
    app = Flask("mockcre")
    app.json.ensure_ascii = False
    app.url_map.merge_slashes = False  # Werkzeug would answer "//x" with an HTML redirect page; here it is a JSON 404
    app.url_map.strict_slashes = False  # and "/__admin" the same as "/__admin/", without a redirect
    app.extensions["mockcre"] = service
    app.wsgi_app = Cors(service.config, ApiRoutes(service, app.wsgi_app))
    app.extensions["mockcre.api_chain"] = app.wsgi_app  # while unwrapped, mockcre.faces.core answers the API itself

    from mockcre.faces import admin, dashboard

    app.register_blueprint(admin.blueprint, url_prefix="/__admin")
    app.register_blueprint(dashboard.blueprint, url_prefix="/__admin")

    http_errors.install(app)
    return app


class ApiRoutes:
    """WSGI in front of Flask: the API's paths go straight to the Service, everything else to Flask.

    A server answers the API on its asyncio loop (:mod:`mockcre.faces.core`); this is the same
    pipeline for WSGI callers: Flask's test client, or a server whose app a test wrapped.

    The API is a flat table of POST paths, and Flask's request machinery (context, routing,
    response objects) cost as much as answering a recommendation; the admin pages and the
    dashboard keep it. Other methods on an API path get the JSON 405 Flask would give.
    """

    def __init__(self, service: Service, flask_wsgi):
        self.service = service
        self.flask_wsgi = flask_wsgi

    def __call__(self, environ, start_response):
        endpoint = PATHS.get(environ.get("PATH_INFO", ""))
        if endpoint is None:
            return self.flask_wsgi(environ, start_response)
        if environ.get("REQUEST_METHOD") != "POST":
            return _json_error(start_response, 405, "The method is not allowed for the requested URL.", [("Allow", "POST")])
        try:
            limit = self.service.config.max_body_bytes + 1  # over the limit: never read whole
            length = environ.get("CONTENT_LENGTH", "")
            # with a length, read what arrives: decode_transport names a body cut short (Werkzeug would raise)
            raw = environ["wsgi.input"].read(min(int(length), limit)) if length.isdigit() else get_input_stream(environ).read(limit)
        except HTTPException as exc:  # e.g. the client went away mid-body
            return _json_error(start_response, exc.code, exc.description)
        reply = self.service.handle(endpoint, raw, _headers(environ), environ.get("HTTP_HOST", ""))
        if reply.delay:
            time.sleep(reply.delay)
        if reply.fault:
            return _break_connection(environ, start_response, reply)
        start_response(http_errors.status_line(reply.status),
                       [*reply.headers, ("Content-Length", str(len(reply.body)))])
        return [reply.body]


_CONTENT_HEADERS = {"CONTENT_TYPE": "Content-Type", "CONTENT_LENGTH": "Content-Length"}
_CONTENT_DUPLICATES = ("HTTP_CONTENT_TYPE", "HTTP_CONTENT_LENGTH")


def _headers(environ) -> list[tuple[str, str]]:
    """The request's headers exactly as Werkzeug's EnvironHeaders lists them, at a fraction of its cost
    (its iteration was 8 % of a /query in a profile)."""
    found = []
    for key, value in environ.items():
        if key.startswith("HTTP_"):
            if key not in _CONTENT_DUPLICATES:
                found.append((key[5:].replace("_", "-").title(), value))
        elif key in _CONTENT_HEADERS and value:
            found.append((_CONTENT_HEADERS[key], value))
    return found


def _json_error(start_response, status: int, message: str, headers=()):
    data = http_errors.error_bytes(status, message)
    start_response(http_errors.status_line(status),
                   [("Content-Type", http_errors.CONTENT_TYPE), ("Content-Length", str(len(data))), *headers])
    return [data]


def _break_connection(environ, start_response, reply: Reply):
    """A scenario fault through WSGI: the body raises, after holding the connection for a timeout.

    mockcre.faces.core turns the error into a reset of the connection; the loop's own path (the usual
    one) carries out each fault exactly instead.
    """
    if reply.hold:
        time.sleep(reply.hold)

    def aborted():
        raise ConnectionAbortedError(f"mockcre scenario fault: {reply.fault}")
        yield b""  # a generator, so the error comes while the body is sent

    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", "64")])
    return aborted()


def service_of(app: Flask) -> Service:
    return app.extensions["mockcre"]
