"""Accounts: cre tokens and dm's MD5(BID&request_id&TOKEN) signature.

Without accounts every token passes, as the documents say the real service does today
("MD5 可以随便填写"); with accounts, a mismatch is a format error (-1) whose message states the
formula and never the secret.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field

DM_FORMULA = "MD5 must be md5(bid&request_id&TOKEN) in hex (MD5（BID&request_id&TOKEN）)"


def dm_signature(bid: str, request_id: str, token: str) -> str:
    return hashlib.md5(f"{bid}&{request_id}&{token}".encode("utf-8")).hexdigest()


@dataclass
class Accounts:
    """Known cre tokens and dm bid → token pairs. Empty means auth is off."""

    cre_tokens: set = field(default_factory=set)
    dm_tokens: dict = field(default_factory=dict)

    @classmethod
    def parse(cls, specs) -> "Accounts":
        """From ``--account cre:TOKEN`` / ``--account dm:BID=TOKEN`` strings."""
        accounts = cls()
        for spec in specs or ():
            dialect, _, value = spec.partition(":")
            if dialect == "cre" and value:
                accounts.cre_tokens.add(value)
            elif dialect == "dm" and "=" in value:
                bid, _, token = value.partition("=")
                accounts.dm_tokens[bid] = token
            else:
                raise ValueError(f"--account {spec!r}: expected cre:TOKEN or dm:BID=TOKEN")
        return accounts

    def merge(self, other: "Accounts") -> None:
        self.cre_tokens |= other.cre_tokens
        self.dm_tokens.update(other.dm_tokens)

    def check_cre(self, body: dict) -> str | None:
        """None when the token is accepted, else the reason."""
        if not self.cre_tokens:
            return None
        if body.get("token") in self.cre_tokens:
            return None
        return "token: unknown token; it must be one assigned by the engine (token：用作鉴权，由云推荐引擎分配)"

    def check_dm(self, body: dict) -> str | None:
        if not self.dm_tokens:
            return None
        bid = body.get("bid")
        if bid not in self.dm_tokens:
            return f"bid: unknown business id {str(bid)[:40]!r}; no account is configured for it"
        expected = dm_signature(str(bid), str(body.get("request_id", "")), self.dm_tokens[bid])
        sent = body.get("MD5")
        if isinstance(sent, str) and hmac.compare_digest(sent.lower(), expected):
            return None
        return f"MD5: signature mismatch; {DM_FORMULA}"

    def __bool__(self) -> bool:
        return bool(self.cre_tokens or self.dm_tokens)
