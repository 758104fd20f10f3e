"""The schema side of the contracts: document examples, required fields, enums and bounds, both modes."""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator

from mockcre.common import domain
from mockcre.contracts import ERROR, WARNING, validate
from mockcre.contracts.violations import pointer
from mockcre.common.domain import REQUEST_KINDS, RESPONSE_KINDS
from mockcre.common.resources import load_schema, schema_names

ALL_KINDS = [(d, k) for d in REQUEST_KINDS for k in REQUEST_KINDS[d] + RESPONSE_KINDS[d]]
EXAMPLES = [pytest.param(d, k, i, id=f"{d}.{k}[{i}]")
            for d, k in ALL_KINDS for i in range(len(load_schema(f"{d}.{k}")["examples"]))]

# What each schema's description decides about its own document example in strict mode.
STRICT_EXAMPLE_ERRORS = {
    ("dm", "item"): {"/request_id", "/expire_time", "/free", "/small_type "},
    ("dm", "action"): {"/request_id"},
    ("dm", "recommend"): {"/request_id"},
    ("cre", "item"): {"/data/0/rule_id"},
}
# ... and the warnings lenient mode gives instead, with the rule that forgives each.
LENIENT_EXAMPLE_WARNINGS = {
    ("dm", "item"): {("/request_id", "request-id-shape"), ("/expire_time", "lenient.coerced-type"),
                     ("/free", "lenient.coerced-type"), ("/small_type ", "lenient.unknown-field")},
    ("dm", "action"): {("/request_id", "request-id-shape"), ("/uid", "uid-shape")},
    ("dm", "recommend"): {("/request_id", "request-id-shape"), ("/uid", "uid-shape")},
    ("cre", "item"): {("/data/0/rule_id", "lenient.unknown-field")},
}


def errors(violations):
    return [v for v in violations if v.severity == ERROR]


# -- the schema files themselves ---------------------------------------------------------------------

def test_every_kind_has_a_schema_with_an_example():
    names = set(schema_names())
    for d, k in ALL_KINDS:
        assert f"{d}.{k}" in names
        assert load_schema(f"{d}.{k}")["examples"], f"{d}.{k} has no document example"


@pytest.mark.parametrize("name", schema_names())
def test_schema_files_are_valid_draft_2020_12(name):
    Draft202012Validator.check_schema(load_schema(name))


def _enum(name, *parts):
    node = load_schema(name)
    for part in parts:
        node = node[part]
    return node


@pytest.mark.parametrize("constant, schema_value", [
    (set(domain.CRE_ACTIONS), lambda: set(_enum("cre.action", "$defs", "action", "properties", "action_id", "enum"))),
    (set(domain.CRE_UID_TYPES), lambda: set(_enum("common", "$defs", "cre_uid_type", "enum"))),
    (set(domain.DM_UID_TYPES), lambda: set(_enum("common", "$defs", "dm_uid_type", "enum"))),
    (set(domain.DM_ACTIONS), lambda: set(_enum("dm.action", "properties", "action_type", "enum"))),
    (set(domain.DM_SERVICE_TYPES), lambda: set(_enum("dm.recommend", "properties", "service_type", "enum"))),
    (domain.DM_MAX_REQUEST_NUM, lambda: _enum("dm.recommend", "properties", "request_num", "maximum")),
    (domain.DM_WEIGHT_MAX, lambda: _enum("dm.recommend-response", "properties", "data", "items", "properties", "weight", "maximum")),
    (domain.DESCRIBE_MAX_CHARS, lambda: _enum("cre.item", "$defs", "item", "properties", "describe", "maxLength")),
    (domain.DESCRIBE_MAX_CHARS, lambda: _enum("dm.item", "properties", "describe", "maxLength")),
    (domain.DM_DEFAULT_UID_TYPE in domain.DM_UID_TYPES, lambda: True),
], ids=["cre-actions", "cre-uid-types", "dm-uid-types", "dm-actions", "dm-service-types", "dm-request-num",
        "dm-weight", "cre-describe", "dm-describe", "dm-default-uid-type"])
def test_domain_constants_agree_with_schemas(constant, schema_value):
    assert constant == schema_value()


# -- document examples --------------------------------------------------------------------------------

