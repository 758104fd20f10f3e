"""``mockcre openapi`` (issue 10): an OpenAPI 3.1 document built from schemas/, checked by independent tools.

openapi-spec-validator checks the document; Schemathesis (from PyPI) drives a real ``mockcre
serve`` with it, as an independent cross-check that the server answers what the document says.
Every process is bounded by a timeout and killed in ``finally``; ports are free ones.
"""

from __future__ import annotations

import copy
import json
import re
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest
import yaml

from mockcre.app import PATHS
from mockcre.openapi import build, component
from mockcre.resources import load_schema, schema_names

from test_serve_cli import Served, run

API_SCHEMAS = [n for n in schema_names() if n != "scenario"]
REQUEST_SCHEMAS = {"cre.upload": {"cre.item", "cre.action"}, "cre.test_upload": {"cre.item", "cre.action"},
                   "cre.query": {"cre.query"}, "cre.test_query": {"cre.query"}, "dm.data": {"dm.item", "dm.action"},
                   "dm.service": {"dm.recommend"}, "dm.root": {"dm.item", "dm.action", "dm.recommend"}}
CRE_HOST, DM_DATA_HOST, DM_SERVICE_HOST = "https://sdtj.y.qq.com:8008", "http://data.dm.qcloud.com:8088", \
    "http://service.dm.qcloud.com:8088"
SCHEMATHESIS_TIMEOUT = 55  # seconds, per run; the runs take 5-15 s on two cores


@pytest.fixture(scope="module")
def document() -> dict:
    return build()


def _refs(node):
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def _validator(document: dict, schema: dict) -> jsonschema.Draft202012Validator:
    """A validator of ``schema`` whose ``#/components/...`` references resolve in ``document``."""
    return jsonschema.Draft202012Validator({**document, **schema})


# -- the command --------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["openapi.json", "openapi.yaml"])
def test_openapi_command_writes_a_valid_document(tmp_path, name):
    from openapi_spec_validator import validate

    out = tmp_path / name
    done = run("openapi", "-o", str(out))
    assert done.returncode == 0, done.stderr
    assert "7 paths" in done.stderr
    text = out.read_text(encoding="utf-8")
    document = json.loads(text) if name.endswith(".json") else yaml.safe_load(text)
    assert document == json.loads(json.dumps(build()))  # the same document in either format
    validate(document)  # openapi-spec-validator: raises on any problem, references included


def test_openapi_command_writes_to_stdout_by_default():
    done = run("openapi")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["openapi"] == "3.1.0"


def test_openapi_command_reports_an_unwritable_file(tmp_path):
    done = run("openapi", "-o", str(tmp_path / "missing-dir" / "openapi.json"))
    assert done.returncode == 2
    assert "cannot write" in done.stderr


def test_the_validator_catches_what_a_broken_document_would_have():
    """The validation above means something: a dangling reference and a bad schema are both refused."""
    from openapi_spec_validator import validate

    broken = build()
    broken["components"]["schemas"]["cre.item"]["properties"]["version"] = {"$ref": "#/components/schemas/nope"}
    with pytest.raises(Exception, match="nope"):
        validate(broken)
    broken = build()
    broken["components"]["schemas"]["dm.item"]["properties"]["bid"] = {"type": 5}
    with pytest.raises(Exception):
        validate(broken)


# -- built from schemas/, not a second source ----------------------------------------------------


def test_every_schema_file_is_embedded_as_it_is(document):
    """Each component is its file, less $schema/$id, with references made document-local; nothing else."""
    schemas = document["components"]["schemas"]
    assert set(API_SCHEMAS) <= set(schemas)
    for name in API_SCHEMAS:
        original = copy.deepcopy(load_schema(name))
        original.pop("$schema")
        original.pop("$id")
        text = json.dumps(schemas[name], ensure_ascii=False)
        # map the rewritten references back: the result must be the file itself
        text = re.sub(r'"\$ref": "#/components/schemas/' + re.escape(name) + r'(#|/)', r'"$ref": "#\1', text)
        text = re.sub(r'"\$ref": "#/components/schemas/([a-z.\-]+?)(/[^"]*)?"',
                      lambda m: f'"$ref": "{m.group(1)}.schema.json#{m.group(2) or ""}"', text)
        assert json.loads(text) == original, name
        assert component(name) == schemas[name]


