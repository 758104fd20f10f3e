"""Tell a body's dialect and kind from its fields, and say why when that is impossible."""

from __future__ import annotations

from mockcre.dialects.base import data_kind
from mockcre.common.domain import REQUEST_KINDS, RESPONSE_KINDS

from .violations import describe_value

_CRE_QUERY_KEYS = {"proj_id", "scn_id", "user_id"}
_CRE_UPLOAD_KEYS = {"version", "data"}
_DM_KEYS = {"bid", "MD5", "request_id", "scene_id", "service_type"}


class Undetected(ValueError):
    """The body does not say which dialect or kind it is; the message says what was looked at."""

    def __init__(self, message: str, path: str = ""):
        super().__init__(message)
        self.path = path


def detect(body, dialect: str | None = None) -> tuple[str, str]:
    """``(dialect, kind)`` of a request body, or raise :class:`Undetected`."""
    if not isinstance(body, dict):
        raise Undetected(f"body: expected a JSON object; got {describe_value(body)}")
    keys = set(body)
    if dialect is None:
        if keys & (_CRE_QUERY_KEYS | _CRE_UPLOAD_KEYS) or "token" in keys:
            dialect = "cre"
        elif keys & _DM_KEYS:
            dialect = "dm"
        else:
            raise Undetected("cannot tell the dialect: a cre body has version/data/token or proj_id/scn_id/user_id, "
                             "a dm body has bid/MD5/request_id; pass --dialect")
    if dialect == "cre":
        if keys & _CRE_QUERY_KEYS and not keys & _CRE_UPLOAD_KEYS:
            return "cre", "query"
        return "cre", _upload_kind(body, "cre upload")
    if "data_type" in body:
        return "dm", _upload_kind(body, "dm report")
    return "dm", "recommend"


def _upload_kind(body, what: str) -> str:
    kind = data_kind(body)
    if kind is None:
        raise Undetected(f"data_type: a {what} needs data_type 1 (item) or 2 (action); "
                         + ("it is missing" if "data_type" not in body else f"got {body['data_type']!r}"), "/data_type")
    return kind


def dialect_of_kind(kind: str) -> str | None:
    """The dialect a kind belongs to when only one has it (``query`` is cre's, ``recommend`` dm's)."""
    owners = [d for d in REQUEST_KINDS if kind in REQUEST_KINDS[d] + RESPONSE_KINDS[d]]
    return owners[0] if len(owners) == 1 else None