@pytest.mark.parametrize("dialect, kind, index", EXAMPLES)
def test_example_passes_lenient_mode(example, dialect, kind, index):
    assert errors(validate(example(f"{dialect}.{kind}", index), dialect, kind)) == []


@pytest.mark.parametrize("dialect, kind, index", EXAMPLES)
def test_example_fails_strict_mode_exactly_at_documented_quirks(example, dialect, kind, index):
    found = errors(validate(example(f"{dialect}.{kind}", index), dialect, kind, strict=True))
    assert {v.path for v in found} == STRICT_EXAMPLE_ERRORS.get((dialect, kind), set())
    assert len(found) == len(STRICT_EXAMPLE_ERRORS.get((dialect, kind), ()))


@pytest.mark.parametrize("dialect, kind, index", EXAMPLES)
def test_example_lenient_warnings_carry_expected_rules(example, dialect, kind, index):
    found = validate(example(f"{dialect}.{kind}", index), dialect, kind)
    assert {(v.path, v.rule) for v in found if v.severity == WARNING} == LENIENT_EXAMPLE_WARNINGS.get((dialect, kind), set())


# -- required fields ----------------------------------------------------------------------------------

def _required_cases():
    for dialect, kinds in REQUEST_KINDS.items():
        for kind in kinds:
            schema = load_schema(f"{dialect}.{kind}")
            levels = [((), schema)]
            if dialect == "cre" and kind in ("item", "action"):
                levels.append((("data", 0), schema["$defs"][kind]))
            if dialect == "cre" and kind == "action":
                levels.append((("data", 0, "item_action", 0), schema["$defs"]["item_action"]))
            for prefix, record in levels:
                optional = record.get("x-lenient-optional", {})
                for name in record["required"]:
                    yield pytest.param(dialect, kind, prefix + (name,), name in optional,
                                       id=f"{dialect}.{kind}:{pointer(prefix + (name,))}")


REQUIRED_CASES = list(_required_cases())


def _without(body, parts):
    body = copy.deepcopy(body)
    target = body
    for part in parts[:-1]:
        target = target[part]
    del target[parts[-1]]
    return body


def test_required_cases_cover_every_request_kind():
    kinds = {(p.values[0], p.values[1]) for p in REQUIRED_CASES}
    assert kinds == {(d, k) for d in REQUEST_KINDS for k in REQUEST_KINDS[d]}
    assert any(p.values[3] for p in REQUIRED_CASES), "x-lenient-optional fields are exercised"


@pytest.mark.parametrize("dialect, kind, parts, lenient_optional", REQUIRED_CASES)
def test_missing_required_field_lenient(example, dialect, kind, parts, lenient_optional):
    body = _without(example(f"{dialect}.{kind}"), parts)
    found = validate(body, dialect, kind)
    path = pointer(parts)
    if lenient_optional:
        assert errors(found) == []
        assert [(v.path, v.severity, v.rule) for v in found if v.path == path] == [(path, WARNING, "lenient.optional-missing")]
    else:
        assert [(v.path, v.rule) for v in errors(found)] == [(path, "schema.required")]
        assert "missing" in errors(found)[0].message


@pytest.mark.parametrize("dialect, kind, parts, lenient_optional", REQUIRED_CASES)
def test_missing_required_field_strict(example, dialect, kind, parts, lenient_optional):
    original = example(f"{dialect}.{kind}")
    path = pointer(parts)
    # the example's own strict errors stay, except those inside the field that was removed
    before = [v for v in errors(validate(original, dialect, kind, strict=True))
              if v.path != path and not v.path.startswith(path + "/")]
    after = errors(validate(_without(original, parts), dialect, kind, strict=True))
    new = [v for v in after if v not in before]
    assert [(v.path, v.rule) for v in new] == [(path, "schema.required")]
    assert len(after) == len(before) + 1


# -- enums, documented bounds and lenient forgiveness -------------------------------------------------------------------------

GEO_CRE = {"latitude": "22.558220", "longitude": "114.084778"}
GEO_DM = {"latitude": 22.55822, "longitude": 114.084778}
E_ENUM, E_PATTERN = (ERROR, "schema.enum"), (ERROR, "schema.pattern")
OK = None

