"""The serving core: one asyncio loop (aiohttp's HTTP/1.1 server) for ``serve``, ``proxy`` and the test handle.

The API's paths are answered on the loop: the pipeline (:meth:`Service.handle`, about 60 µs) runs there
synchronously, and a scenario's delay or a held ``timeout`` fault is awaited, so a thousand slow answers
cost a thousand sockets and no threads. Scenario faults are network events, done on the connection's own
socket (TLS included): ``reset`` is an RST before any byte (``SO_LINGER 0`` then abort), ``close`` an
orderly close without a byte, ``garbage`` bytes that are not HTTP then a close, ``truncated`` a reply cut
short. Everything else (the admin API, the dashboard, the whole proxy, whose upstream call blocks) is the
Flask app, run on a thread pool through a small WSGI bridge so it never blocks the loop.

Why aiohttp: measured on this machine (docs/performance.md), its server was within a quarter of granian's
ASGI for constant replies and as good for awaited delays, and it is the one that hands a handler its
transport: granian cannot send an RST, and an ASGI app that raises before replying gets a 500 sent for it.

Connection bounds (docs/reliability.md): a connection that has not sent a whole request head within
:data:`IDLE_SECONDS`, or sits idle that long between requests, is closed; there is no connection cap
below the process's file-descriptor limit, which is raised to its hard limit at start.
"""

from __future__ import annotations

import asyncio
import io
import logging
import resource
import socket
import ssl
import struct
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from aiohttp import HttpVersion10, web
from aiohttp.web_protocol import RequestHandler
from werkzeug.http import HTTP_STATUS_CODES
from werkzeug.test import run_wsgi_app

from mockcre.faces import cors
from mockcre.common.domain import PATHS
from mockcre.faces import http_errors

log = logging.getLogger("mockcre.server")

#: Threads for the Flask side (admin API, dashboard, proxy forwarding); API answers never use one.
WSGI_THREADS = 16
#: Seconds a connection may take to send a request head, and may stay idle between requests.
IDLE_SECONDS = 15.0
#: Pending connections the kernel queues before accept (the default 100 drops bursts of clients).
BACKLOG = 4096
#: Bytes a ``garbage`` fault sends: not HTTP, fixed so a test sees the same bytes every time.
GARBAGE = b"\x00\xffmockcre fault: garbage\xfe\x00 lorem ipsum \x1b[0m\r\n\r\n"
#: Framing headers of a WSGI reply that aiohttp sets itself.
_FRAMING = {"content-length", "transfer-encoding", "connection"}


@dataclass(frozen=True)
class Site:
    """One listening address of a core: a host and port, or a socket bound beforehand; HTTPS with ``ssl_context``."""

    host: str = "127.0.0.1"
    port: int = 0
    sock: socket.socket | None = None
    ssl_context: ssl.SSLContext | None = None


#: How the answer to bytes that are not an HTTP/1.x request begins. Its path cannot be trusted, so the answer is
#: not a dialect's envelope but the JSON error every answer outside the dialects has (HTTP 400).
UNREADABLE = "not an HTTP/1.1 request mockcre can read"


class _HalfClosing(RequestHandler):
    """aiohttp's connection, kept open for the answer when the client stops sending (``shutdown(SHUT_WR)``,
    a body cut short): the body reader then sees the end of what arrived, and the short body is named.
    Once every request that arrived is answered, the connection closes: no more can come (so it is not held
    until the idle timeout)."""

    client_done = False

    def eof_received(self) -> bool:
        self.client_done = True
        for _, payload in self._messages:
            _end_of_body(payload)
        if self._current_request is not None:
            _end_of_body(self._current_request.content)
        if not self._messages:  # (queued requests close it after the last: close_when_drained)
            if self._waiter is not None and not self._waiter.done():
                self.force_close()  # idle, waiting for a request that cannot come
            else:
                self.close()  # one request under way: close once it is answered
        return True

    def handle_error(self, request, status: int = 500, exc=None, message=None) -> web.StreamResponse:
        """aiohttp's answer to bytes that are not an HTTP/1.x request (and to a crash), in the JSON error
        envelope like every other answer outside the dialects, rather than its text/plain page. A client's
        bad bytes are not logged (a fuzzer would fill the log); a crash is, with its traceback."""
        if status >= 500:
            super().handle_error(request, status, exc, message)  # logs; refuses once a reply is under way
            text = "mockcre failed; see the server log"
        else:
            reason = (message or str(exc or "")).splitlines()[0].rstrip(": ")
            text = f"{UNREADABLE}: {reason}"
        response = _error(status, text)
        response.force_close()
        return response

    def close_when_drained(self) -> None:
        """After an answer: with the client done and no request waiting, close once this answer is sent
        (aiohttp's ``close`` would drop requests still queued, so it waits for the last)."""
        if self.client_done and not self._messages:
            self.close()


