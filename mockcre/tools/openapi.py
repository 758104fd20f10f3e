"""``mockcre openapi``: an OpenAPI 3.1 document of both dialects, built from ``schemas/`` at run time.

Nothing here restates a contract. Each schema file becomes one component under its own name
(``cre.item``, ``dm.recommend-response``…) with its ``$schema``/``$id`` removed and every
``$ref`` rewritten to point into ``#/components/schemas``; its ``x-*`` keywords stay (OpenAPI
allows extensions, and they say what lenient mode forgives). Paths come from
``mockcre.common.domain.PATHS``, examples from the files' ``examples``. What this module adds is only
what the schema files cannot say: which body goes to which path, that every reply is HTTP 200
with either the reply or the dialect's error envelope (told apart by ``code``), the JSON bodies
of 404 and 405, the servers, and under each operation the semantic rules of
``mockcre.contracts.semantic`` that apply to its bodies.

The ``examples`` are the documents' raw text, some of which break the documents' own tables.
Tools such as Prism and Schemathesis skip or refuse an example its schema rejects, so each
example's ``value`` is the raw text with its file's ``x-example-corrections`` applied (a JSON
Patch, RFC 6902, per example: replace, remove, move), and the raw text stays beside it in
``x-document-example``.
"""

from __future__ import annotations

import copy
import json
import sys
from pathlib import Path

from mockcre.common import __version__
from mockcre.contracts import RULES
from mockcre.dialects import DIALECTS
from mockcre.common.domain import PATHS
from mockcre.common.resources import load_schema, schema_names

JSON = "application/json"
SCHEMA_REF = "#/components/schemas/"
LOCAL_MOCK = {"url": "http://127.0.0.1:{port}", "description": "mockcre serve (local mock of both dialects)",
              "variables": {"port": {"default": "8088", "description": "mockcre serve --port"}}}
CRE_SERVER = {"url": "https://sdtj.y.qq.com:8008", "description": "cre (云推荐引擎) production host"}
DM_DATA_SERVER = {"url": "http://data.dm.qcloud.com:8088", "description": "dm (智能推荐) data host: item and action reports, POST /"}
DM_SERVICE_SERVER = {"url": "http://service.dm.qcloud.com:8088", "description": "dm (智能推荐) service host: recommendations, POST /"}

#: The files that are not part of the HTTP API (the scenario format is mockcre's own).
NOT_API = {"scenario"}

#: endpoint -> (summary, request bodies, success replies, error envelope, servers, tag)
OPERATIONS = {
    "cre.upload": ("cre item (data_type \"1\") or action (data_type \"2\") upload, production namespace",
                   ["cre.item", "cre.action"], ["cre.upload-response"], "cre.error-envelope", [CRE_SERVER], "cre"),
    "cre.test_upload": ("cre item or action upload, test namespace (kept apart from production)",
                        ["cre.item", "cre.action"], ["cre.upload-response"], "cre.error-envelope", [CRE_SERVER], "cre"),
    "cre.query": ("cre recommendation, production namespace",
                  ["cre.query"], ["cre.query-response"], "cre.error-envelope", [CRE_SERVER], "cre"),
    "cre.test_query": ("cre recommendation, test namespace",
                       ["cre.query"], ["cre.query-response"], "cre.error-envelope", [CRE_SERVER], "cre"),
    "dm.data": ("dm item (data_type 1) or action (data_type 2) report (mockcre's path for the data host's POST /)",
                ["dm.item", "dm.action"], ["dm.report-response"], "dm.error-response", [], "dm"),
    "dm.service": ("dm recommendation (mockcre's path for the service host's POST /)",
                   ["dm.recommend"], ["dm.recommend-response"], "dm.error-response", [], "dm"),
    "dm.root": ("dm, as the real hosts take it: reports on data.dm.qcloud.com, recommendations on "
                "service.dm.qcloud.com; mockcre routes by the Host header (data.* / service.*), else by the body "
                "(data_type present: a report)",
                ["dm.item", "dm.action", "dm.recommend"], ["dm.report-response", "dm.recommend-response"],
                "dm.error-response", [DM_DATA_SERVER, DM_SERVICE_SERVER], "dm"),
}

HTTP_ERROR = {
    "title": "mockcre HTTP error",
    "description": "The JSON body of a 404 (no such path) or 405 (wrong method; the Allow header lists the right one). "
                   "Protocol errors are never answered this way: they are HTTP 200 with the dialect's envelope.",
    "type": "object",
    "required": ["error", "status", "message"],
    "properties": {"error": {"type": "string"}, "status": {"type": "integer"}, "message": {"type": "string"},
                   "field": {"type": "string", "description": "the condition of a request pattern at fault"}},
}


