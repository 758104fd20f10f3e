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


@dataclass(frozen=True)
class Problem:
    file: str
    line: int
    column: int
    message: str
    severity: str = "error"  # "warning": the scenario loads, but may not mean what its author meant

    def __str__(self) -> str:
        label = "warning: " if self.severity == "warning" else ""
        return f"{self.file}:{self.line}:{self.column}: {label}{self.message}"


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
    problems = sorted((Problem(src.label, *_position(src.nodes, path), *said) for path, *said in found),
                      key=lambda p: (p.line, p.column))
    return problems, batches


LATENCY_SYNTAX = "MS, uniform:LO,HI or lognormal:MEDIAN,SIGMA (milliseconds; e.g. 50, uniform:10,200, lognormal:50,0.5)"


def latency_spec(spec):
    """A latency profile as a scenario's ``latency:`` takes it, from that form or from ``--latency``'s text.

    Raises ValueError naming what was expected."""
    if isinstance(spec, str):
        form, _, numbers = spec.strip().partition(":")
        try:
            values = [float(v) for v in (numbers or form).split(",")]
        except ValueError:
            raise ValueError(f"latency {spec!r}: expected {LATENCY_SYNTAX}") from None
        shapes = {("", 1): lambda: values[0], ("uniform", 2): lambda: {"uniform": values},
                  ("lognormal", 2): lambda: {"lognormal": {"median": values[0], "sigma": values[1]}}}
        shape = shapes.get(("" if not numbers else form.strip().lower(), len(values)))
        if shape is None:
            raise ValueError(f"latency {spec!r}: expected {LATENCY_SYNTAX}")
        spec = shape()
    found = schema_violations("scenario", {"name": "latency", "latency": spec}, strict=True)
    if found:
        raise ValueError(f"{found[0].message}; write {LATENCY_SYNTAX}")
    return spec


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
    if isinstance(then, list):
        if not then:
            yield f"{at}/then", f"rules[{i}].then is an empty list, so the rule never answers; give at least one answer"
        for k, item in enumerate(then):
            if isinstance(item, dict):
                yield from _answer_problems(f"rules[{i}].then[{k}]", f"{at}/then/{k}", item, when, src)
    elif isinstance(then, dict):
        yield from _answer_problems(f"rules[{i}].then", f"{at}/then", then, when, src)
        if rule.get("cycle"):
            yield f"{at}/cycle", (f"rules[{i}].cycle: true restarts a list of answers, but then is one answer; "
                                  "write then as a list, or drop cycle")
    if isinstance(when, dict):
        yield from _counter_problems(i, when)
        for block in ("match", "headers"):
            for key, spec in (when.get(block) or {}).items() if isinstance(when.get(block), dict) else ():
                problem = regex_problem(spec["regex"]) if isinstance(spec, dict) and isinstance(spec.get("regex"), str) else None
                if problem:
                    yield f"{at}/when/{block}/{_escape(key)}/regex", f"rules[{i}].when.{block}.{key}: {problem}"


def _header_problems(label: str, at: str, headers: dict):
    """Header names, framing headers and the fixed text of values (what templates fill in is checked per request)."""
    for name, value in headers.items():
        where = f"{at}/headers/{_escape(name)}"
        problem = name_problem(name)
        if problem is None and isinstance(value, str):
            problem = value_problem(render(value, None))
            problem = problem and f"{name}: the value {problem}"
        if problem:
            yield where, f"{label}.headers: {problem}"


