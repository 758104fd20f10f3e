"""A Schemathesis check for these APIs: load with ``SCHEMATHESIS_HOOKS=mockcre.schemathesis_hooks``.

Both dialects answer every protocol error with HTTP 200 and an envelope, so Schemathesis's
status-code checks cannot tell a refused request from an accepted one; the envelope's ``code``
can. Needs Schemathesis (the test extra); mockcre itself never imports this module.
"""

from __future__ import annotations

import json

import schemathesis

#: The codes that refuse a request: -1 format error, -2 system error (cre strings, dm integers).
#: -3 (algorithm error / empty result) is an answer to a valid request, e.g. a recommendation from an empty pool.
REFUSALS = {"-1", "-2", -1, -2}


@schemathesis.check
def valid_request_not_refused(ctx, response, case):
    """A request generated as valid (positive mode, examples included) must not get code -1 or -2."""
    if response.status_code != 200 or (case.meta is not None and case.meta.generation.mode.is_negative):
        return None
    try:
        body = response.json()
    except (ValueError, json.JSONDecodeError):
        raise AssertionError(f"HTTP 200 without a JSON body: {response.text[:200]!r}") from None
    code = body.get("code") if isinstance(body, dict) else None
    if code in REFUSALS:
        message = body.get("message", body.get("msg"))
        raise AssertionError(f"a valid request was refused with code {code!r}: {message}")
    return None