def test_a_schema_change_reaches_the_document(monkeypatch):
    import mockcre.openapi as openapi

    real = openapi.load_schema

    def patched(name):
        schema = copy.deepcopy(real(name))
        if name == "dm.item":
            schema["properties"]["bid"]["description"] = "changed in schemas/"
        return schema

    monkeypatch.setattr(openapi, "load_schema", patched)
    assert openapi.build()["components"]["schemas"]["dm.item"]["properties"]["bid"]["description"] == "changed in schemas/"


def test_references_stay_inside_the_document(document):
    refs = set(_refs(document))
    assert refs, "the schemas reference each other"
    assert all(r.startswith("#/components/") for r in refs), sorted(r for r in refs if not r.startswith("#/components/"))
    assert "#/components/schemas/common/$defs/cre_token" in refs  # a shared definition, by its place in common
    assert "#/components/schemas/cre.upload-response/properties/code" in refs  # a pointer into another file
    for schema in document["components"]["schemas"].values():
        assert "$id" not in schema and "$schema" not in schema


def test_lenient_keywords_are_kept_as_extensions(document):
    common = document["components"]["schemas"]["common"]["$defs"]
    assert common["seconds_string"]["x-lenient"]["rule"] == "timestamp-milliseconds"
    assert "x-lenient-optional" in document["components"]["schemas"]["dm.recommend"]


# -- paths, bodies, replies, servers, examples ----------------------------------------------------


def test_every_path_with_its_request_and_replies(document):
    assert set(document["paths"]) == set(PATHS)
    for path, endpoint in PATHS.items():
        item = document["paths"][path]
        assert set(item) == {"post", "servers"} | ({"description"} if endpoint in ("dm.data", "dm.service") else set())
        op = item["post"]
        schema = op["requestBody"]["content"]["application/json"]["schema"]
        named = {r.rsplit("/", 1)[1] for r in _refs(schema)}
        assert named == REQUEST_SCHEMAS[endpoint], path
        assert op["requestBody"]["required"] is True
        assert set(op["responses"]) == {"200", "404", "405"}
        reply = op["responses"]["200"]["content"]["application/json"]["schema"]
        envelope = "cre.error-envelope" if endpoint.startswith("cre") else "dm.error-response"
        assert {"$ref": f"#/components/schemas/{envelope}"} in reply["oneOf"], path
    assert document["components"]["responses"]["MethodNotAllowed"]["headers"]["Allow"]


def test_servers_name_the_real_hosts_and_a_local_mock(document):
    urls = [s["url"] for s in document["servers"]]
    assert urls == ["http://127.0.0.1:{port}", CRE_HOST, DM_DATA_HOST, DM_SERVICE_HOST]
    assert document["servers"][0]["variables"]["port"]["default"] == "8088"
    for path, endpoint in PATHS.items():
        urls = [s["url"] for s in document["paths"][path]["servers"]]
        assert urls[-1] == "http://127.0.0.1:{port}"
        if endpoint.startswith("cre."):
            assert urls[:-1] == [CRE_HOST]
        elif endpoint == "dm.root":
            assert urls[:-1] == [DM_DATA_HOST, DM_SERVICE_HOST]
        else:
            assert urls[:-1] == []  # /dm/data and /dm/service are mockcre's own paths


def test_every_document_example_is_in_the_document(document):
    shown = []
    for item in document["paths"].values():
        op = item["post"]
        for media in [op["requestBody"]["content"]["application/json"],
                      op["responses"]["200"]["content"]["application/json"]]:
            shown += [e["value"] for e in media.get("examples", {}).values()]
    for name in API_SCHEMAS:
        for example in load_schema(name).get("examples", []):
            assert example in shown, name


def test_reply_examples_match_exactly_one_branch_of_their_reply(document):
    """Each reply example validates against its path's 200 schema: the oneOf branches do not overlap."""
    checked = 0
    for path, item in document["paths"].items():
        media = item["post"]["responses"]["200"]["content"]["application/json"]
        validator = _validator(document, media["schema"])
        for name, example in media["examples"].items():
            errors = list(validator.iter_errors(example["value"]))
            assert not errors, (path, name, [e.message for e in errors])
            checked += 1
    assert checked >= 10


