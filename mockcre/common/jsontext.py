"""JSON out, fast: orjson where it can, the standard library where it cannot.

Serialising the reply and the journal entry was a quarter of a ``/query``'s time in Python (py-spy
under wrk); orjson does both several times faster. It refuses a few things the standard library
writes (integers beyond 64 bits, strings with lone surrogates): those fall back to ``json`` with
ASCII escapes, which is always valid UTF-8. Output is compact (no spaces after ``:`` and ``,``).
"""

from __future__ import annotations

import json

import orjson


def dumps(value) -> bytes:
    """UTF-8 JSON of ``value``; anything JSON has no type for is written as its ``str()``, a key as its text.

    Keys other than strings (a scenario's YAML may give ``1:``) are rare, and orjson writes string keys
    twice as fast without ``OPT_NON_STR_KEYS``, so that option is only the second try."""
    for option in (0, orjson.OPT_NON_STR_KEYS):
        try:
            return orjson.dumps(value, default=str, option=option)
        except TypeError:  # orjson.JSONEncodeError is a TypeError
            continue
    return json.dumps(value, default=str, separators=(",", ":")).encode("ascii")


def dumps_kept(value) -> bytes:
    """:func:`dumps` for text that is kept (journal entries, item records): orjson's bytes carry at least
    1 KiB of buffer whatever their length (100,000 item records took 103 MB instead of 29), a copy does not."""
    return bytes(memoryview(dumps(value)))
