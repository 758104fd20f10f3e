"""``mockcre proxy``: a validating proxy in front of a real service (or anything that speaks the API).

Every request is forwarded to the upstream as it came (method, path, query, headers, body; only
``Host`` names the upstream and hop-by-hop headers stay on their own hop), and the upstream's
reply goes back to the client untouched: status, reason, headers and bytes. On the way, the
request is judged by the same contracts as ``mockcre serve`` judges it, and the reply by the
reply schemas (plus: HTTP 200, JSON, the request id echoed), and both go into a journal entry
of the usual shape with one more field::

    "upstream": {"url", "status", "reason", "latency_ms", "violations": [...], "error"}

so ``/__admin/journal``, the dashboard, ``/__admin/report`` and ``mockcre report --journal``
work in front of the real service too. Reports the upstream accepted (code 0) are mirrored into
the proxy's store, which the dashboard and the report read. An upstream that does not answer
within ``--upstream-timeout`` seconds, or cannot be reached, becomes the dialect's -2 envelope for
the client and an entry with ``upstream.error``: never a hang.

``--record FILE`` keeps the exchanges as a scenario that ``mockcre serve --scenario FILE``
replays (see :mod:`mockcre.record`).

The proxy runs on granian like ``mockcre serve`` (its own process, its own factory target): the
app is built in the parent, so a bad ``--upstream`` fails before anything listens, and granian's
forked worker inherits it.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import socket
import sys
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from mockcre import __version__, domain
from mockcre.config import Config
from mockcre.contracts import ERROR, WARNING, Violation, check, has_errors, jsonbody
from mockcre.contracts.violations import describe_value
from mockcre.dialects import DIALECTS, for_endpoint
from mockcre.dialects.base import WrongKind
from mockcre.journal import masked_body, masked_headers
from mockcre.service import decode_transport

log = logging.getLogger("mockcre.proxy")

DEFAULT_PORT = 8089
DEFAULT_TIMEOUT = 10.0
MAX_REPLY_BYTES = 64 * 1024 * 1024
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: RFC 9110 7.6.1: meaningful for one connection only, never forwarded (plus what Connection lists).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade"}
#: endpoint -> the schema of its reply; a reply with a code other than 0 is judged as the error envelope.
REPLY_KINDS = {"cre.upload": "upload-response", "cre.test_upload": "upload-response", "cre.query": "query-response",
               "cre.test_query": "query-response", "dm.data": "report-response", "dm.service": "recommend-response"}
ERROR_KINDS = {"cre": "upload-response", "dm": "error-response"}
CONFIG_ENV = "MOCKCRE_PROXY_CONFIG"
_prebuilt = None  # the app serve_proxy built in the parent; granian's forked worker inherits it


@dataclass(frozen=True)
class Upstream:
    scheme: str
    host: str
    port: int
    base_path: str

    @classmethod
    def parse(cls, url: str) -> "Upstream":
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--upstream {url!r}: expected http://HOST[:PORT][/PATH] or https://…")
        if parts.username or parts.password:
            raise ValueError("--upstream: no credentials in the URL, please; the API carries them in the body")
        if parts.query or parts.fragment:
            raise ValueError(f"--upstream {url!r}: no query or fragment; the client's own path and query are appended")
        try:
            port = parts.port or (443 if parts.scheme == "https" else 80)
        except ValueError as exc:
            raise ValueError(f"--upstream {url!r}: {exc}") from exc
        return cls(parts.scheme, parts.hostname, port, parts.path.rstrip("/"))

    @property
    def netloc(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = 443 if self.scheme == "https" else 80
        return host if self.port == default else f"{host}:{self.port}"

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.netloc}{self.base_path}"


@dataclass
class Forwarded:
    """What came back from the upstream: a reply, or ``error`` when none did."""

    status: int | None = None
    reason: str = ""
    headers: list = field(default_factory=list)
    body: bytes = b""
    error: str | None = None
    latency_ms: float = 0.0


@dataclass
class Inspected:
    """The request as the contracts see it."""

    endpoint: str | None
    dialect: str | None = None
    kind: str | None = None
    partition: tuple | None = None
    body: object = None
    violations: list = field(default_factory=list)


class Proxy:
    def __init__(self, upstream: str, config=None, timeout: float = DEFAULT_TIMEOUT, record: str | None = None):
        from mockcre.service import Service

        self.upstream = Upstream.parse(upstream)
        if not timeout > 0:
            raise ValueError(f"--upstream-timeout must be more than 0 seconds; got {timeout}")
        self.timeout = float(timeout)
        self.service = Service(config)  # the journal, store and config the admin API and dashboard read
        self.config: Config = self.service.config
        self.recorder = None
        if record:
            from mockcre.record import Recorder

            self.recorder = Recorder(record, self.upstream.url)

    # -- forwarding ----------------------------------------------------------------------------

    def forward(self, method: str, target: str, headers, raw: bytes) -> Forwarded:
        """Send the request on, unchanged but for Host and hop-by-hop headers; bounded by ``timeout`` overall."""
        started = time.perf_counter()
        deadline = started + self.timeout
        up = self.upstream
        out = Forwarded()
        if up.scheme == "https":
            conn = http.client.HTTPSConnection(up.host, up.port, timeout=self.timeout)
        else:
            conn = http.client.HTTPConnection(up.host, up.port, timeout=self.timeout)
        try:
            conn.putrequest(method, up.base_path + target, skip_host=True, skip_accept_encoding=True)
            listed = {t.strip().lower() for k, v in headers if k.lower() == "connection" for t in v.split(",")}
            sent_length = False
            for name, value in headers:
                low = name.lower()
                if low in HOP_BY_HOP or low in listed or low == "host":
                    continue
                if low == "content-length":
                    sent_length = True
                    continue  # set below from the body actually sent
                conn.putheader(name, value)
            conn.putheader("Host", up.netloc)
            if raw or sent_length or method in ("POST", "PUT", "PATCH"):
                conn.putheader("Content-Length", str(len(raw)))
            conn.endheaders(raw or None)
            sock = conn.sock  # getresponse may hand the socket over to the response
            _remaining(sock, deadline)
            resp = conn.getresponse()
            out.status, out.reason, out.headers = resp.status, resp.reason, resp.getheaders()
            chunks, size = [], 0
            while True:
                _remaining(sock, deadline)
                chunk = resp.read1(65536)
                if not chunk:
                    break
                size += len(chunk)
                if size > MAX_REPLY_BYTES:
                    raise _TooLarge(f"the upstream's reply is over {MAX_REPLY_BYTES:,} bytes")
                chunks.append(chunk)
            if resp.length:  # read1 ends quietly when the upstream hangs up before Content-Length
                raise http.client.IncompleteRead(b"".join(chunks), resp.length)
            out.body = b"".join(chunks)
        except (TimeoutError, socket.timeout):
            out.error = f"no reply from the upstream {up.url} within {self.timeout:g} s (--upstream-timeout)"
        except _TooLarge as exc:
            out.error = str(exc)
        except http.client.IncompleteRead as exc:
            out.error = (f"the upstream {up.url} hung up in the middle of its reply ({len(exc.partial)} bytes read, "
                         f"{exc.expected} more expected)")
        except http.client.RemoteDisconnected:
            out.error = f"the upstream {up.url} closed the connection without a reply"
        except (OSError, http.client.HTTPException) as exc:
            out.error = f"cannot reach the upstream {up.url}: {type(exc).__name__}: {exc}".rstrip(": ")
        except ValueError as exc:  # http.client refuses a target or header it cannot send (control characters)
            out.error = f"cannot forward this request: {exc}"
        finally:
            conn.close()
            out.latency_ms = round((time.perf_counter() - started) * 1000, 3)
        if out.error:
            out.status, out.reason, out.headers, out.body = None, "", [], b""
        return out

    # -- judging ---------------------------------------------------------------------------------

    def inspect(self, endpoint: str, raw: bytes, headers) -> Inspected:
        """The request's violations, dialect, kind and partition, as ``mockcre serve`` would find them."""
        ins = Inspected(endpoint)
        low = {k.lower(): v for k, v in headers}
        decoded, notes = decode_transport(raw, low, self.config.max_body_bytes, self.config.strict)
        ins.violations.extend(notes)
        if decoded is not None:
            ins.body, found = jsonbody.parse(decoded, self.config.max_body_bytes)
            ins.violations.extend(found)
        if endpoint == "dm.root":  # the upstream's host name routes it, as the real dm hosts do
            ins.endpoint = DIALECTS["dm"].route_for_root(self.upstream.host, ins.body)
        adapter = for_endpoint(ins.endpoint)
        ins.dialect = adapter.name
        if has_errors(ins.violations):
            return ins
        if not isinstance(ins.body, dict):
            ins.violations.append(Violation("", f"body: expected a JSON object; got {describe_value(ins.body)}",
                                            ERROR, "schema.type"))
            return ins
        route = adapter.routes[ins.endpoint]
        try:
            ins.kind = adapter.kind_for(route, ins.body)
        except WrongKind as exc:
            ins.violations.append(Violation(exc.path, str(exc), ERROR, "endpoint-kind"))
            return ins
        ins.violations.extend(check(ins.body, adapter.name, ins.kind, self.config.strict, now=self.config.clock()).violations)
        if not has_errors(ins.violations):
            ins.partition = adapter.partition_key(route, ins.body)
        return ins

    def judge_reply(self, ins: Inspected, fwd: Forwarded):
        """``(parsed reply or None, text, violations)`` of the upstream's reply to an API request."""
        found = []
        if fwd.status != 200:
            found.append(Violation("", f"HTTP {fwd.status} {fwd.reason}: the service answers every request with "
                                       "HTTP 200, protocol errors in the dialect's envelope", ERROR, "reply.http-status"))
        headers = {k.lower(): v for k, v in fwd.headers}
        data, problem = _decompressed(fwd.body, headers.get("content-encoding", ""))
        if problem:
            found.append(Violation("", problem, ERROR, "reply.encoding"))
            return None, fwd.body.decode("utf-8", "replace"), found
        ctype = headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype != "application/json" and not ctype.endswith("+json"):
            found.append(Violation("", f"reply Content-Type is {ctype or 'missing'}; the API answers application/json",
                                   WARNING, "reply.content-type"))
        text = data.decode("utf-8", "replace")
        parsed, problems = jsonbody.parse(data, MAX_REPLY_BYTES)
        if has_errors(problems):
            found.extend(Violation(v.path, "reply: " + v.message, v.severity, v.rule) for v in problems)
            return None, text, found
        found.extend(problems)
        adapter = DIALECTS[ins.dialect]
        if not isinstance(parsed, dict):
            found.append(Violation("", f"reply: expected a JSON object; got {describe_value(parsed)}", ERROR, "schema.type"))
            return parsed, text, found
        code = parsed.get("code")
        kind = ERROR_KINDS[ins.dialect] if code is not None and str(code) != "0" else REPLY_KINDS[ins.endpoint]
        # Replies are held to the strict contract: lenient mode forgives clients, not the service.
        found.extend(check(parsed, ins.dialect, kind, True, now=self.config.clock()).violations)
        sent = adapter.echo(ins.body)
        if sent is not None and parsed.get(adapter.echo_field) != sent:
            got = parsed.get(adapter.echo_field, "nothing")
            found.append(Violation(f"/{adapter.echo_field}", f"{adapter.echo_field}: the reply must echo the request's "
                                   f"{adapter.echo_field} {json.dumps(sent, ensure_ascii=False)} (原样返回); got "
                                   f"{json.dumps(got, ensure_ascii=False)}", ERROR, "reply.echo"))
        return parsed, text, found

    # -- one request -------------------------------------------------------------------------------

    def handle(self, method: str, target: str, path: str, raw: bytes, headers) -> tuple[str, list, bytes]:
        """``(status line, headers, body)`` for the client, after forwarding; every request is journaled."""
        from mockcre.app import PATHS

        started = time.perf_counter()
        headers = list(headers)
        endpoint = PATHS.get(path) if method == "POST" else None
        if endpoint is None:
            return self._other(method, target, path, raw, headers, started)
        ins = self.inspect(endpoint, raw, headers)
        adapter = DIALECTS[ins.dialect]
        limit = self.config.max_body_bytes
        if len(raw) > limit:  # read no further than the limit, so it cannot be forwarded whole
            fwd = Forwarded(error=f"not forwarded: the body is over {limit:,} bytes (--max-body-bytes)")
        else:
            fwd = self.forward(method, target, headers, raw)
        upstream = {"url": self.upstream.url + target, "status": fwd.status, "reason": fwd.reason,
                    "latency_ms": fwd.latency_ms, "violations": [], "error": fwd.error}
        if fwd.error:
            echo = adapter.echo(ins.body)
            if len(raw) > limit:
                reply = adapter.error(echo, domain.CODE_FORMAT_ERROR, f"format error (格式错误): {fwd.error}")
            else:
                reply = adapter.error(echo, domain.CODE_SYSTEM_ERROR, f"system error (系统错误): {fwd.error}")
            answer = ("200 OK", [("Content-Type", "application/json; charset=utf-8")],
                      json.dumps(reply, ensure_ascii=False).encode("utf-8"))
            parsed, text = reply, None
        else:
            parsed, text, reply_violations = self.judge_reply(ins, fwd)
            upstream["violations"] = [v.to_dict() for v in reply_violations]
            reply = parsed if isinstance(parsed, dict) else {"raw": text}
            answer = (_status_line(fwd), fwd.headers, fwd.body)
        self._mirror(ins, parsed)
        self._journal(ins, headers, reply, upstream, started)
        if self.recorder is not None:
            self.recorder.add(self._observed(ins, fwd, parsed, text, reply))
        return answer

    def _other(self, method, target, path, raw, headers, started) -> tuple[str, list, bytes]:
        """A request outside the API (another path or method): forwarded and journaled, judged only as that."""
        from mockcre.app import PATHS

        if path in PATHS:
            message = f"{method} {path}: the endpoint takes POST only"
            rule = "http.method"
        else:
            message = f"{method} {path} is not an endpoint of either dialect (cre: /upload, /query…; dm: POST /)"
            rule = "http.path"
        limit = self.config.max_body_bytes
        too_large = len(raw) > limit
        if too_large:
            fwd = Forwarded(error=f"not forwarded: the body is over {limit:,} bytes (--max-body-bytes)")
        else:
            fwd = self.forward(method, target, headers, raw)
        body, _ = jsonbody.parse(raw, limit) if raw and not too_large else (None, [])
        upstream = {"url": self.upstream.url + target, "status": fwd.status, "reason": fwd.reason,
                    "latency_ms": fwd.latency_ms, "violations": [], "error": fwd.error}
        if fwd.error:
            status, title = (413, "Payload Too Large") if too_large else (502, "Bad Gateway")
            error = {"error": title, "status": status, "message": fwd.error}
            answer = (f"{status} {title.upper()}", [("Content-Type", "application/json")], json.dumps(error).encode())
            reply = error
        else:
            answer = (_status_line(fwd), fwd.headers, fwd.body)
            try:
                reply = json.loads(fwd.body)
            except ValueError:
                reply = None
            if not isinstance(reply, dict):
                reply = {"raw": fwd.body[:4096].decode("utf-8", "replace")}
        ins = Inspected(None, body=body, violations=[Violation("", message, ERROR, rule)])
        self._journal(ins, headers, reply, upstream, started)
        return answer

    def _journal(self, ins: Inspected, headers, reply, upstream: dict, started: float) -> None:
        self.service.journal.record({  # the entry of Service._record, plus "upstream"
            "time": self.config.clock(),
            "endpoint": ins.endpoint,
            "dialect": ins.dialect,
            "kind": ins.kind,
            "partition": list(ins.partition) if ins.partition else None,
            "headers": masked_headers(headers),
            "body": masked_body(ins.body),
            "violations": [v.to_dict() for v in ins.violations],
            "scenario": [],
            "reply": reply,
            "latency_ms": round((time.perf_counter() - started) * 1000, 3),
            "upstream": upstream,
        })

    def _mirror(self, ins: Inspected, parsed) -> None:
        """A report the upstream accepted goes into the proxy's store too (the dashboard and report read it)."""
        if ins.kind not in ("item", "action") or ins.partition is None or not isinstance(parsed, dict):
            return
        if str(parsed.get("code")) != "0":
            return
        adapter, now, store = DIALECTS[ins.dialect], int(self.config.clock()), self.service.store
        try:
            with store.lock:
                part = store.partition(ins.partition)
                if ins.kind == "item":
                    for item in adapter.items(ins.body, now):
                        part.upsert(item)
                else:
                    for action, counter in adapter.actions(ins.body, now):
                        part.add(action, counter)
        except Exception:  # the store is a view for the dashboard; the exchange itself went through
            log.exception("mockcre proxy: cannot mirror a report into the store")

    def _observed(self, ins: Inspected, fwd: Forwarded, parsed, text, reply):
        """What the recorder keeps, or None for a request a replaying mock would answer itself (-1)."""
        from mockcre.record import Observed

        if ins.kind is None or not isinstance(ins.body, dict):
            return None
        lenient = ins.violations if not self.config.strict else \
            check(ins.body, ins.dialect, ins.kind, False, now=self.config.clock()).violations
        if has_errors(lenient):
            return None
        if fwd.error:
            return Observed(ins.endpoint, ins.kind, ins.dialect, ins.body, 200, "application/json", reply,
                            "upstream failed")
        ctype = next((v for k, v in fwd.headers if k.lower() == "content-type"), None)
        body = parsed if isinstance(parsed, (dict, list)) else text  # a bare JSON string is replayed as its text
        return Observed(ins.endpoint, ins.kind, ins.dialect, ins.body, fwd.status, ctype, body)


