"""What a scenario may put into a reply header: checked at load (names, framing headers, the fixed text of
values) and again once templates are filled in, so no request can split the reply or inject a header.

RFC 9110 allows field values of visible characters, space and TAB; anything else (CR, LF, NUL, other
controls, text outside ASCII) is refused rather than sent, because servers differ on what they do with
it (one writes it raw and the reply splits, another drops the header or the whole reply).
"""

from __future__ import annotations

import re

from mockcre.common.domain import FRAMING_HEADERS

_TOKEN = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")  # RFC 9110 field-name
_UNSAFE = re.compile(r"[^\t\x20-\x7e]")
_NAMED = {"\r": "CR", "\n": "LF", "\0": "NUL", "\x7f": "DEL"}


def name_problem(name: str) -> str | None:
    """Why ``name`` cannot be a reply header a scenario sets (None when it can)."""
    if not _TOKEN.fullmatch(name):
        return (f"header name {name!r} is not an HTTP field name: use letters, digits and "
                "!#$%&'*+.^_`|~- only, no spaces or colons")
    if name.lower() in FRAMING_HEADERS:
        return (f"header {name} frames the HTTP message and is written by the server; a scenario "
                "that sets it would break the connection: remove it")
    return None


def value_problem(value: str) -> str | None:
    """What in ``value`` may not go into a header (None when all of it may)."""
    bad = _UNSAFE.search(value)
    if bad is None:
        return None
    char = bad.group()
    code = f"U+{ord(char):04X}"
    shown = f"{_NAMED[char]} ({code})" if char in _NAMED else f"{code} {char!r}" if char.isprintable() else f"control {code}"
    return (f"holds {shown} at character {bad.start() + 1}; header values may hold printable ASCII, "
            "space and TAB only")