def _answer_problems(name: str, at: str, then: dict, when, src: Source):
    """The mistakes of one answer (a then, or one item of a then list)."""
    if not any(k in then for k in ACTIONS):
        yield at, f"{name} does nothing: give one of {', '.join(ACTIONS)}"
    answers = [label for label, keys in (("code", ("code",)), ("recommend", ("recommend",)),
                                         ("a raw answer", ("status", "body", "body_file"))) if any(k in then for k in keys)]
    if then.get("passthrough") and answers:
        yield at, f"{name}: passthrough lets the engine answer, so {', '.join(answers)} would be ignored"
    elif len(answers) > 1 or ("body" in then and "body_file" in then):
        yield at, f"{name} gives several answers ({', '.join(answers)}); keep one"
    if "body_file" in then and isinstance(then["body_file"], str):
        yield from _body_file_problems(name, at, then["body_file"], src)
    if isinstance(then.get("headers"), dict):
        yield from _header_problems(name, at, then["headers"])
    if "recommend" in then and isinstance(when, dict):
        endpoints = _as_set(when.get("endpoint", "any"))
        if "any" not in endpoints and not endpoints & RECOMMEND_ENDPOINTS:
            yield f"{at}/recommend", (f"{name}.recommend answers recommendation requests, "
                                      f"but the rule only matches {', '.join(sorted(endpoints))}")


def _ordinal(n: int) -> str:
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _span(first: int, last: int) -> str:
    return f"{_ordinal(first)} only" if first == last else f"{_ordinal(first)} to the {_ordinal(last)}"


def _counter_problems(i: int, when: dict):
    """A rule its counters make dead, and counters written for the old counting (times counted matches)."""
    at = f"/rules/{i}/when"
    if when.get("probability") == 0:
        yield f"{at}/probability", f"rules[{i}] never answers: probability: 0 never draws it; remove the rule or raise p"
    times, after, every = (when.get(k) for k in ("times", "after", "every"))
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in (times, after or 1, every or 1)):
        return
    if after and after > 1 and times >= after:  # under the old counting, times < after never fired
        meant = times - after + 1
        yield (f"{at}/times", f"rules[{i}].when: after: {after}, times: {times} answers the {_span(after, after + times - 1)} "
               f"matching request (times counts answers given); mockcre 0.1 read it as the {_span(after, times)}: "
               f"for that, write times: {meant}", "warning")
    elif every and every > 1 and times > every:  # the old counting's idiom: every: 2, times: 4 for the 2nd and 4th
        yield (f"{at}/times", f"rules[{i}].when: every: {every}, times: {times} answers the {_ordinal(every)}, "
               f"{_ordinal(2 * every)}, … up to the {_ordinal(times * every)} matching request (times counts answers "
               f"given); mockcre 0.1 stopped at the {_ordinal(times)}: for that, write times: {times // every}",
               "warning")


def _body_file_problems(name: str, at: str, file_name: str, src: Source):
    where = f"{at}/body_file"
    if src.base_dir is None:
        yield where, f"{name}.body_file needs a scenario loaded from a file (its folder holds the body)"
        return
    try:
        resolve_inside(src.base_dir, file_name)
    except ValueError as exc:
        yield where, f"{name}.body_file: {exc}"


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
    """A rule after a catch-all that covers its endpoints and kinds never runs: a catch-all has no condition
    but endpoint and kind, and no counter that lets a request past it (times, after or every > 1, probability < 1)."""
    catch_alls = []
    for i, rule in enumerate(rules):
        when = rule.get("when") if isinstance(rule, dict) else None
        if not isinstance(when, dict):
            continue
        endpoints, kinds = _as_set(when.get("endpoint", "any")), _as_set(when.get("kind", "any"))
        for j, (eps, kds) in catch_alls:
            if ("any" in eps or endpoints <= eps) and ("any" in kds or kinds <= kds):
                yield f"/rules/{i}", (f"rules[{i}] is unreachable: rules[{j}] before it takes every such request "
                                      "(give that one a condition or a counter, or move this one first)")
                break
        then = rule.get("then")
        acts = any(isinstance(t, dict) and any(k in t for k in ACTIONS)
                   for t in (then if isinstance(then, list) else [then]))
        if acts and _takes_every_request(when):
            catch_alls.append((i, (endpoints, kinds)))


def _takes_every_request(when: dict) -> bool:
    if any(k in when for k in ("match", "headers", "state", "times")):
        return False
    return when.get("after", 1) == 1 and when.get("every", 1) == 1 and when.get("probability", 1) >= 1


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
