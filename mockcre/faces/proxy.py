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
replays (see :mod:`mockcre.tools.record`).

The proxy runs on the same asyncio core as ``mockcre serve`` (:mod:`mockcre.faces.core`); every
request goes to the Flask app on the core's thread pool, since forwarding waits on the upstream.
The app is built before anything listens, so a bad ``--upstream`` fails first.
"""

from __future__ import annotations

import http.client
import json
import logging
import socket
import sys
import time
import zlib
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from mockcre.common import __version__, domain

from mockcre.faces import http_errors
from mockcre.pipeline.config import Config
from mockcre.contracts import ERROR, WARNING, Violation, check, has_errors, jsonbody
from mockcre.contracts.violations import describe_value
from mockcre.faces.cors import Cors
from mockcre.dialects import DIALECTS
from mockcre.pipeline.journal import masked_headers
from mockcre.pipeline.service import Judgement

log = logging.getLogger("mockcre.proxy")

DEFAULT_TIMEOUT = 10.0
MAX_REPLY_BYTES = 64 * 1024 * 1024
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]
#: RFC 9110 7.6.1: meaningful for one connection only, never forwarded (plus what Connection lists).
HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization", "te",
              "trailer", "trailers", "transfer-encoding", "upgrade"}


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


class Proxy:
    def __init__(self, upstream: str, config=None, timeout: float = DEFAULT_TIMEOUT, record: str | None = None):
        from mockcre.pipeline.service import Service

        self.upstream = Upstream.parse(upstream)
        if not timeout > 0:
            raise ValueError(f"--upstream-timeout must be more than 0 seconds; got {timeout}")
        self.timeout = float(timeout)
        self.service = Service(config)  # the journal, store and config the admin API and dashboard read
        self.config: Config = self.service.config
        self.recorder = None
        if record:
            from mockcre.tools.record import Recorder

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

    def judge_reply(self, ins: Judgement, fwd: Forwarded):
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
        kind = adapter.reply_kind(ins.endpoint, parsed)
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
        from mockcre.faces.app import PATHS

        started = time.perf_counter()
        headers = list(headers)
        endpoint = PATHS.get(path) if method == "POST" else None
        if endpoint is None:
            return self._other(method, target, path, raw, headers, started)
        # judged as mockcre serve judges it; the upstream's host name routes dm's POST /, as the real hosts do
        ins = self.service.judge(endpoint, raw, {k.lower(): v for k, v in headers}, self.upstream.host)
        adapter = ins.adapter
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
            self.recorder.add(self._observed(ins, fwd, parsed, text, reply, headers))
        return answer

    def _other(self, method, target, path, raw, headers, started) -> tuple[str, list, bytes]:
        """A request outside the API (another path or method): forwarded and journaled, judged only as that."""
        from mockcre.faces.app import PATHS

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
            status = 413 if too_large else 502
            reply = http_errors.error_body(status, fwd.error)
            answer = (http_errors.status_line(status), [("Content-Type", http_errors.CONTENT_TYPE)],
                      http_errors.error_bytes(status, fwd.error))
        else:
            answer = (_status_line(fwd), fwd.headers, fwd.body)
            try:
                reply = json.loads(fwd.body)
            except ValueError:
                reply = None
            if not isinstance(reply, dict):
                reply = {"raw": fwd.body[:4096].decode("utf-8", "replace")}
        ins = Judgement(None, body=body, as_sent=body, violations=[Violation("", message, ERROR, rule)])
        self._journal(ins, headers, reply, upstream, started)
        return answer

    def _journal(self, ins: Judgement, headers, reply, upstream: dict, started: float) -> None:
        self.service.record(ins, masked_headers(headers), reply, [], started, upstream=upstream)

    def _mirror(self, ins: Judgement, parsed) -> None:
        """A report the upstream accepted goes into the proxy's store too (the dashboard and report read it)."""
        if ins.kind not in ("item", "action") or ins.partition is None or not isinstance(parsed, dict):
            return
        if str(parsed.get("code")) != "0":
            return
        try:
            self.service.store.apply_report(ins.partition, ins.adapter, ins.kind, ins.body, int(self.config.clock()))
        except Exception:  # the store is a view for the dashboard; the exchange itself went through
            log.exception("mockcre proxy: cannot mirror a report into the store")

    def _observed(self, ins: Judgement, fwd: Forwarded, parsed, text, reply, headers):
        """What the recorder keeps, or None for a request a replaying mock would answer itself (-1)."""
        from mockcre.tools.record import Observed

        if ins.kind is None or not isinstance(ins.body, dict):
            return None
        lenient = ins.violations if not self.config.strict else \
            check(ins.body, ins.dialect, ins.kind, False, now=self.config.clock()).violations
        if has_errors(lenient):
            return None
        secret_headers = tuple(v for k, v in headers if k.lower() in domain.SECRET_HEADERS)
        if fwd.error:
            return Observed(ins.endpoint, ins.kind, ins.dialect, ins.body, 200, "application/json", reply,
                            "upstream failed", secret_headers)
        ctype = next((v for k, v in fwd.headers if k.lower() == "content-type"), None)
        body = parsed if isinstance(parsed, (dict, list)) else text  # a bare JSON string is replayed as its text
        return Observed(ins.endpoint, ins.kind, ins.dialect, ins.body, fwd.status, ctype, body,
                        secret_headers=secret_headers)


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
    from werkzeug.exceptions import NotFound

    from mockcre.faces import admin, dashboard

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

    app.wsgi_app = Cors(proxy.config, app.wsgi_app)
    app.add_url_rule("/", "proxy_root", view, methods=METHODS, provide_automatic_options=False)
    app.add_url_rule("/<path:rest>", "proxy_path", view, methods=METHODS, provide_automatic_options=False)

    http_errors.install(app)
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