class _TooLarge(Exception):
    pass


def _remaining(sock, deadline: float) -> None:
    left = deadline - time.perf_counter()
    if left <= 0:
        raise TimeoutError("deadline passed")
    if sock is not None:
        sock.settimeout(left)


def _status_line(fwd: Forwarded) -> str:
    return f"{fwd.status} {fwd.reason}".strip() if fwd.reason else str(fwd.status)


def _decompressed(data: bytes, encoding: str):
    encoding = encoding.strip().lower()
    if encoding not in ("gzip", "deflate", "x-gzip"):
        return data, None
    try:
        inflater = zlib.decompressobj(wbits=31 if encoding != "deflate" else 15)
        out = inflater.decompress(data, MAX_REPLY_BYTES + 1)
    except zlib.error as exc:
        return data, f"reply Content-Encoding: {encoding} but the body does not decompress ({exc})"
    return out, None


# -- the Flask app -------------------------------------------------------------------------------


def create_proxy_app(upstream: str, config=None, timeout: float = DEFAULT_TIMEOUT, record: str | None = None):
    """A Flask app that proxies to ``upstream``, with the admin API and dashboard of ``mockcre serve``."""
    from flask import Flask, Response, redirect, request
    from werkzeug.exceptions import HTTPException, NotFound

    from mockcre import admin, dashboard

    proxy = Proxy(upstream, config, timeout, record)
    app = Flask("mockcre.proxy")
    app.json.ensure_ascii = False
    app.extensions["mockcre"] = proxy.service
    app.extensions["mockcre.proxy"] = proxy
    app.register_blueprint(admin.blueprint, url_prefix="/__admin")
    app.register_blueprint(dashboard.blueprint, url_prefix="/__admin")

    def view(rest: str = ""):
        path = request.path
        if path == "/__admin":
            return redirect("/__admin/")
        if path.startswith("/__admin/"):
            raise NotFound()
        raw = request.stream.read(proxy.config.max_body_bytes + 1)
        status, headers, body = proxy.handle(request.method, _target(request.environ), path, raw,
                                             request.headers.items())
        response = Response(body, status=status)
        response.headers.clear()
        for name, value in headers:
            if name.lower() not in HOP_BY_HOP and name.lower() != "content-length":
                response.headers.add(name, value)
        response.headers["Content-Length"] = str(len(body))
        return response

    app.add_url_rule("/", "proxy_root", view, methods=METHODS, provide_automatic_options=False)
    app.add_url_rule("/<path:rest>", "proxy_path", view, methods=METHODS, provide_automatic_options=False)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        response = exc.get_response()
        response.set_data(json.dumps({"error": exc.name, "status": exc.code, "message": exc.description}))
        response.content_type = "application/json"
        return response

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("mockcre proxy: unexpected error")
        return {"error": "Internal Server Error", "status": 500, "message": "mockcre proxy failed; see its log"}, 500

    return app