# (schema, where to set, value, lenient outcome, strict outcome, fragments the error message must contain)
BOUND_CASES = [
    ("cre.action", ("data", 0, "action_id"), "100", E_ENUM, E_ENUM, ['"101"', '"128"']),
    ("cre.action", ("data", 0, "action_id"), "129", E_ENUM, E_ENUM, ['"101"', '"128"']),
    ("cre.action", ("data", 0, "action_id"), "128", OK, OK, []),
    ("cre.action", ("data", 0, "uid_type"), "7", E_ENUM, E_ENUM, ['"0"', '"6"']),
    ("cre.action", ("data", 0, "uid_type"), "6", OK, OK, []),
    ("cre.query", ("uid_type",), "6", (WARNING, "uid-type-6-in-query"), E_ENUM, ['"0"', '"5"', "got \"6\""]),
    ("cre.query", ("uid_type",), "7", E_ENUM, E_ENUM, ['"0"', '"5"']),
    ("dm.action", ("uid_type",), 2, E_ENUM, E_ENUM, ["0 (", "1 (", "3 (", "4 (", "got number 2"]),
    ("dm.recommend", ("uid_type",), 5, E_ENUM, E_ENUM, ["0 (", "4 ("]),
    ("dm.action", ("uid_type",), "3", (WARNING, "lenient.coerced-type"), (ERROR, "schema.enum"), ["3 ("]),
    ("cre.item", ("data", 0, "platform"), "pc", E_ENUM, E_ENUM, ['"ios"', '"android"', '"h5"']),
    ("cre.action", ("data", 0, "platform"), "windows", E_ENUM, E_ENUM, ['"ios"', '"android"', '"h5"']),
    ("dm.item", ("platform",), 4, E_ENUM, E_ENUM, ["0 (all platforms", "3 (PC)"]),
    ("dm.item", ("platform",), 0, OK, OK, []),
    ("cre.item", ("data", 0, "publish"), "0", E_ENUM, E_ENUM, ['"1"', '"2"']),
    ("cre.item", ("data", 0, "publish"), "2", OK, OK, []),
    ("dm.item", ("publish",), 2, E_ENUM, E_ENUM, ["1 (on shelf", "0 (off shelf"]),
    ("dm.item", ("publish",), 0, OK, OK, []),
    ("cre.item", ("data", 0, "geo", "latitude"), "91", E_PATTERN, E_PATTERN, ["-90 to 90"]),
    ("cre.item", ("data", 0, "geo", "latitude"), "-90.5", E_PATTERN, E_PATTERN, ["-90 to 90"]),
    ("cre.item", ("data", 0, "geo", "latitude"), "90.0", OK, OK, []),
    ("cre.item", ("data", 0, "geo", "longitude"), "181", E_PATTERN, E_PATTERN, ["-180 to 180"]),
    ("cre.item", ("data", 0, "geo", "longitude"), "-180", OK, OK, []),
    ("cre.query", ("geo", "latitude"), "-91", E_PATTERN, E_PATTERN, ["-90 to 90"]),
    ("cre.query", ("geo", "longitude"), "180.5", E_PATTERN, E_PATTERN, ["-180 to 180"]),
    ("cre.action", ("data", 0, "geo", "latitude"), "91", E_PATTERN, E_PATTERN, ["-90 to 90"]),
    ("cre.action", ("data", 0, "geo", "longtitude"), "181", E_PATTERN, E_PATTERN, ["-180 to 180"]),
    ("dm.item", ("geo", "latitude"), 91, (ERROR, "schema.maximum"), (ERROR, "schema.maximum"), ["at most 90"]),
    ("dm.item", ("geo", "longitude"), 181, (ERROR, "schema.maximum"), (ERROR, "schema.maximum"), ["at most 180"]),
    ("dm.recommend", ("geo", "latitude"), -91, (ERROR, "schema.minimum"), (ERROR, "schema.minimum"), ["at least -90"]),
    ("dm.action", ("geo", "longitude"), -180.5, (ERROR, "schema.minimum"), (ERROR, "schema.minimum"), ["at least -180"]),
    ("dm.item", ("geo", "latitude"), 90, OK, OK, []),
    ("dm.item", ("geo", "country"), "XYZ", (WARNING, "lenient.country-code"), E_ENUM, ["ISO 3166-1 alpha-3", '"XYZ"']),
    ("dm.item", ("geo", "country"), "CN", (WARNING, "lenient.country-code"), E_ENUM, ["ISO 3166-1 alpha-3", '"CN"', 'send "CHN"']),
    ("cre.item", ("data", 0, "geo", "country"), "XYZ", (WARNING, "lenient.country-code"), E_ENUM, ["ISO 3166-1 alpha-3"]),
    ("cre.query", ("geo", "country"), "CN", (WARNING, "lenient.country-code"), E_ENUM, ["ISO 3166-1 alpha-3"]),
    ("cre.query", ("geo", "country"), "chn", (WARNING, "lenient.country-code"), E_ENUM, ["ISO 3166-1 alpha-3", 'send "CHN"']),
    ("cre.query", ("geo", "country"), "USA", OK, OK, []),
    ("cre.item", ("data", 0, "describe"), "描" * 30721, (ERROR, "schema.maxLength"), (ERROR, "schema.maxLength"), ["30720", "30721"]),
    ("cre.item", ("data", 0, "describe"), "描" * 30720, OK, OK, []),
    ("dm.item", ("describe",), "x" * 30721, (ERROR, "schema.maxLength"), (ERROR, "schema.maxLength"), ["30720", "30721"]),
    ("dm.item", ("describe",), "x" * 30720, OK, OK, []),
    ("dm.recommend-response", ("data", 0, "weight"), 1000001, (ERROR, "schema.maximum"), (ERROR, "schema.maximum"), ["1000000"]),
    ("dm.recommend-response", ("data", 3, "weight"), -1, (ERROR, "schema.minimum"), (ERROR, "schema.minimum"), ["at least 0"]),
    ("dm.recommend-response", ("data", 0, "weight"), 1000000, OK, OK, []),
    ("dm.recommend", ("request_num",), 201, (WARNING, "request-num-over-200"), (ERROR, "schema.maximum"), ["at most 200"]),
    ("dm.recommend", ("request_num",), 0, (ERROR, "schema.minimum"), (ERROR, "schema.minimum"), ["at least 1"]),
    ("dm.recommend", ("request_num",), 200, OK, OK, []),
    ("dm.recommend", ("request_num",), 1, OK, OK, []),
    ("dm.recommend", ("request_id",), "1700000000000_123", OK, OK, []),
    ("dm.action", ("request_id",), "1700000000000_123456", OK, OK, []),
    ("dm.recommend", ("request_id",), "1700000000000", (WARNING, "request-id-shape"), E_PATTERN, ["13-digit"]),
    ("dm.item", ("request_id",), "170000000000_123", (WARNING, "request-id-shape"), E_PATTERN, ["13-digit"]),
    ("dm.action", ("request_id",), "1700000000000_12", (WARNING, "request-id-shape"), E_PATTERN, ["13-digit"]),
    ("dm.action", ("request_id",), "1700000000_123", (WARNING, "request-id-shape"), E_PATTERN, ["13-digit"]),
    ("dm.recommend", ("request_id",), "", E_PATTERN, E_PATTERN, ["13-digit"]),
    ("cre.action", ("data", 0, "oper_time"), "1483200000000", (WARNING, "timestamp-milliseconds"), E_PATTERN, ["10-digit"]),
    ("cre.item", ("data", 0, "item_time"), "1483200000000", (WARNING, "timestamp-milliseconds"), E_PATTERN, ["10-digit"]),
    ("dm.item", ("item_time",), "1386817569000", (WARNING, "timestamp-milliseconds"), E_PATTERN, ["10-digit"]),
    ("dm.action", ("action_time",), "1386817569000", (WARNING, "timestamp-milliseconds"), E_PATTERN, ["10-digit"]),
    ("dm.item", ("expire_time",), 1386917763000, (WARNING, "timestamp-milliseconds"), (ERROR, "schema.maximum"), ["9999999999"]),
    ("dm.item", ("expire_time",), 1386917763, OK, OK, []),
    ("cre.action", ("data", 0, "oper_time"), "148320000", E_PATTERN, E_PATTERN, ["10-digit"]),
    # the other documented forgiveness of lenient mode, each an error in strict mode
    ("cre.item", ("data", 0, "tags"), "男装;休闲裤", (WARNING, "tags-string"), (ERROR, "schema.type"), ["an object"]),
    ("cre.action", ("data", 0, "extend"), [{"k": "v"}], (WARNING, "extend-array"), (ERROR, "schema.type"), ["an object"]),
    ("dm.action", ("MD5",), "anything", (WARNING, "md5-shape"), E_PATTERN, ["32 hexadecimal digits"]),
    ("cre.query", ("request_num",), 500, (WARNING, "lenient.coerced-type"), (ERROR, "schema.type"), ["a string"]),
    ("dm.recommend", ("request_num",), "50", (WARNING, "lenient.coerced-type"), (ERROR, "schema.type"), ["an integer"]),
    ("dm.item", ("latitude",), 22.5, (WARNING, "lenient.unknown-field"), (ERROR, "schema.additionalProperties"), ["geo.latitude"]),
    ("cre.item", ("data", 0, "lv2calss"), "二级", OK, OK, []),  # the table's spelling is accepted in strict mode too
    ("cre.action", ("data", 0, "geo", "longtitude"), "114.084778", OK, OK, []),
    ("cre.query", ("pool", "items"), ["1"], OK, OK, []),
]


