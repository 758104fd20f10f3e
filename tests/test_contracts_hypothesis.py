"""Property tests: generated bodies pass the contracts, one planted defect never slips through."""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from mockcre import strategies
from mockcre.tools import strategies as tool_strategies  # the private walker, for its own test
from mockcre.contracts import ERROR, validate
from mockcre.contracts.schema_check import registry
from mockcre.contracts.violations import pointer
from mockcre.common.domain import REQUEST_KINDS, RESPONSE_KINDS
from mockcre.common.resources import load_schema
from mockcre.strategies import Defect, from_schema, mutations, requests, responses

FAST = settings(max_examples=50, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
REQUESTS = [pytest.param(d, k, id=f"{d}.{k}") for d in REQUEST_KINDS for k in REQUEST_KINDS[d]]
RESPONSES = [pytest.param(d, k, id=f"{d}.{k}") for d in RESPONSE_KINDS for k in RESPONSE_KINDS[d]]


def errors(violations):
    return [v for v in violations if v.severity == ERROR]


def _json_round_trip(body):
    return json.loads(json.dumps(body, ensure_ascii=False, allow_nan=False))


@pytest.mark.parametrize("dialect, kind", REQUESTS)
def test_generated_requests_pass_both_modes(dialect, kind):
    @FAST
    @given(requests(dialect, kind))
    def check(body):
        body = _json_round_trip(body)  # what a client would send
        found = validate(body, dialect, kind, strict=True)
        assert errors(found) == [], found
        assert found == [], found  # not even a semantic warning: the generator respects every rule
        assert validate(body, dialect, kind) == []
        assert validate(body) == []  # and the kind is detected from the body

    check()


@pytest.mark.parametrize("dialect, kind", RESPONSES)
def test_generated_responses_pass_strict_mode(dialect, kind):
    @FAST
    @given(responses(dialect, kind))
    def check(body):
        body = _json_round_trip(body)
        assert validate(body, dialect, kind, strict=True) == []

    check()


def _caught(found, defect: Defect):
    return [v for v in errors(found) if v.path == defect.path or v.path.startswith(defect.path + "/")]


@pytest.mark.parametrize("dialect, kind", REQUESTS)
def test_one_targeted_mutation_is_always_detected(dialect, kind):
    @FAST
    @given(mutations(dialect, kind))
    def check(pair):
        body, defect = pair
        assert isinstance(defect, Defect) and defect.description
        body = _json_round_trip(body)
        for strict in (True, False):
            found = validate(body, dialect, kind, strict=strict)
            caught = _caught(found, defect)
            assert caught, (strict, defect, found)
            assert defect.rule in {v.rule for v in caught}, (strict, defect, found)
            assert len(caught) == len(errors(found)), (strict, defect, found)  # one defect, nothing else broken

    check()


@pytest.mark.parametrize("dialect, kind", REQUESTS)
def test_invalid_requests_fail_both_modes(dialect, kind):
    @settings(FAST, max_examples=25)
    @given(requests(dialect, kind, valid=False))
    def check(body):
        assert isinstance(body, dict)
        assert errors(validate(body, dialect, kind, strict=True))
        assert errors(validate(body, dialect, kind))

    check()


@pytest.mark.parametrize("dialect, kind", REQUESTS)
def test_mutations_vary(dialect, kind):
    seen = set()

    @settings(FAST, max_examples=60, derandomize=True)  # a fixed sample: this counts, it does not search
    @given(mutations(dialect, kind))
    def collect(pair):
        seen.add(pair[1].rule)

    collect()
    assert "schema.required" in seen and len(seen) >= 3, seen


@pytest.mark.parametrize("name, path, kinds", [
    ("dm.item", "/geo/latitude", {"type", "range"}),
    ("dm.item", "/expire_time", {"type", "range"}),
    ("dm.recommend", "/request_num", {"type", "range"}),
    ("dm.recommend", "/pool_id", {"type", "pattern"}),  # x-lenient-optional: never removed
    ("dm.recommend", "/request_id", {"type", "remove", "pattern"}),  # pattern: only "", lenient forgives the rest
    ("dm.item", "/MD5", {"type", "remove"}),  # lenient accepts any string as MD5: no pattern defect
    ("cre.query", "/uid_type", {"type", "enum", "remove"}),
    ("cre.item", "/data/0/geo/longitude", {"type", "pattern"}),
    ("cre.item", "/data_type", {"type", "const", "remove"}),
    ("dm.action", "/action_time", {"type", "pattern"}),  # x-lenient-optional: never removed
])
def test_mutation_sites_of_document_examples(name, path, kinds):
    # white-box: which defects the mutation walker offers at a field of the (fully populated) example
    body = load_schema(name)["examples"][0]
    if name.startswith("dm."):
        body = dict(body, expire_time=1386917763) if name == "dm.item" else dict(body, request_num=50)
    schema = load_schema(name)
    sites = tool_strategies._sites(body, schema, registry().resolver(base_uri=schema["$id"]))
    assert {s.kind for s in sites if pointer(s.parts) == path} == kinds


# -- from_schema on its own ------------------------------------------------------------------------------

SCHEMA_NAMES = [f"{d}.{k}" for d in REQUEST_KINDS for k in REQUEST_KINDS[d] + RESPONSE_KINDS[d]]


@pytest.mark.parametrize("name", SCHEMA_NAMES)
def test_from_schema_alone_satisfies_the_json_schema(name):
    schema = load_schema(name)
    validator = Draft202012Validator(schema, registry=registry())

    @settings(FAST, max_examples=25)
    @given(from_schema(schema, registry()))
    def check(instance):
        assert validator.is_valid(instance), list(validator.iter_errors(instance))

    check()


HANDMADE = {
    "type": "object",
    "required": ["kind", "n"],
    "properties": {
        "kind": {"const": "x"},
        "n": {"type": "integer", "minimum": 3, "maximum": 5},
        "f": {"type": "number", "minimum": -1.5, "maximum": 2.5},
        "s": {"type": "string", "minLength": 2, "maxLength": 4},
        "p": {"type": "string", "pattern": "^[0-9]{3}_[a-f]{2,}$"},
        "both": {"type": ["string", "integer", "null"]},
        "e": {"enum": ["a", 1, None]},
        "list": {"type": "array", "minItems": 2, "items": {"$ref": "#/$defs/leaf"}},
        "map": {"type": "object", "additionalProperties": {"type": "boolean"}},
        "pool": {"type": "object", "properties": {"items": {"type": "array"}, "item_type": {"enum": ["0", "1"]}},
                 "dependentRequired": {"items": ["item_type"]}, "additionalProperties": False},
        "code": {"type": "integer", "enum": [0, 1]},
        "data": {"type": "string"},
        "msg": {"type": "string"},
    },
    "additionalProperties": False,
    "if": {"properties": {"code": {"const": 0}}, "required": ["code"]},
    "then": {"required": ["data"]},
    "else": {"required": ["msg"]},
    "$defs": {"leaf": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string", "minLength": 1}},
                       "additionalProperties": False}},
}


