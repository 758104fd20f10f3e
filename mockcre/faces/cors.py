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


class Cors:
    """WSGI in front of the app: answers preflights on API paths and adds CORS headers to API replies.

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
        allowed = not self.config.cors_origins or origin.lower() in self.config.cors_origins
        granted = [("Access-Control-Allow-Origin", origin)] if allowed else []
        granted.append(("Vary", "Origin"))
        if environ.get("REQUEST_METHOD") == "OPTIONS":
            return _preflight(environ, start_response, granted, allowed, origin)

        def start_with_cors(status, headers, exc_info=None):  # the proxy's upstream may send CORS headers of its own
            own = [(k, v) for k, v in headers if not k.lower().startswith("access-control-")]
            return start_response(status, own + granted, exc_info)

        return self.wsgi_app(environ, start_with_cors)


def _preflight(environ, start_response, granted: list, allowed: bool, origin: str):
    if not allowed:
        body = json.dumps({"error": "Forbidden", "status": 403,
                           "message": f"origin {origin} may not call this API: the server allows only "
                                      "the origins given with --cors-origin (cors_origins)"}).encode()
        start_response("403 Forbidden", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                                         *granted])
        return [body]
    headers = [*granted, ("Access-Control-Allow-Methods", "POST"), ("Access-Control-Max-Age", MAX_AGE_SECONDS)]
    requested = environ.get("HTTP_ACCESS_CONTROL_REQUEST_HEADERS")
    if requested:
        headers.append(("Access-Control-Allow-Headers", requested))
    if environ.get("HTTP_ACCESS_CONTROL_REQUEST_PRIVATE_NETWORK") == "true":  # Chrome: a public page calling loopback
        headers.append(("Access-Control-Allow-Private-Network", "true"))
    start_response("204 No Content", headers)
    return []
