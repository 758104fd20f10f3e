"""Accounts: the cre tokens and dm bid → token pairs a server accepts.

Without accounts every token passes, as the documents say the real service does today
("MD5 可以随便填写"); with accounts, each dialect's ``check_auth`` refuses a body whose token or
signature does not match, as a format error (-1) whose message never states the secret.
"""

from __future__ import annotations

from dataclasses import dataclass, field


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

    def __bool__(self) -> bool:
        return bool(self.cre_tokens or self.dm_tokens)