def _set(body, parts, value):
    target = body
    for part in parts[:-1]:
        target = target[part]
    target[parts[-1]] = value


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
@pytest.mark.parametrize("name, parts, value, lenient, strict_outcome, fragments",
                         [pytest.param(*c, id=f"{c[0]}:{pointer(c[1])}={str(c[2])[:20]}") for c in BOUND_CASES])
def test_enums_and_bounds(example, strict, name, parts, value, lenient, strict_outcome, fragments):
    dialect, kind = name.split(".")
    original = example(name)
    if name in ("dm.item", "dm.action", "dm.recommend") and "geo" in parts and "geo" not in original:
        original["geo"] = dict(GEO_DM)
    if name in ("cre.action",) and "geo" in parts and "geo" not in original["data"][0]:
        original["data"][0]["geo"] = dict(GEO_CRE)
    body = copy.deepcopy(original)
    _set(body, parts, value)
    path = pointer(parts)
    found = validate(body, dialect, kind, strict=strict)
    at_path = [v for v in found if v.path == path]
    expected = strict_outcome if strict else lenient
    if expected is None:
        assert at_path == []
    else:
        assert expected in {(v.severity, v.rule) for v in at_path}, found
        if expected[0] == ERROR:
            message = next(v.message for v in at_path if (v.severity, v.rule) == expected)
            for fragment in fragments:
                assert fragment in message
        else:
            assert not any(v.severity == ERROR for v in at_path)
    # nothing else changed: the errors elsewhere are the example's own
    elsewhere = lambda vs: sorted((v.path, v.rule) for v in vs if v.severity == ERROR and v.path != path)
    assert elsewhere(found) == elsewhere(validate(original, dialect, kind, strict=strict))


