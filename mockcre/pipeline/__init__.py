"""The pipeline: one request flows one way through it. ``service`` judges a request (transport,
JSON, dialect and kind, contract, auth), asks the scenarios for a decision, carries it out on the
model and has the dialect render the reply; ``journal`` and ``persist`` remember requests and
accepted reports; ``config`` holds one app's settings. It knows no HTTP framework: the faces call it.
"""