def _rewrite_refs(node, own: str):
    """``$ref``s of file ``own`` made absolute within the OpenAPI document."""
    if isinstance(node, list):
        return [_rewrite_refs(n, own) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key == "$ref" and isinstance(value, str):
            out[key] = _ref(value, own)
        else:
            out[key] = _rewrite_refs(value, own)
    return out


def _ref(ref: str, own: str) -> str:
    target, _, pointer = ref.partition("#")
    if not target:
        name = own
    elif target.endswith(".schema.json"):
        name = Path(target).name[: -len(".schema.json")]
    else:
        raise ValueError(f"schemas/{own}.schema.json: cannot embed a reference outside schemas/: {ref!r}")
    return SCHEMA_REF + name + pointer


def component(name: str) -> dict:
    """Schema file ``name`` as an OpenAPI component: no ``$schema``/``$id``, references rewritten."""
    schema = copy.deepcopy(load_schema(name))
    schema.pop("$schema", None)
    schema.pop("$id", None)
    return _rewrite_refs(schema, name)


def _code(dialect: str, success: bool) -> dict:
    zero = DIALECTS[dialect].ok_code
    return {"properties": {"code": {"const": zero} if success else {"not": {"const": zero}}}}


def _examples(names: list[str]) -> dict:
    out = {}
    for name in names:
        schema = load_schema(name)
        found = schema.get("examples", [])
        patches = schema.get("x-example-corrections", [[]] * len(found))
        for i, (value, patch) in enumerate(zip(found, patches, strict=True)):
            key = name if len(found) == 1 else f"{name}-{i + 1}"
            source = f"The document's example (schemas/{name}.schema.json examples[{i}])"
            out[key] = {"summary": schema.get("title", name), "value": value, "description": source + "."}
            if patch:
                notes = "; ".join(f"{_what(step)}: {step['why']}" for step in patch)
                out[key] |= {"value": corrected(value, patch), "x-document-example": value,
                             "description": f"{source}, corrected to pass the schema ({notes}). "
                                            "The raw text is in x-document-example."}
    return out


def corrected(example, patch: list[dict]):
    """``example`` with a JSON Patch of ``replace``, ``remove`` and ``move`` steps applied (a new object)."""
    out = copy.deepcopy(example)
    for step in patch:
        op = step["op"]
        if op == "move":
            parent, key = _parent(out, step["from"])
            value = parent.pop(key)
        elif op == "replace":
            value = copy.deepcopy(step["value"])
        elif op != "remove":
            raise ValueError(f"x-example-corrections: unsupported op {op!r} (replace, remove or move)")
        parent, key = _parent(out, step["path"])
        if op == "remove":
            del parent[key]
        else:
            parent[key] = value
    return out


def _parent(document, pointer: str):
    """The container that JSON Pointer ``pointer`` ends in, and the key or index within it."""
    *path, last = [token.replace("~1", "/").replace("~0", "~") for token in pointer.split("/")[1:]]
    for token in path:
        document = document[int(token) if isinstance(document, list) else token]
    return document, int(last) if isinstance(document, list) else last


def _what(step: dict) -> str:
    if step["op"] == "move":
        return f"{step['from']!r} renamed {step['path']!r}"
    if step["op"] == "remove":
        return f"{step['path']} removed"
    return f"{step['path']} set to {json.dumps(step['value'], ensure_ascii=False)}"


def _rules(names: list[str]) -> str:
    """The semantic rules that judge bodies ``names``, one line each, from the rule catalogue."""
    lines = []
    for r in RULES.values():
        judged = [n for n in names if tuple(n.split(".", 1)) in r.kinds]
        if judged:
            severity = r.severity if not r.strict_severity else f"{r.severity}, {r.strict_severity} in strict mode"
            lines.append(f"- `{r.id}` ({severity}; {', '.join(judged)}): {r.summary}")
    if not lines:
        return ""
    return ("\n\nSemantic rules: what mockcre checks beyond the schema (mockcre.contracts.semantic). A request that "
            "breaks an error rule is answered with code -1, a warning is only journalled; on replies they judge a "
            "real server (mockcre proxy, mockcre conformance).\n" + "\n".join(lines))


def _json_content(schema: dict, examples: dict) -> dict:
    content = {"schema": schema}
    if examples:
        content["examples"] = examples
    return {JSON: content}


def _one_of(refs: list[dict]) -> dict:
    return refs[0] if len(refs) == 1 else {"oneOf": refs}


def _operation(endpoint: str) -> dict:
    summary, requests, replies, envelope, _servers, tag = OPERATIONS[endpoint]
    dialect = endpoint.split(".")[0]
    zero = json.dumps(DIALECTS[dialect].ok_code)
    success = [{"allOf": [{"$ref": SCHEMA_REF + r}], **_code(dialect, True), "description": f"{r} with code {zero}"}
               for r in replies]
    reply = {"oneOf": success + [{"$ref": SCHEMA_REF + envelope}]}
    secret = "token (cre)" if dialect == "cre" else "MD5 = md5(bid&request_id&TOKEN) (dm)"
    return {
        "operationId": endpoint.replace(".", "_"),
        "tags": [tag],
        "summary": summary,
        "description": f"Credentials travel in the body: {secret}. A gzip (x-gzip) or deflate body with "
                       "Content-Encoding is accepted too, stacked codings undone last first. Strict mode refuses any "
                       "Content-Type but application/json or a +json type, and a charset other than UTF-8, with "
                       "code -1 naming the header; lenient mode (the default) reads a body that is JSON under any "
                       "Content-Type (curl -d sends a form type) and decodes a declared charset (GBK, GB18030, "
                       "Big5…), with a warning." + _rules(requests + replies),
        "requestBody": {"required": True, "content": _json_content(_one_of([{"$ref": SCHEMA_REF + r} for r in requests]),
                                                                   _examples(requests))},
        "responses": {
            "200": {"description": "The reply, or the dialect's error envelope (code -1 format error, -2 system error, "
                                   "-3 algorithm error / empty result): the real service answers every protocol error "
                                   "with HTTP 200.",
                    "content": _json_content(reply, _examples(replies + ([envelope] if envelope in _file_names() else [])))},
            "404": {"$ref": "#/components/responses/NotFound"},
            "405": {"$ref": "#/components/responses/MethodNotAllowed"},
        },
    }


_MATCHER = {"description": "A scalar (equal as text: 1 matches \"1\"), or operators that must all hold: equals, regex "
                              "(RE2, a search: anchor with ^...$ for the whole value), contains, in, gt, gte, lt, lte, "
                              "present.",
            "oneOf": [{"type": ["string", "number", "boolean", "null"]},
                      {"type": "object", "minProperties": 1, "additionalProperties": False, "properties": {
                          "equals": {"type": ["string", "number", "boolean", "null"]}, "regex": {"type": "string"},
                          "contains": {"type": "string"}, "present": {"type": "boolean"},
                          "in": {"type": "array", "items": {"type": ["string", "number", "boolean", "null"]}},
                          **{op: {"type": "number"} for op in ("gt", "gte", "lt", "lte")}}}]}
_NAMES = {"oneOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}
REQUEST_PATTERN = {
    "title": "request pattern",
    "description": "A scenario rule's when, as JSON: every condition given must hold (docs/scenarios.md). On the "
                   "journal, match also reaches the entry's own user, item, code, kind, dialect, partition and seq.",
    "type": "object", "additionalProperties": False,
    "properties": {"endpoint": {**_NAMES, "description": "cre.query, dm.service…, a list, or any"},
                   "kind": {**_NAMES, "description": "item, action, query, recommend, a list, or any"},
                   "match": {"type": "object", "additionalProperties": _MATCHER,
                             "description": "field path (data[*].uid) -> matcher"},
                   "headers": {"type": "object", "additionalProperties": _MATCHER,
                               "description": "header name (any case) -> matcher"}},
}
PATTERN_EXAMPLE = {"endpoint": "cre.query", "match": {"user_id": "u1"}}
_ENTRIES = {"type": "array", "items": {"type": "object", "description": "a journal entry (docs/endpoints.md#the-journal)"}}
_FOUND = {
    "type": "object", "required": ["count", "entries"],
    "properties": {
        "count": {"type": "integer", "minimum": 0}, "entries": _ENTRIES,
        "near_misses": {"description": "Only when nothing matches: the closest entries and the conditions they fail.",
                        "type": "array", "items": {"type": "object", "required": ["entry", "differences"], "properties": {
                            "entry": {"type": "object"},
                            "differences": {"type": "array", "items": {
                                "type": "object", "required": ["field", "expected", "received"],
                                "properties": {"field": {"type": "string"}, "expected": {},
                                               "received": {"type": "array"}}}}}}}}}


def _admin_read(summary: str, reply: dict, reply_example: dict) -> dict:
    """A POST under /__admin that reads the journal with a request pattern."""
    error = {"description": "Not a pattern: the message and field say which condition and why.",
             "content": _json_content({"$ref": SCHEMA_REF + "HttpError"}, {})}
    return {"post": {
        "tags": ["admin"], "summary": summary,
        "description": "Changes nothing, but, as a POST, is refused (403) when a browser marks it cross-site, like the "
                       "admin writes; needs the admin token when the server has one.",
        "requestBody": {"required": True, "content": _json_content(
            {"$ref": SCHEMA_REF + "RequestPattern"}, {"pattern": {"summary": "cre queries for user u1", "value": PATTERN_EXAMPLE}})},
        "responses": {"200": {"description": "The journal's answer.", "content": _json_content(
            reply, {"answer": {"summary": "what the journal holds", "value": reply_example}})},
                      "400": error, "403": error}},
        "servers": [LOCAL_MOCK]}


def _file_names() -> list[str]:
    return [n for n in schema_names() if n not in NOT_API]


def build() -> dict:
    """The OpenAPI 3.1 document (a fresh dict each call)."""
    schemas = {name: component(name) for name in _file_names()}
    schemas["cre.error-envelope"] = {
        "title": "cre error envelope",
        "description": "Every cre error reply: the upload reply's shape (schemas/cre.upload-response.schema.json) "
                       "with a code other than \"0\": \"-1\" format error, \"-2\" system error, \"-3\" algorithm error.",
        "allOf": [{"$ref": SCHEMA_REF + "cre.upload-response"}], **_code("cre", False)}
    schemas["HttpError"] = HTTP_ERROR
    schemas["RequestPattern"] = REQUEST_PATTERN
    paths = {}
    for path, endpoint in PATHS.items():
        servers = OPERATIONS[endpoint][4]
        item = {"post": _operation(endpoint)}
        if servers:
            item["servers"] = servers + [LOCAL_MOCK]
        else:
            item["servers"] = [LOCAL_MOCK]
            item["description"] = "mockcre only: the real dm hosts take POST / (see that path)."
        paths[path] = item
    near_miss = {"entry": {"seq": 1, "endpoint": "cre.query", "body": {"user_id": "u2"}},
                 "differences": [{"field": "user_id", "expected": "u1", "received": ["u2"]}]}
    paths["/__admin/requests/find"] = _admin_read("Journal entries that match a pattern (near misses when none do)",
                                                  _FOUND, {"count": 0, "entries": [], "near_misses": [near_miss]})
    paths["/__admin/requests/count"] = _admin_read("How many journal entries match a pattern", {
        "type": "object", "required": ["count"], "properties": {"count": {"type": "integer", "minimum": 0}}},
        {"count": 2})
    return {
        "openapi": "3.1.0",
        "jsonSchemaDialect": "https://json-schema.org/draft/2020-12/schema",
        "info": {
            "title": "Tencent recommendation APIs: cre (云推荐引擎) and dm (智能推荐)",
            "version": __version__,
            "description": "Generated by `mockcre openapi` from mockcre's JSON Schemas (schemas/*.schema.json, the "
                           "strict contract: the documents' tables). mockcre's default lenient mode also accepts "
                           "what the `x-lenient` and `x-lenient-optional` keywords describe, with a warning. "
                           "Every protocol error is HTTP 200 with the dialect's envelope: cre "
                           "{\"seq_no\", \"code\": \"-1\", \"message\"}, dm {\"request_id\", \"code\": -1, \"msg\"}.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [LOCAL_MOCK, CRE_SERVER, DM_DATA_SERVER, DM_SERVICE_SERVER],
        "tags": [{"name": "cre", "description": "云推荐引擎: token, versioned envelope, every value a string"},
                 {"name": "dm", "description": "智能推荐: MD5 signature, one record per request, integer codes"},
                 {"name": "admin", "description": "mockcre's own: verify what the mock received, from any language"}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "responses": {
                "NotFound": {"description": "No such path.", "content": _json_content({"$ref": SCHEMA_REF + "HttpError"}, {})},
                "MethodNotAllowed": {
                    "description": "The path takes POST only.",
                    "headers": {"Allow": {"description": "the methods the path takes", "schema": {"type": "string"}}},
                    "content": _json_content({"$ref": SCHEMA_REF + "HttpError"}, {})},
            },
        },
    }


def dumps(document: dict, yaml_format: bool = False) -> str:
    if yaml_format:
        import yaml

        return yaml.safe_dump(document, allow_unicode=True, sort_keys=False, width=120)
    return json.dumps(document, ensure_ascii=False, indent=2) + "\n"


def main(args) -> int:
    out = getattr(args, "output", None)
    document = build()
    text = dumps(document, yaml_format=bool(out) and out.endswith((".yaml", ".yml")))
    if not out or out == "-":
        sys.stdout.write(text)
        return 0
    try:
        Path(out).write_text(text, encoding="utf-8")
    except OSError as exc:
        sys.stderr.write(f"mockcre openapi: cannot write {out}: {exc}\n")
        return 2
    sys.stderr.write(f"mockcre openapi: wrote {out} ({len(document['paths'])} paths, "
                     f"{len(document['components']['schemas'])} schemas)\n")
    return 0
