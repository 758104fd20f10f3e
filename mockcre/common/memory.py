"""glibc heap tuning for a long-running threaded server; does nothing where glibc is absent.

With many threads glibc keeps one malloc arena per thread (up to 8 per core), and memory freed
after a burst of large bodies stays in them: a reset would not bring RSS back. Two arenas and a
trim on reset do (measured by the fuzz campaign's memory check).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc

M_ARENA_MAX = -8  # mallopt parameter, from glibc's malloc.h


def _libc():
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


_LIBC = _libc()


def limit_arenas(count: int = 2) -> None:
    """Call before the server's threads start (a forked worker inherits it)."""
    if _LIBC is not None:
        _LIBC.mallopt(M_ARENA_MAX, count)


def give_back(collect: bool = False) -> None:
    """Return the heap's free pages to the system (after a reset dropped the store and journal).

    ``collect`` first runs a full garbage collection: worth its milliseconds on an explicit
    ``POST /__admin/reset``, not on the pytest fixture's reset before every test.
    """
    if collect:
        gc.collect()
    if _LIBC is not None:
        _LIBC.malloc_trim(0)
