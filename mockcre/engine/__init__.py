"""The engine: one request flows one way through it, and it keeps what was accepted.

``service`` judges a request (transport, JSON, dialect and kind, schema and semantic rules, auth),
asks the scenario engine for a decision and carries it out; ``store`` and ``recommend`` hold and
rank the data; ``journal`` and ``persist`` remember requests and accepted reports; ``clock`` is the
one clock all of it reads. No module here knows HTTP or a wire format: the dialects do.
"""
