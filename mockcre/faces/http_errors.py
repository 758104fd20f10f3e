"""The JSON error envelope of every answer outside the two dialects (400, 401, 403, 404, 405, 413, 500, 502).

The API's own protocol errors are the dialects' envelopes (HTTP 200, code -1/-2/-3); everything
else a client, browser or admin script can meet is this one shape, never an HTML page.
"""

from __future__ import annotations

import json

from werkzeug.exceptions import HTTPException
from werkzeug.http import HTTP_STATUS_CODES

CONTENT_TYPE = "application/json"


def error_body(status: int, message: str, **extra) -> dict:
    return {"error": HTTP_STATUS_CODES.get(status, "Unknown"), "status": status, "message": message, **extra}


def error_bytes(status: int, message: str, **extra) -> bytes:
    return json.dumps(error_body(status, message, **extra), ensure_ascii=False).encode("utf-8")


def status_line(status: int) -> str:
    return f"{status} {HTTP_STATUS_CODES.get(status, 'Unknown')}"


def install(app) -> None:
    """Answer Werkzeug's HTTP errors and any unexpected exception of ``app`` with the envelope."""

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        response = exc.get_response()  # keeps what Werkzeug set, such as Allow on a 405
        response.set_data(error_bytes(exc.code, exc.description))
        response.content_type = CONTENT_TYPE
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):  # never an HTML page or a traceback to the client
        app.logger.exception("mockcre: unexpected error")
        return error_body(500, "mockcre failed; see the server log"), 500
