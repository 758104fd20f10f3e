"""The compiled fast validator (jsonschema-rs) and jsonschema must agree on every body: the first
decides whether a body is explained at all, the second explains it."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockcre import strategies
from mockcre.contracts.schema_check import compiled, fast
from mockcre.common.domain import REQUEST_KINDS, RESPONSE_KINDS
from mockcre.common.resources import load_schema

KINDS = [(d, k) for d in REQUEST_KINDS for k in REQUEST_KINDS[d]]
REPLIES = [(d, k) for d in RESPONSE_KINDS for k in RESPONSE_KINDS[d]]
SETTINGS = settings(max_examples=60, deadline=None, database=None, suppress_health_check=list(HealthCheck))


def agree(name: str, body) -> None:
    assert fast(name).is_valid(body) == compiled(name).is_valid(body), body


@pytest.mark.parametrize("dialect, kind", KINDS)
def test_they_agree_on_valid_and_one_defect_requests(dialect, kind):
    @SETTINGS
    @given(st.one_of(strategies.requests(dialect, kind), strategies.mutations(dialect, kind).map(lambda p: p[0])))
    def check(body):
        agree(f"{dialect}.{kind}", body)

    check()


@pytest.mark.parametrize("dialect, kind", REPLIES)
def test_they_agree_on_replies(dialect, kind):
    @SETTINGS
    @given(strategies.responses(dialect, kind))
    def check(body):
        agree(f"{dialect}.{kind}", body)

    check()


@pytest.mark.parametrize("name", [f"{d}.{k}" for d, k in KINDS + REPLIES])
def test_they_agree_on_the_documents_examples_and_edge_strings(name):
    for example in load_schema(name)["examples"]:
        agree(name, example)
    # ECMA-262 '$' is the very end in both: a trailing newline must not pass either
    if name == "cre.action":
        body = load_schema(name)["examples"][0]
        body = {**body, "data": [{**body["data"][0], "oper_time": "1483200000\n"}]}
        assert not fast(name).is_valid(body) and not compiled(name).is_valid(body)
