"""mockcre: a mock and contract-test server for Tencent's recommendation APIs (cre and dm dialects)."""

from mockcre.common import __version__
__all__ = ["create_app", "__version__"]


def __getattr__(name):
    """``mockcre.create_app`` without importing Flask for commands that never serve (validate, lint)."""
    if name == "create_app":
        from mockcre.faces.app import create_app

        return create_app
    raise AttributeError(f"module 'mockcre' has no attribute {name!r}")
