"""HTTP transport of a request body: Content-Length, Content-Encoding and charset, read into UTF-8 JSON bytes.

The first step of judging a request, shared by every face that receives one (serve, the proxy, the
test handle): what arrived is turned into the bytes the JSON reader parses, and transport mistakes
become violations like any contract rule's.
"""

from __future__ import annotations

import codecs
import zlib

from mockcre.contracts.jsonbody import SEND_JSON
from mockcre.contracts.violations import ERROR, WARNING, Violation

_CODINGS = {"gzip": 31, "x-gzip": 31, "deflate": 15}  # zlib wbits: gzip header, zlib header
_FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")
_UTF8 = ("utf-8", "utf8")


def decode_transport(raw: bytes, headers: dict, limit: int, strict: bool = False):
    """The request body behind its Content-Length, Content-Encoding and charset, and transport
    mistakes as violations.

    ``headers`` have lower-case names. Returns ``(UTF-8 body bytes, notes)``, or ``(None,
    violations)`` when the body cannot be read. Lenient mode accepts what the real service would
    (JSON under another Content-Type, a declared non-UTF-8 charset) with a warning; strict mode
    refuses it. The proxy judges requests the same way.
    """
    declared = headers.get("content-length", "").strip()
    # the reader stops at limit + 1 bytes: fewer than that and fewer than declared is a body cut short
    if declared.isdigit() and len(raw) < min(int(declared), limit + 1):
        return None, [Violation("", f"body is cut off: {len(raw):,} bytes arrived but Content-Length says "
                                f"{int(declared):,}; nothing was stored. Send the whole body with its true "
                                "Content-Length", ERROR, "http.content-length")]
    encoding = headers.get("content-encoding")
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()] if encoding else []
    for coding in reversed(codings):  # listed in the order applied (RFC 9110 8.4): undone last first
        if coding == "identity":
            continue
        if coding not in _CODINGS:
            return None, [Violation("", f"Content-Encoding {coding} is not supported; send gzip, deflate or none",
                                    ERROR, "http.encoding")]
        stream = zlib.decompressobj(wbits=_CODINGS[coding])
        try:
            raw = stream.decompress(raw, limit + 1)
        except zlib.error as exc:
            return None, [Violation("", f"Content-Encoding: {coding} but the body does not decompress ({exc})",
                                    ERROR, "http.encoding")]
        if not stream.eof and len(raw) <= limit:  # over the limit: jsonbody names the limit instead
            return None, [Violation("", f"Content-Encoding: {coding} but the compressed body is cut off before its "
                                    "end (and checksum); send the whole compressed body", ERROR, "http.encoding")]
    if not codings and raw[:2] == b"\x1f\x8b":
        return None, [Violation("", "body looks gzip-compressed but has no Content-Encoding: gzip header; "
                                "send plain JSON or declare the encoding", ERROR, "http.encoding")]
    media, _, params = headers.get("content-type", "").partition(";")
    content_type = media.strip().lower()
    notes = []
    severity, mode = (ERROR, "strict mode refuses it") if strict else (WARNING, "accepted in lenient mode")
    if content_type and content_type != "application/json" and not content_type.endswith("+json"):
        if raw.lstrip()[:1] not in (b"{", b"[") and content_type in _FORMS:
            return None, [Violation("", f"Content-Type is {content_type} and the body is not JSON; {SEND_JSON}",
                                    ERROR, "http.content-type")]
        notes.append(Violation("", f"Content-Type is {content_type}, not application/json ({mode}); send the header "
                               "Content-Type: application/json (curl: -H 'Content-Type: application/json')",
                               severity, "http.content-type"))
    charset = _charset(params) if params else ""
    if charset and charset not in _UTF8 and not raw.isascii():
        try:
            text = raw.decode(codecs.lookup(charset).name)
        except LookupError:
            return None, notes + [Violation("", f"Content-Type declares charset={charset}, which is not a known "
                                            "character set; send UTF-8", ERROR, "http.charset")]
        except UnicodeDecodeError as exc:
            return None, notes + [Violation("", f"body is not {charset} as its Content-Type declares: byte "
                                            f"0x{raw[exc.start]:02x} at offset {exc.start} cannot be decoded; "
                                            "send UTF-8", ERROR, "http.charset")]
        raw = text.encode("utf-8")
        notes.append(Violation("", f"body is in charset {charset} ({mode}: decoded as declared); JSON between "
                               "systems must be UTF-8 (RFC 8259): send UTF-8", severity, "http.charset"))
    return raw, notes


def _charset(params: str) -> str:
    """The charset parameter of a Content-Type's parameters (``; charset="GBK"``), lower-case; "" when none."""
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "charset":
            return value.strip().strip('"').lower()
    return ""
