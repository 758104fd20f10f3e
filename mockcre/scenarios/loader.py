"""Reading scenario files safely and finding every mistake in them, with file, line and column."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from mockcre.engine.clock import parse_moment
from mockcre.contracts.schema_check import schema_violations
from mockcre.resources import scenarios_dir

from . import fixtures
from .matching import compiled_regex

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


_SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: ~10x faster on shop.yaml
MAX_NODES = 200_000  # a scenario this large when its aliases are expanded is a "billion laughs", not a test


def _parse(text: str, label: str, base_dir, path) -> Source:
    loader = _SAFE_LOADER(text)
    try:
        nodes = loader.get_single_node()  # one parse: the nodes give positions, the data is built from them
        if nodes is not None and _expanded_size(nodes) > MAX_NODES:
            raise ScenarioError([Problem(label, 1, 1, f"the scenario expands to more than {MAX_NODES:,} values through "
                                         "YAML aliases (&anchor/*alias); is it an alias bomb?")])
        data = loader.construct_document(nodes) if nodes is not None else None  # safe: no Python object tags, ever
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        raise ScenarioError([Problem(label, *where, f"not valid YAML: {exc.problem or exc}")]) from exc
    except yaml.YAMLError as exc:
        raise ScenarioError([Problem(label, 1, 1, f"not valid YAML: {exc}")]) from exc
    except Exception as exc:  # noqa: BLE001 -- a tagged scalar the constructor cannot make (!!float n, !!binary ?)
        raise ScenarioError([Problem(label, 1, 1, f"not valid YAML: a value cannot be read ({exc})")]) from exc
    finally:
        loader.dispose()
    return Source(data, label, base_dir, nodes, path)


def _expanded_size(root) -> int:
    """How many values the document has once aliases are expanded, counted without expanding them."""
    sizes: dict[int, int] = {}
    order, stack = [], [root]
    while stack:  # children before parents, each shared (aliased) node once
        node = stack.pop()
        if id(node) in sizes:
            continue
        sizes[id(node)] = 0
        order.append(node)
        if isinstance(node, yaml.MappingNode):
            stack.extend(n for pair in node.value for n in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
    for node in reversed(order):
        children = [n for pair in node.value for n in pair] if isinstance(node, yaml.MappingNode) else \
            node.value if isinstance(node, yaml.SequenceNode) else []
        sizes[id(node)] = min(1 + sum(sizes[id(c)] for c in children), MAX_NODES + 1)
    return sizes[id(root)]


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
                if isinstance(spec, dict) and isinstance(spec.get("regex"), str):
                    try:
                        compiled_regex(spec["regex"])
                    except re.error as exc:
                        yield f"{at}/when/{block}/{_escape(key)}/regex", f"rules[{i}].when.{block}.{key}: regex does not compile: {exc}"


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