@settings(max_examples=100, deadline=None, database=None)
@given(from_schema(HANDMADE, registry()))
def test_from_schema_handles_the_keyword_subset(instance):
    Draft202012Validator(HANDMADE).validate(instance)


def test_from_schema_overrides_by_path_and_by_name():
    schema = {"type": "object", "required": ["a", "b"], "properties": {
        "a": {"type": "array", "minItems": 1, "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}},
        "b": {"type": "string"}}}
    strategy = from_schema(schema, registry(), overrides={"a/*/id": st.just("fixed"), "b": st.just("named")})

    @settings(max_examples=20, deadline=None, database=None)
    @given(strategy)
    def check(instance):
        assert instance["b"] == "named" and all(r["id"] == "fixed" for r in instance["a"])

    check()


def test_optional_properties_are_sometimes_present_and_sometimes_not():
    seen_with, seen_without = set(), set()

    @settings(max_examples=60, deadline=None, database=None)
    @given(requests("dm", "item"))
    def collect(body):
        (seen_with if "geo" in body else seen_without).add(True)

    collect()
    assert seen_with and seen_without


@pytest.mark.parametrize("call", [
    lambda: requests("xx", "item"), lambda: requests("cre", "recommend"), lambda: requests("dm", "query-response"),
    lambda: responses("cre", "query"), lambda: responses("dm", "bogus"), lambda: mutations("cre", "upload-response"),
], ids=["dialect", "cre-recommend", "dm-response-as-request", "cre-request-as-response", "dm-bogus", "mutate-response"])
def test_strategies_reject_unknown_kinds(call):
    with pytest.raises(ValueError):
        call()
