"""mockcre: a mock and contract-test server for Tencent's recommendation APIs (cre and dm dialects)."""

__version__ = "0.1.0"