def serve_proxy(host: str, port: int, options: dict, out=sys.stdout, tls=None) -> int:
    """Serve until SIGINT or SIGTERM (HTTPS with ``tls``, a :class:`mockcre.faces.tls.Certificates`); 0 on a clean
    stop, 2 when it cannot start (the port is taken)."""
    from mockcre.faces.core import Site, run_until_signalled
    from mockcre.faces.server import EXIT_CANNOT_START, base_url, port_is_free
    from mockcre.faces.tls import trust_lines

    if not port_is_free(host, port):
        sys.stderr.write(f"mockcre proxy: cannot listen on {host}:{port}: the port is already in use\n")
        return EXIT_CANNOT_START
    app = create_proxy_app(**options)
    proxy: Proxy = app.extensions["mockcre.proxy"]
    base = base_url(host, port, tls is not None)
    out.write(f"mockcre {__version__} proxy on {base} -> {proxy.upstream.url} "
              f"({'strict' if proxy.config.strict else 'lenient'} contract, upstream timeout {proxy.timeout:g} s)\n")
    out.write(f"  {'API (forwarded)':<30} {base}/upload, /query, /dm/data, /dm/service, / …\n")
    out.write(f"  {'admin and dashboard':<30} {base}/__admin/\n")
    if proxy.recorder is not None:
        out.write(f"  {'recording to':<30} {proxy.recorder.path}\n")
    if tls is not None and tls.ca_path is not None:
        out.write("\n".join(trust_lines(tls.ca_path, base)) + "\n")
    out.flush()
    site = Site(host, port, ssl_context=tls.server_context() if tls is not None else None)
    return run_until_signalled(app, [site], on_stop=proxy.recorder.flush if proxy.recorder is not None else None)


def main(args) -> int:
    from mockcre.faces import tls
    from mockcre.faces.server import is_loopback

    if not is_loopback(args.host) and not args.admin_token:
        sys.stderr.write(f"mockcre proxy: --host {args.host} exposes the proxy beyond this machine; the admin API then "
                         "needs --admin-token T (clients send Authorization: Bearer T)\n")
        return 2
    problem = tls.problem_with(args)
    if problem:
        sys.stderr.write(f"mockcre proxy: {problem}\n")
        return 2
    config = {"strict": args.strict, "journal_file": args.journal, "admin_token": args.admin_token,
              "max_body_bytes": args.max_body_bytes, "max_batch_records": args.max_batch_records,
              "journal_size": args.journal_size, "cors_origins": args.cors_origin,
              "allowed_hosts": args.allowed_host + tls.admin_host_names(args)}
    options = {"upstream": args.upstream, "config": config, "timeout": args.upstream_timeout, "record": args.record}
    try:
        Upstream.parse(args.upstream)
        if not args.upstream_timeout > 0:
            raise ValueError(f"--upstream-timeout must be more than 0 seconds; got {args.upstream_timeout:g}")
        with tls.certificates_for(args) as certificates:
            return serve_proxy(args.host, args.port, options, tls=certificates)
    except (ValueError, OSError) as exc:  # CertificateError is a ValueError
        sys.stderr.write(f"mockcre proxy: {exc}\n")
        return 2
