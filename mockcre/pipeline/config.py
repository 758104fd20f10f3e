"""Settings of one mockcre app, from ``create_app(config)`` or ``mockcre serve`` flags."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from urllib.parse import urlsplit

from mockcre.contracts.auth import Accounts
from mockcre.model.clock import Clock
from mockcre.contracts.jsonbody import DEFAULT_MAX_BYTES


def parse_origin(text: str) -> str:
    """``scheme://host[:port]`` as a browser sends it in ``Origin`` (lower case, no path), or ValueError."""
    parts = urlsplit(text.strip().lower())
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.path.strip("/") or parts.query:
        raise ValueError(f"CORS origin {text!r}: expected scheme://host[:port], e.g. http://localhost:3000")
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class Config:
    strict: bool = False  # reject everything outside the documented tables
    seed: int = 0  # makes trace ids and every scenario choice reproducible
    accounts: Accounts = field(default_factory=Accounts)  # empty: any token or MD5 passes
    max_body_bytes: int = DEFAULT_MAX_BYTES
    max_batch_records: int = 10_000  # records in one cre upload (data[]): a 1,000-record batch is the documented use
    journal_size: int = 10_000  # entries kept in memory (oldest dropped)
    journal_file: str | None = None  # also append each entry as a JSON line
    scenarios: list = field(default_factory=list)  # scenario files or mappings loaded at start
    watch: bool = False  # reload changed scenario files without a restart
    state_file: str | None = None  # SQLite file keeping every accepted report across restarts
    admin_token: str | None = None  # Bearer token required by /__admin when set
    cors_origins: list = field(default_factory=list)  # origins allowed CORS on the API paths; empty: any
    allowed_hosts: list = field(default_factory=list)  # Host names /__admin answers besides loopback and its address
    # a delay before every answer (a number of ms, {uniform: [lo, hi]} or {lognormal: {median, sigma}}, as a
    # scenario's latency:, which it replaces); mockcre serve --latency SPEC
    latency: object = None
    # the mock's one clock; also a moment to start frozen at (epoch seconds or ISO 8601, as --clock T) or a
    # callable giving epoch seconds
    clock: Clock = field(default_factory=Clock)

    @classmethod
    def from_mapping(cls, mapping=None) -> "Config":
        if isinstance(mapping, Config):
            return mapping
        mapping = dict(mapping or {})
        known = {f.name for f in fields(cls)}
        unknown = set(mapping) - known
        if unknown:
            raise ValueError(f"unknown mockcre config keys: {', '.join(sorted(unknown))}; known: {', '.join(sorted(known))}")
        accounts = mapping.get("accounts")
        if accounts is not None and not isinstance(accounts, Accounts):
            mapping["accounts"] = Accounts.parse(accounts)
        if "clock" in mapping:
            mapping["clock"] = Clock.of(mapping["clock"])
        mapping["cors_origins"] = [parse_origin(o) for o in mapping.get("cors_origins") or ()]
        mapping["allowed_hosts"] = [h.strip().lower() for h in mapping.get("allowed_hosts") or ()]
        return cls(**mapping)
