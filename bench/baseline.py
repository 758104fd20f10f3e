"""The benchmark's baseline: a bare Flask app with a constant JSON reply, on granian as mockcre serves.

    python bench/baseline.py PORT
"""

from __future__ import annotations

import sys

from flask import Flask
from granian import Granian
from granian.constants import Interfaces

from mockcre.faces.server import SERVER_THREADS


def make() -> Flask:
    app = Flask("baseline")

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.post("/<path:anything>")
    def constant(anything):
        return {"seq_no": "1", "code": "0", "message": "success"}

    return app


if __name__ == "__main__":
    Granian("baseline:make", factory=True, interface=Interfaces.WSGI, address="127.0.0.1", port=int(sys.argv[1]),
            workers=1, blocking_threads=SERVER_THREADS, log_enabled=False).serve()
