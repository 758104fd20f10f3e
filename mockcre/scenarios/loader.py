"""Reading scenario files safely and finding every mistake in them, with file, line and column."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mockcre.model.clock import parse_moment
from mockcre.contracts.schema_check import schema_violations
from mockcre.common.resources import scenarios_dir

from . import fixtures
from .matching import regex_problem, render
from .reply_headers import name_problem, value_problem

ANSWERS = ("code", "recommend", "status", "body", "body_file", "fault", "passthrough")
ACTIONS = ANSWERS + ("delay_ms", "next_state")
RECOMMEND_ENDPOINTS = {"cre.query", "cre.test_query", "dm.service"}
_RECOMMEND_KINDS = {"query", "recommend"}
_CONDITIONS = ("match", "headers", "times", "after", "every", "probability", "state")


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class ScenarioError(ValueError):
    """A scenario that cannot be loaded; ``problems`` lists each as ``file:line:column: message``."""

    def __init__(self, problems):
        self.items = list(problems)  # Problem objects, for tools that want line and column
        self.problems = [str(p) for p in self.items]
        super().__init__("; ".join(self.problems))


@dataclass
class Source:
    data: object
    label: str  # file name, or <admin> / <mapping>
    base_dir: Path | None  # body_file is resolved inside this folder
    nodes: yaml.Node | None = None  # for positions; None for a mapping given in Python
    path: Path | None = None


def read(source, base_dir=None, label: str | None = None) -> Source:
    """A scenario from a file path, YAML/JSON text, or a mapping. YAML errors raise ScenarioError."""
    if isinstance(source, dict):
        return Source(source, label or "<mapping>", Path(base_dir) if base_dir else None)
    name = source.decode("utf-8", "replace") if isinstance(source, bytes) else source
    if isinstance(name, str) and _BARE_NAME.fullmatch(name.strip()):
        name = name.strip()
        # a file of that name first (a str only: admin bytes are never a path), else a bundled scenario
        source = Path(name) if isinstance(source, str) and Path(name).is_file() else bundled(name)
        if source is None:
            raise ScenarioError([Problem(label or name, 1, 1, f"no scenario file or bundled scenario {name!r}; "
                                         f"bundled: {', '.join(bundled_names())}")])
    if isinstance(source, Path) or (isinstance(source, str) and "\n" not in source and source.endswith((".yaml", ".yml", ".json"))):
        path = Path(source)
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError([Problem(str(path), 1, 1, f"cannot read the scenario: {exc}")]) from exc
        return _parse(text, label or str(path), Path(base_dir) if base_dir else path.resolve().parent, path.resolve())
    if isinstance(source, bytes):
        source = source.decode("utf-8", errors="replace")
    return _parse(source, label or "<text>", Path(base_dir) if base_dir else None, None)


_BARE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}")  # no folder, no YAML: a (short) file name at most
_SUFFIXES = ("", ".yaml", ".yml", ".json")


def bundled_names() -> list[str]:
    """The scenarios that ship with mockcre, by bare name (``shop``, ``errors``, …)."""
    return sorted(p.stem for p in scenarios_dir().iterdir() if p.suffix in _SUFFIXES[1:])


def bundled(name: str) -> Path | None:
    """The bundled scenario file of ``name``, with or without its suffix; None when there is none."""
    for suffix in _SUFFIXES if not name.endswith(_SUFFIXES[1:]) else ("",):
        candidate = scenarios_dir() / (name + suffix)
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # a name the file system refuses (too long…) is no bundled scenario
            return None
    return None


_TIMESTAMP = "tag:yaml.org,2002:timestamp"


class _ScenarioLoader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml when present: ~10x faster
    """The safe loader, reading an unquoted date as text (as JSON would): values are JSON types only."""

    yaml_implicit_resolvers = {first: [(tag, pattern) for tag, pattern in resolvers if tag != _TIMESTAMP]
                               for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}

_JSON_TAGS = {f"tag:yaml.org,2002:{name}" for name in ("str", "int", "float", "bool", "null", "map", "seq")}
MAX_DEPTH = 64  # nesting of mappings and lists, counted before anything recursive reads the text
MAX_EXPANSION = 10  # aliases may repeat at most this many times the values the text itself holds
_CONTAINERS = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CONTAINER_ENDS = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _parse(text: str, label: str, base_dir, path) -> Source:
    try:
        aliased = _check_events(text, label)  # the event stream is flat: depth and tags are checked before composing
        loader = _ScenarioLoader(text)
        try:
            nodes = loader.get_single_node()  # one parse: the nodes give positions, the data is built from them
            if nodes is not None and aliased:
                _check_expansion(nodes, label)
            data = loader.construct_document(nodes) if nodes is not None else None  # safe: no Python object tags
        finally:
            loader.dispose()
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError([Problem(label, *where, f"not valid YAML: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(label, 1, 1, f"not valid YAML: {exc}")]) from exc
    except ScenarioError:
        raise
    except Exception as exc:  # noqa: BLE001 -- a tagged scalar the constructor cannot make (!!float n, ?)
        raise ScenarioError([Problem(label, 1, 1, f"not valid YAML: a value cannot be read ({exc})")]) from exc
    return Source(data, label, base_dir, nodes, path)


def _check_events(text: str, label: str) -> bool:
    """Refuse nesting deeper than :data:`MAX_DEPTH` and tags of non-JSON types, reading the flat event stream
    (composing a deep document recurses in C, and a deep enough one overflows the stack); True if it has aliases."""
    depth, aliased = 0, False
    for event in yaml.parse(text, Loader=_ScenarioLoader):
        tag = getattr(event, "tag", None)
        if tag is not None and tag not in _JSON_TAGS and tag != "!":
            shown = tag.replace("tag:yaml.org,2002:", "!!")
            raise ScenarioError([Problem(label, event.start_mark.line + 1, event.start_mark.column + 1,
                                         f"not valid YAML for a scenario: the tag {shown} is not allowed; values are "
                                         "JSON types (text, numbers, true/false, null, lists, mappings): "
                                         "write it as quoted text")])
        if isinstance(event, _CONTAINERS):
            depth += 1
            if depth > MAX_DEPTH:
                raise ScenarioError([Problem(label, event.start_mark.line + 1, event.start_mark.column + 1,
                                             f"the scenario nests lists and mappings deeper than {MAX_DEPTH} levels; "
                                             "no scenario needs that: flatten it")])
        elif isinstance(event, _CONTAINER_ENDS):
            depth -= 1
        elif isinstance(event, yaml.AliasEvent):
            aliased = True
    return aliased


def _check_expansion(root, label: str) -> None:
    """An alias bomb ("billion laughs") is told by what aliases multiply, not by size: the values once aliases
    are expanded may be at most :data:`MAX_EXPANSION` times those written, and as deep as :data:`MAX_DEPTH`."""
    sizes: dict[int, tuple[int, int]] = {}  # id -> (values once expanded, depth once expanded)
    order, stack = [], [root]
    while stack:  # children before parents, each shared (aliased) node once
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = (0, 0)
        order.append(node)
        stack.extend(_children(node))
    limit = MAX_EXPANSION * len(order)
    for node in reversed(order):
        children = [sizes[id(c)] for c in _children(node)]
        size = min(1 + sum(s for s, _ in children), limit + 1)
        depth = 0 if isinstance(node, yaml.ScalarNode) else 1 + max((d for _, d in children), default=0)
        sizes[id(node)] = (size, depth)
    size, depth = sizes[id(root)]
    if size > limit:
        raise ScenarioError([Problem(label, 1, 1, f"YAML aliases (&anchor/*alias) expand the scenario's {len(order):,} "
                                     f"values more than {MAX_EXPANSION} times over; is it an alias bomb? Write the "
                                     "repeated parts out, or repeat them less")])
    if depth > MAX_DEPTH:
        raise ScenarioError([Problem(label, 1, 1, f"YAML aliases nest the scenario deeper than {MAX_DEPTH} levels; "
                                     "no scenario needs that: flatten it")])


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return node.value if isinstance(node, yaml.SequenceNode) else []


def lint(src: Source, now: float) -> list[Problem]:
    """Every problem of a scenario: schema, meaning (dead rules, empty answers, regexes) and fixtures."""
    return check_source(src, now)[0]


def check_source(src: Source, now: float):
    """``(problems, prepared fixtures)``: fixtures are validated once and kept for loading."""
    data = src.data
    if not isinstance(data, dict):
        return [Problem(src.label, 1, 1, "a scenario is a mapping with at least a name")], []
    odd_keys = list(_non_text_keys(data))
    if odd_keys:  # YAML allows 1:, true: or ? as keys; a scenario (like JSON) has text keys only
        return [Problem(src.label, *_position(src.nodes, path), f"key {key!r} is not text; quote it")
                for path, key in odd_keys], []
    found: list[tuple[str, str]] = []
    if "clock" in data:  # YAML reads 2017-01-01T00:00:00Z as a datetime: kept as epoch seconds from here on
        try:
            data["clock"] = now = parse_moment(data["clock"])  # fixtures are reported at the scenario's own time
        except ValueError as exc:
            found.append(("/clock", f"clock: {exc}"))
            del data["clock"]
    found += [(v.path, v.message.replace(" in the document's table", ""))
              for v in schema_violations("scenario", data, strict=True)]
    found += _duplicate_keys(src.nodes)
    rules = data.get("rules") if isinstance(data.get("rules"), list) else []
    for i, rule in enumerate(rules):
        if isinstance(rule, dict):
            found += _rule_problems(i, rule, src)
    found += _unreachable(rules)
    batches = []
    if isinstance(data.get("fixtures"), dict):
        batches, fixture_problems = fixtures.prepare(data["fixtures"], now, bool(data.get("strict")))
        found += [(f"/fixtures{p}", m) for p, m in fixture_problems]
    problems = sorted((Problem(src.label, *_position(src.nodes, path), message) for path, message in found),
                      key=lambda p: (p.line, p.column))
    return problems, batches


def _non_text_keys(data, path=""):
    stack = [(data, path)]
    while stack:
        node, where = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if not isinstance(key, str):
                    yield where, key
                else:
                    stack.append((value, f"{where}/{_escape(key)}"))
        elif isinstance(node, list):
            stack.extend((v, f"{where}/{i}") for i, v in enumerate(node))


def _rule_problems(i: int, rule: dict, src: Source):
    then, when = rule.get("then"), rule.get("when")
    at = f"/rules/{i}"
    if isinstance(then, dict):
        if not any(k in then for k in ACTIONS):
            yield f"{at}/then", f"rules[{i}].then does nothing: give one of {', '.join(ACTIONS)}"
        answers = [name for name, keys in (("code", ("code",)), ("recommend", ("recommend",)),
                                            ("a raw answer", ("status", "body", "body_file"))) if any(k in then for k in keys)]
        if then.get("passthrough") and answers:
            yield f"{at}/then", f"rules[{i}].then: passthrough lets the engine answer, so {', '.join(answers)} would be ignored"
        elif len(answers) > 1 or ("body" in then and "body_file" in then):
            yield f"{at}/then", f"rules[{i}].then gives several answers ({', '.join(answers)}); keep one"
        if "body_file" in then and isinstance(then["body_file"], str):
            yield from _body_file_problems(i, then["body_file"], src)
        if isinstance(then.get("headers"), dict):
            yield from _header_problems(i, then["headers"])
        if "recommend" in then and isinstance(when, dict):
            endpoints = _as_set(when.get("endpoint", "any"))
            if "any" not in endpoints and not endpoints & RECOMMEND_ENDPOINTS:
                yield f"{at}/then/recommend", (f"rules[{i}].then.recommend answers recommendation requests, "
                                               f"but the rule only matches {', '.join(sorted(endpoints))}")
    if isinstance(when, dict):
        for block in ("match", "headers"):
            for key, spec in (when.get(block) or {}).items() if isinstance(when.get(block), dict) else ():
                problem = regex_problem(spec["regex"]) if isinstance(spec, dict) and isinstance(spec.get("regex"), str) else None
                if problem:
                    yield f"{at}/when/{block}/{_escape(key)}/regex", f"rules[{i}].when.{block}.{key}: {problem}"


def _header_problems(i: int, headers: dict):
    """Header names, framing headers and the fixed text of values (what templates fill in is checked per request)."""
    for name, value in headers.items():
        where = f"/rules/{i}/then/headers/{_escape(name)}"
        problem = name_problem(name)
        if problem is None and isinstance(value, str):
            problem = value_problem(render(value, None))
            problem = problem and f"{name}: the value {problem}"
        if problem:
            yield where, f"rules[{i}].then.headers: {problem}"


def _body_file_problems(i, name: str, src: Source):
    where = f"/rules/{i}/then/body_file"
    if src.base_dir is None:
        yield where, f"rules[{i}].then.body_file needs a scenario loaded from a file (its folder holds the body)"
        return
    try:
        resolve_inside(src.base_dir, name)
    except ValueError as exc:
        yield where, f"rules[{i}].then.body_file: {exc}"


def resolve_inside(folder: Path, name: str) -> Path:
    """``name`` under ``folder``, refusing anything that leaves it (``..``, absolute paths, links out)."""
    folder = folder.resolve()
    target = (folder / name).resolve()
    if not target.is_relative_to(folder):
        raise ValueError(f"{name!r} is outside the scenario's folder {folder}")
    if not target.is_file():
        raise ValueError(f"{name!r} does not exist in {folder}")
    return target


def _unreachable(rules):
    """A rule after a catch-all (no condition but endpoint/kind) that covers its endpoints never runs."""
    catch_alls = []
    for i, rule in enumerate(rules):
        when = rule.get("when") if isinstance(rule, dict) else None
        if not isinstance(when, dict):
            continue
        endpoints, kinds = _as_set(when.get("endpoint", "any")), _as_set(when.get("kind", "any"))
        for j, (eps, kds) in catch_alls:
            if ("any" in eps or endpoints <= eps) and ("any" in kds or kinds <= kds):
                yield f"/rules/{i}", f"rules[{i}] is unreachable: rules[{j}] before it matches every such request"
                break
        then = rule.get("then") if isinstance(rule.get("then"), dict) else {}
        answers = any(k in then for k in ANSWERS) and not then.get("passthrough")
        if answers and not any(k in when for k in _CONDITIONS):
            catch_alls.append((i, (endpoints, kinds)))


def _as_set(value) -> set:
    return set(value) if isinstance(value, list) else {value}


def _duplicate_keys(node, seen_path=""):
    if isinstance(node, yaml.MappingNode):
        keys = set()
        for key_node, value_node in node.value:
            key = key_node.value
            if key in keys:
                yield f"{seen_path}/{_escape(key)}", f"key {key!r} appears twice; YAML keeps only the last"
            keys.add(key)
            yield from _duplicate_keys(value_node, f"{seen_path}/{_escape(key)}")
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            yield from _duplicate_keys(child, f"{seen_path}/{i}")


def _escape(key) -> str:
    return str(key).replace("~", "~0").replace("/", "~1")


def _position(nodes, pointer: str) -> tuple[int, int]:
    """Line and column (1-based) of the deepest YAML node on a JSON pointer; keys point at the key."""
    node, mark = nodes, (nodes.start_mark if nodes is not None else None)
    for part in [p.replace("~1", "/").replace("~0", "~") for p in pointer.split("/")[1:]]:
        if isinstance(node, yaml.MappingNode):
            pair = next(((k, v) for k, v in node.value if k.value == part), None)
            if pair is None:
                break
            mark = pair[0].start_mark
            node = pair[1]
        elif isinstance(node, yaml.SequenceNode) and part.isdigit() and int(part) < len(node.value):
            node = node.value[int(part)]
            mark = node.start_mark
        else:
            break
    return (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)


def dumps_body(body) -> bytes:
    return body.encode("utf-8") if isinstance(body, str) else json.dumps(body, ensure_ascii=False).encode("utf-8")
