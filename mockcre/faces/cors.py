"""CORS on the API paths, so an H5 page can report and query from a browser (``serve`` and ``proxy`` alike).

A page that posts ``Content-Type: application/json`` makes the browser ask first (``OPTIONS`` with
``Origin``); without an answer it gives the page "Failed to fetch". Any origin is allowed unless
``cors_origins`` (``--cors-origin``) names some: then others get no CORS headers, as a production
service with an allow-list would treat them. The admin API never gets CORS headers.
"""

from __future__ import annotations

import json
from mockcre.common.domain import PATHS

MAX_AGE_SECONDS = "600"  # how long the browser may reuse a preflight's answer


def granted(config, origin: str) -> list[tuple[str, str]]:
    """The CORS headers an API reply to ``origin`` carries (none but ``Vary`` for an origin not allowed)."""
    allowed = not config.cors_origins or origin.lower() in config.cors_origins
    return [("Access-Control-Allow-Origin", origin), ("Vary", "Origin")] if allowed else [("Vary", "Origin")]


def preflight(config, origin: str, granted_headers: list, request_headers) -> tuple[int, list, bytes]:
    """The answer to a preflight (``OPTIONS`` with ``Origin``): status, headers and body.

    ``request_headers`` is any mapping with ``get`` by header name (aiohttp's, or :class:`_EnvironHeaders`).
    """
    if len(granted_headers) == 1:  # only Vary: the origin is not allowed
        body = json.dumps({"error": "Forbidden", "status": 403,
                           "message": f"origin {origin} may not call this API: the server allows only "
                                      "the origins given with --cors-origin (cors_origins)"}).encode()
        return 403, [("Content-Type", "application/json"), *granted_headers], body
    headers = [*granted_headers, ("Access-Control-Allow-Methods", "POST"), ("Access-Control-Max-Age", MAX_AGE_SECONDS)]
    requested = request_headers.get("Access-Control-Request-Headers")
    if requested:
        headers.append(("Access-Control-Allow-Headers", requested))
    if request_headers.get("Access-Control-Request-Private-Network") == "true":  # Chrome: a public page calling loopback
        headers.append(("Access-Control-Allow-Private-Network", "true"))
    return 204, headers, b""


class _EnvironHeaders:
    """``get`` by header name over a WSGI environ."""

    def __init__(self, environ):
        self.environ = environ

    def get(self, name: str):
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))


class Cors:
    """WSGI in front of the app: answers preflights on API paths and adds CORS headers to API replies
    (the same decisions :mod:`mockcre.faces.core` makes on its loop).

    Reads ``config.cors_origins`` on every request, so a pytest marker can change it between tests.
    """

    def __init__(self, config, wsgi_app):
        self.config = config
        self.api_paths = PATHS
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        origin = environ.get("HTTP_ORIGIN")
        if origin is None or environ.get("PATH_INFO", "") not in self.api_paths:
            return self.wsgi_app(environ, start_response)
        granted_headers = granted(self.config, origin)
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            status, headers, body = preflight(self.config, origin, granted_headers, _EnvironHeaders(environ))
            start_response(f"{status} {'Forbidden' if status == 403 else 'No Content'}",
                           [*headers, ("Content-Length", str(len(body)))] if body else headers)
            return [body] if body else []

        def start_with_cors(status, headers, exc_info=None):  # the proxy's upstream may send CORS headers of its own
            own = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, own + granted_headers, exc_info)

        return self.wsgi_app(environ, start_with_cors)