def _end_of_body(payload) -> None:
    if not payload.is_eof():
        payload.feed_eof()


def _client_done(request) -> None:
    """A request taken up after its client stopped sending: its body ends with what arrived."""
    if getattr(request.protocol, "client_done", False):
        _end_of_body(request.content)


class _Server(web.Server):
    def __call__(self) -> RequestHandler:
        return _HalfClosing(self, loop=self._loop, **self._kwargs)


class _Dropped(web.StreamResponse):
    """What a handler returns after a fault has ended the connection itself: aiohttp sends nothing more."""

    async def prepare(self, request):
        raise ConnectionResetError("mockcre scenario fault: the connection was ended on purpose")


class Core:
    """An app (``create_app`` or ``create_proxy_app``) served on an asyncio loop.

    API paths take the loop's own path while the app's WSGI chain is the one ``create_app`` built; a
    test that wraps ``app.wsgi_app`` (to watch what arrives) gets every request through its wrapper.
    """

    def __init__(self, app, loop: asyncio.AbstractEventLoop, threads: int = WSGI_THREADS):
        self.app = app
        self.service = app.extensions.get("mockcre")
        self.api_chain = app.extensions.get("mockcre.api_chain")
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="mockcre-wsgi")
        self.server = _Server(self.handle, handler_cancellation=False, auto_decompress=False,
                                 keepalive_timeout=IDLE_SECONDS, access_log=None, max_field_size=16384,
                                 loop=loop)
        self.servers: list[asyncio.AbstractServer] = []

    async def listen(self, site: Site) -> int:
        """Start listening on ``site``; returns the port (a free one for port 0)."""
        loop = asyncio.get_running_loop()
        if site.sock is not None:
            server = await loop.create_server(self.server, sock=site.sock, ssl=site.ssl_context, backlog=BACKLOG)
        else:
            server = await loop.create_server(self.server, site.host, site.port, ssl=site.ssl_context,
                                              backlog=BACKLOG, reuse_address=True)
        self.servers.append(server)
        return server.sockets[0].getsockname()[1]

    async def close(self) -> None:
        for server in self.servers:
            server.close()
        await self.server.shutdown(1.0)
        for server in self.servers:
            await server.wait_closed()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        _client_done(request)
        if request.version < HttpVersion10:
            return await _refuse_http09(request)
        response = await self._answer(request)
        request.protocol.close_when_drained()
        return response

    async def _answer(self, request: web.BaseRequest) -> web.StreamResponse:
        endpoint = PATHS.get(request.path) if self.app.wsgi_app is self.api_chain and self.service else None
        if endpoint is None:
            return await self.bridge(request)
        config = self.service.config
        granted = []
        origin = request.headers.get("Origin")
        if origin is not None:
            granted = cors.granted(config, origin)
            if request.method == "OPTIONS":
                status, headers, body = cors.preflight(config, origin, granted, request.headers)
                return _response(status, headers, body)
        if request.method != "POST":
            return _error(405, "The method is not allowed for the requested URL.", [("Allow", "POST"), *granted])
        try:
            raw = await _read_body(request, config.max_body_bytes + 1)  # over the limit: never read whole
        except ConnectionError:
            return _Dropped()
        headers = [(name.decode("latin-1").title(), value.decode("latin-1")) for name, value in request.raw_headers]
        reply = self.service.handle(endpoint, raw, headers, request.headers.get("Host", ""))
        if reply.delay:
            await asyncio.sleep(reply.delay)
        if reply.fault in FAULTS:
            return await FAULTS[reply.fault](request, reply)
        return _response(reply.status, [*reply.headers, *granted], reply.body)

    async def bridge(self, request: web.BaseRequest) -> web.StreamResponse:
        """The Flask app on the thread pool; its ``wsgi.input`` reads the body from the loop as the app asks."""
        loop = asyncio.get_running_loop()
        environ = _environ(request, _LoopInput(request.content, loop))
        try:
            status, headers, body = await loop.run_in_executor(self.pool, _run_wsgi, self.app, environ)
        except ConnectionAbortedError:  # ApiRoutes' fault under a wrapped app: reset the connection
            return await _reset(request, None)
        except ConnectionError:
            return _Dropped()
        return _response(int(status.split(" ", 1)[0]), headers, body, reason=status.partition(" ")[2] or None)