def test_error_envelopes_match_only_the_error_branch(document):
    for path, endpoint in PATHS.items():
        schema = document["paths"][path]["post"]["responses"]["200"]["content"]["application/json"]["schema"]
        validator = _validator(document, schema)
        if endpoint.startswith("cre"):
            envelope = {"seq_no": "1", "code": "-1", "message": "format error"}
            success_shaped = {"seq_no": "1", "code": "0", "message": "format error"}
        else:
            envelope = {"request_id": "1", "code": -2, "msg": "system error"}
            success_shaped = {"request_id": "1", "code": 0, "msg": "system error"}
        assert validator.is_valid(envelope), path
        if endpoint in ("cre.query", "cre.test_query", "dm.service"):
            assert not validator.is_valid(success_shaped), path  # a success needs the ranking


def test_request_examples_validate_or_deviate_as_documented(document):
    """The request examples are shown as the documents print them: cre.action and cre.query pass the strict
    schema; the others deviate from the documents' own tables and pass mockcre's lenient contract."""
    from mockcre.contracts import validate

    for name in ("cre.action", "cre.query"):
        example = load_schema(name)["examples"][0]
        schema = {"$ref": f"#/components/schemas/{name}"}
        assert _validator(document, schema).is_valid(example), name
    for name in ("cre.item", "dm.item", "dm.action", "dm.recommend"):
        example = load_schema(name)["examples"][0]
        dialect, kind = name.split(".")
        assert not [v for v in validate(example, dialect, kind) if v.severity == "error"], name  # lenient: accepted


# -- Schemathesis against our own server -----------------------------------------------------------


@pytest.fixture(scope="module")
def served_with_document(tmp_path_factory):
    pytest.importorskip("schemathesis", reason="Schemathesis comes with the test extra: pip install -e '.[test]'")
    folder = tmp_path_factory.mktemp("schemathesis")
    spec = folder / "openapi.json"
    done = run("openapi", "-o", str(spec))
    assert done.returncode == 0, done.stderr
    server = Served(folder)
    try:
        server.wait_ready()
        yield server, spec, folder
    finally:
        server.close()


def _schemathesis(url: str, spec: Path, folder: Path, *args: str) -> tuple[int, str, int]:
    """``st run`` bounded in time; returns (exit code, output, test cases generated)."""
    command = [sys.executable, "-m", "schemathesis.cli", "run", str(spec), "--url", url, "--seed", "1",
               "--max-examples", "3", "--workers", "2", "--request-timeout", "5", "--no-color", *args]
    try:
        done = subprocess.run(command, cwd=folder, capture_output=True, text=True, timeout=SCHEMATHESIS_TIMEOUT,
                              stdin=subprocess.DEVNULL, env=_no_color_env())
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"Schemathesis took over {SCHEMATHESIS_TIMEOUT} s: {exc.stdout!r:.2000}")
    output = done.stdout + done.stderr
    found = re.search(r"(\d+) generated", output)
    return done.returncode, output, int(found.group(1)) if found else 0


def _no_color_env() -> dict:
    import os

    return {**os.environ, "NO_COLOR": "1"}


def test_schemathesis_valid_requests_get_documented_replies(served_with_document):
    """Valid requests of every operation (the documents' examples, boundary values, fuzzed ones): every answer
    is HTTP 200, JSON, and valid against the reply-or-envelope schema; wrong methods get 405 with Allow."""
    server, spec, folder = served_with_document
    code, output, cases = _schemathesis(server.url, spec, folder, "--mode", "positive",
                                        "--phases", "examples,coverage,fuzzing")
    assert code == 0, output[-6000:]
    assert cases >= 500, output[-3000:]
    print(f"Schemathesis, valid requests: {cases} test cases passed")


def test_schemathesis_invalid_requests_get_documented_envelopes(served_with_document):
    """Invalid requests: never a server error, and every answer is the dialect's documented envelope.

    The real service answers protocol errors with HTTP 200 and an envelope, so Schemathesis's check
    that invalid data is refused with a 4xx (negative_data_rejection) does not apply and is left out.

    Found by this run (outside mockcre.openapi): the -1 envelope echoes a seq_no / request_id of any JSON
    type (a request with "seq_no": {} is answered "seq_no": {}), while every reply schema allows a string
    or null only (dialects' ``echo``). This test fails until one of the two gives way.
    """
    server, spec, folder = served_with_document
    code, output, cases = _schemathesis(server.url, spec, folder, "--mode", "negative",
                                        "--phases", "examples,coverage,fuzzing",
                                        "--checks", "not_a_server_error,status_code_conformance,"
                                                    "content_type_conformance,response_schema_conformance")
    assert cases >= 100, output[-3000:]
    assert code == 0, output[-6000:]
    print(f"Schemathesis, invalid requests: {cases} test cases passed")