def _target(environ) -> str:
    """The request target as the client sent it (path and query), for the upstream."""
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and raw.startswith("/"):
        return raw
    path = environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace")
    query = environ.get("QUERY_STRING", "")
    return quote(path, safe="/:@!$&'()*+,;=-._~") + (f"?{query}" if query else "")


# -- serving ----------------------------------------------------------------------------------------


def app_from_env():
    """granian's factory target, run in the worker: the app the parent built (inherited by fork)."""
    from mockcre.server import PARENT_ENV, _die_with_parent

    if PARENT_ENV in os.environ:
        _die_with_parent(int(os.environ[PARENT_ENV]))
        os.setpgid(0, 0)  # as mockcre serve's worker: only the supervisor stops it (see mockcre.server)
    app = _prebuilt if _prebuilt is not None else create_proxy_app(**json.loads(os.environ[CONFIG_ENV]))
    recorder = app.extensions["mockcre.proxy"].recorder
    if recorder is not None:
        # granian's worker is a multiprocessing child: it ends with os._exit, running multiprocessing's
        # finalizers (not atexit), so the last exchanges of a burst are written when it stops.
        from multiprocessing import util

        util.Finalize(None, recorder.flush, exitpriority=10)
    return app


def serve_proxy(host: str, port: int, options: dict, threads: int = 16, out=sys.stdout) -> int:
    """Serve until SIGINT or SIGTERM; 0 on a clean stop, 1 when the port is taken."""
    from granian import Granian
    from granian.constants import Interfaces

    from mockcre.server import PARENT_ENV, port_is_free

    if not port_is_free(host, port):
        sys.stderr.write(f"mockcre proxy: cannot listen on {host}:{port}: the port is already in use\n")
        return 1
    global _prebuilt
    _prebuilt = create_proxy_app(**options)
    os.environ[CONFIG_ENV] = json.dumps(options)
    os.environ[PARENT_ENV] = str(os.getpid())
    proxy: Proxy = _prebuilt.extensions["mockcre.proxy"]
    base = f"http://{host if ':' not in host else f'[{host}]'}:{port}"
    out.write(f"mockcre {__version__} proxy on {base} -> {proxy.upstream.url} "
              f"({'strict' if proxy.config.strict else 'lenient'} contract, upstream timeout {proxy.timeout:g} s)\n")
    out.write(f"  {'API (forwarded)':<30} {base}/upload, /query, /dm/data, /dm/service, / …\n")
    out.write(f"  {'admin and dashboard':<30} {base}/__admin/\n")
    if proxy.recorder is not None:
        out.write(f"  {'recording to':<30} {proxy.recorder.path}\n")
    out.flush()
    Granian("mockcre.proxy:app_from_env", factory=True, interface=Interfaces.WSGI, address=host, port=port,
            workers=1, blocking_threads=threads, log_enabled=False).serve()
    return 0


def main(args) -> int:
    from mockcre.server import is_loopback

    if not is_loopback(args.host) and not args.admin_token:
        sys.stderr.write(f"mockcre proxy: --host {args.host} exposes the proxy beyond this machine; the admin API then "
                         "needs --admin-token T (clients send Authorization: Bearer T)\n")
        return 2
    config = {"strict": args.strict, "journal_file": args.journal, "admin_token": args.admin_token,
              "max_body_bytes": args.max_body_bytes}
    options = {"upstream": args.upstream, "config": config, "timeout": args.upstream_timeout, "record": args.record}
    try:
        Upstream.parse(args.upstream)
        if not args.upstream_timeout > 0:
            raise ValueError(f"--upstream-timeout must be more than 0 seconds; got {args.upstream_timeout:g}")
        return serve_proxy(args.host, args.port, options)
    except (ValueError, OSError) as exc:
        sys.stderr.write(f"mockcre proxy: {exc}\n")
        return 2