def _run_wsgi(app, environ) -> tuple[str, list, bytes]:
    app_iter, status, headers = run_wsgi_app(app, environ, buffered=True)
    try:
        body = b"".join(app_iter)
    finally:
        getattr(app_iter, "close", lambda: None)()
    return status, [(k, v) for k, v in headers.to_wsgi_list() if k.lower() not in _FRAMING], body


class _LoopInput(io.RawIOBase):
    """``wsgi.input`` for a thread: each read waits for the loop to deliver the body's next bytes."""

    def __init__(self, content, loop):
        self.content, self.loop = content, loop

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = asyncio.run_coroutine_threadsafe(self.content.read(len(buffer)), self.loop).result()
        buffer[: len(data)] = data
        return len(data)


async def _read_body(request: web.BaseRequest, limit: int) -> bytes:
    """Up to ``limit`` bytes of the body: what arrives, so a body shorter than its Content-Length is named
    by the transport check rather than waited for."""
    content, chunks, size = request.content, [], 0
    if content.is_eof() and content.exception() is None and content.total_bytes <= limit:
        return content.read_nowait()  # all of it arrived with the head (an ordinary request): no await
    try:
        while size < limit:
            chunk = await content.read(limit - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    except Exception as exc:  # aiohttp's payload errors: the client hung up mid-body
        if not chunks:
            raise ConnectionResetError(str(exc)) from exc
    return b"".join(chunks)


def _environ(request: web.BaseRequest, body) -> dict:
    """A WSGI environ for ``request`` as PEP 3333 has it (path percent-decoded, latin-1)."""
    path, _, query = request.raw_path.partition("?")
    host, port = (request.transport.get_extra_info("sockname") or ("127.0.0.1", 0))[:2]
    peer = request.transport.get_extra_info("peername") or ("", 0)
    environ = {
        "REQUEST_METHOD": request.method, "SCRIPT_NAME": "", "PATH_INFO": unquote_to_bytes(path).decode("latin-1"),
        "QUERY_STRING": query, "RAW_URI": request.raw_path, "REQUEST_URI": request.raw_path,
        "SERVER_NAME": str(host), "SERVER_PORT": str(port), "REMOTE_ADDR": str(peer[0]), "REMOTE_PORT": str(peer[1]),
        "SERVER_PROTOCOL": f"HTTP/{request.version.major}.{request.version.minor}",
        "wsgi.version": (1, 0), "wsgi.url_scheme": request.scheme, "wsgi.input": io.BufferedReader(body),
        "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False, "wsgi.run_once": False,
    }
    for name, value in request.raw_headers:
        key = name.decode("latin-1").upper().replace("-", "_")
        key = key if key in ("CONTENT_TYPE", "CONTENT_LENGTH") else f"HTTP_{key}"
        text = value.decode("latin-1")
        environ[key] = f"{environ[key]},{text}" if key in environ else text
    return environ


def _response(status: int, headers, body: bytes, reason: str | None = None) -> web.Response:
    return web.Response(status=status, reason=reason or HTTP_STATUS_CODES.get(status, "Unknown"), body=body,
                        headers=headers)


def _error(status: int, message: str, headers=()) -> web.Response:
    return _response(status, [("Content-Type", http_errors.CONTENT_TYPE), *headers],
                     http_errors.error_bytes(status, message))


# -- scenario faults as network events --------------------------------------------------------------


def _transport(request):
    transport = request.transport
    if transport is None:  # the client already left
        raise ConnectionResetError("the client closed the connection")
    return transport


async def _refuse_http09(request) -> web.StreamResponse:
    """A request line without a version (HTTP/0.9): a 400 that HTTP/1 clients read, where aiohttp would
    write its status line as ``HTTP/0.9``."""
    body = http_errors.error_bytes(400, f"{UNREADABLE}: the request line has no HTTP version; "
                                        "send e.g. POST /upload HTTP/1.1")
    transport = _transport(request)
    transport.write(f"HTTP/1.1 {http_errors.status_line(400)}\r\nContent-Type: {http_errors.CONTENT_TYPE}\r\n"
                    f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode() + body)
    _finish(transport)
    return _Dropped()


async def _reset(request, reply) -> web.StreamResponse:
    """TCP RST before any byte: SO_LINGER 0, then abort (over TLS too: the RST goes under the session)."""
    transport = _transport(request)
    sock = transport.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport.abort()
    return _Dropped()


async def _close(request, reply) -> web.StreamResponse:
    """An orderly close (FIN, or TLS close_notify then FIN) without a byte of reply."""
    _finish(_transport(request))
    return _Dropped()


def _finish(transport) -> None:
    """Close after what was written. Under TLS the close_notify goes out, then the FIN at once: the loop's
    TLS layer would otherwise wait (up to 30 s) for the client's close_notify before closing TCP."""
    transport.close()
    sock = transport.get_extra_info("socket")
    if sock is not None and transport.get_extra_info("sslcontext") is not None:
        def half_close():  # on a duplicate: the loop's socket objects refuse shutdown(), the socket itself does not
            try:
                with socket.fromfd(sock.fileno(), sock.family, sock.type) as duplicate:
                    duplicate.shutdown(socket.SHUT_WR)
            except OSError:  # already gone
                pass

        asyncio.get_running_loop().call_later(0.01, half_close)


async def _timeout(request, reply) -> web.StreamResponse:
    """Hold the connection ``reply.hold`` seconds, then close it without a byte."""
    await asyncio.sleep(reply.hold)
    return await _close(request, reply)


async def _garbage(request, reply) -> web.StreamResponse:
    """Bytes that are not HTTP, then an orderly close."""
    transport = _transport(request)
    transport.write(GARBAGE)
    _finish(transport)
    return _Dropped()


async def _truncated(request, reply) -> web.StreamResponse:
    """The reply's head with its full Content-Length, half its body, then an orderly close."""
    transport = _transport(request)
    head = [f"HTTP/1.1 {http_errors.status_line(reply.status)}"]
    head += [f"{name}: {value}" for name, value in reply.headers]
    head.append(f"Content-Length: {len(reply.body)}")
    transport.write(("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + reply.body[: len(reply.body) // 2])
    _finish(transport)
    return _Dropped()


FAULTS = {"reset": _reset, "close": _close, "timeout": _timeout, "garbage": _garbage, "truncated": _truncated}


# -- running a core -----------------------------------------------------------------------------------


def raise_descriptor_limit() -> None:
    """Open files up to the hard limit: each connection is a descriptor, and asyncio has no cap of its own."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else max(soft, 65536), hard))
        except (ValueError, OSError):
            pass


def new_loop() -> asyncio.AbstractEventLoop:
    """uvloop where it is installed (a third faster under load), else asyncio's own."""
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class Background:
    """A core on its own loop in a daemon thread: the test handle and the pytest plugin."""

    def __init__(self, app, sites: list[Site]):
        self.loop = new_loop()
        self.core = Core(app, self.loop)
        self.ports: list[int] = []
        self._thread = threading.Thread(target=self.loop.run_forever, name="mockcre-loop", daemon=True)
        self.sites = sites

    def start(self) -> "Background":
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(self._listen(), self.loop)
        try:
            self.ports = future.result(timeout=30)
        except BaseException:
            self.stop()
            raise
        return self

    async def _listen(self) -> list[int]:
        return [await self.core.listen(site) for site in self.sites]

    def stop(self) -> None:
        if self.loop.is_running():
            try:
                asyncio.run_coroutine_threadsafe(self.core.close(), self.loop).result(timeout=10)
            except Exception:  # stopping anyway
                log.debug("core close failed", exc_info=True)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout=10)
        if not self.loop.is_running():
            self.loop.close()


def run_until_signalled(app, sites: list[Site], on_stop=None) -> int:
    """Serve ``sites`` in this thread until SIGINT or SIGTERM, then stop cleanly: 0 (``serve``, ``proxy``)."""
    import signal

    raise_descriptor_limit()
    loop = new_loop()
    asyncio.set_event_loop(loop)
    core = Core(app, loop)
    stopped = asyncio.Event()
    try:
        for site in sites:
            loop.run_until_complete(core.listen(site))
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stopped.set)
        loop.run_until_complete(stopped.wait())
        loop.run_until_complete(core.close())
    finally:
        if on_stop is not None:
            on_stop()
        loop.close()
    return 0