# -- patterns follow JSON Schema (ECMA-262) semantics ------------------------------------------------------

@pytest.mark.parametrize("name, parts, value", [
    ("cre.action", ("data", 0, "oper_time"), "1483200000\n"),
    ("dm.recommend", ("request_id",), "1700000000000_123\n"),
], ids=["oper_time", "request_id"])
def test_pattern_rejects_trailing_newline_in_strict_mode(example, name, parts, value):
    # JSON Schema 2020-12 patterns are ECMA-262 regexes, where '$' matches only at the very end;
    # Python's re.search lets '$' match before a final newline, so "1483200000\n" would pass.
    dialect, kind = name.split(".")
    body = example(name)
    _set(body, parts, value)
    found = validate(body, dialect, kind, strict=True)
    assert (pointer(parts), "schema.pattern") in {(v.path, v.rule) for v in errors(found)}, found


@pytest.mark.parametrize("strict", [False, True], ids=["lenient", "strict"])
def test_pool_items_require_item_type(example, strict):
    body = example("cre.query")
    del body["pool"]["item_type"]
    found = errors(validate(body, "cre", "query", strict=strict))
    assert [(v.path, v.rule) for v in found] == [("/pool/item_type", "schema.dependentRequired")]
    assert "pool.items" in found[0].message
    del body["pool"]["items"]  # no ids to rank: item_type is not needed
    assert errors(validate(body, "cre", "query", strict=strict)) == []
