"""pytest plugin (entry point ``pytest11``): a real mockcre server for your tests, reset before each one.

Installing mockcre (from a checkout or its wheel: it is not on PyPI) is all it takes; then, in any test::

    def test_upload(mockcre):
        my_client.upload(base_url=mockcre.url, ...)          # the code under test, over real HTTP
        mockcre.assert_called("cre.upload", item_id="a1")

- ``mockcre_server`` (session): a :class:`mockcre.server.ThreadedServer` on a free 127.0.0.1 port
  in a background thread, one per pytest process (so one per ``pytest-xdist`` worker).
- ``mockcre`` (function): a :class:`MockCre` handle; store, journal and scenario states are reset
  before each test in-process (no restart; microseconds).
- ``@pytest.mark.mockcre(scenario=..., strict=..., allow_violations=...)``.
- A test whose code under test sent a request that breaks the contract (any error-severity
  violation) fails at teardown with each violation listed, unless ``allow_violations=True``.
- ``--mockcre-strict`` makes strict the default; ``--mockcre-scenario-dir DIR`` adds a folder where
  scenarios are looked up. The header names the server; ``-v`` adds a summary of what it received.

Importing this module stays cheap (Flask and the contracts load when a test first uses the server),
because pytest imports it in every session of every project where mockcre is installed.
"""

from __future__ import annotations

import difflib
import re
import socket
from pathlib import Path

import pytest

from mockcre import __version__

MARKER_ARGS = ("scenario", "strict", "allow_violations")
META_FIELDS = ("kind", "dialect", "partition", "seq")
CLOSEST_SHOWN = 3  # near misses spelled out by assert_called
LISTED_SHOWN = 10  # requests listed in a failure message
SCENARIO_SUFFIXES = ("", ".yaml", ".yml", ".json")

_SESSION = pytest.StashKey["_Session"]()


# -- hooks -------------------------------------------------------------------------------------


def pytest_addoption(parser):
    group = parser.getgroup("mockcre", "mockcre: fake Tencent recommendation API (cre and dm)")
    group.addoption("--mockcre-strict", action="store_true", default=False,
                    help="check every request against the strict contract (a marker's strict= still wins)")
    group.addoption("--mockcre-scenario-dir", action="append", default=[], metavar="DIR",
                    help="folder where @pytest.mark.mockcre(scenario=...) and mockcre.load_scenario() look for "
                         "scenario files, after the test file's own folder (repeatable)")


def pytest_configure(config):
    config.addinivalue_line(
        "markers",
        "mockcre(scenario=None, strict=None, allow_violations=False): load scenario(s) (a bundled name, a path "
        "relative to the test file or --mockcre-scenario-dir, or a mapping) into the mockcre server, switch the "
        "strict contract, or let the test send contract-breaking requests on purpose.")
    session = _Session(config)
    config.stash[_SESSION] = session
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints the summary
        workeroutput["mockcre"] = session.tally


def pytest_unconfigure(config):
    session = config.stash.get(_SESSION, None)
    if session is not None:
        session.close()


def pytest_report_header(config):
    session = config.stash.get(_SESSION, None)
    if session is None:
        return None
    if config.pluginmanager.has_plugin("dsession"):  # the xdist controller runs no tests itself
        return f"mockcre {__version__}: one server per xdist worker, each on a free 127.0.0.1 port"
    try:
        url = session.reserve()
    except OSError:  # no loopback to bind to: the header must never break a test run
        url = "on a free 127.0.0.1 port"
    return f"mockcre {__version__}: server {url} (starts when a test uses it)"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: add up what each worker's server received."""
    session = node.config.stash.get(_SESSION, None)
    tally = getattr(node, "workeroutput", {}).get("mockcre")
    if session is not None and tally:
        session.used = True
        for endpoint, counts in tally.items():
            mine = session.tally.setdefault(endpoint, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                mine[key] = mine.get(key, 0) + value


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = config.stash.get(_SESSION, None)
    if session is None or not session.used or config.get_verbosity() < 1:
        return
    tr = terminalreporter
    tally = session.tally
    total = sum(c["requests"] for c in tally.values())
    flawed = sum(c["with_violations"] for c in tally.values())
    errors = sum(c["errors"] for c in tally.values())
    warnings = sum(c["warnings"] for c in tally.values())
    tr.write_sep("-", "mockcre")
    tr.write_line(f"mockcre {__version__}: {total} request{'s' * (total != 1)} received, {flawed} with violations "
                  f"({errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)})")
    if tally:
        width = max(len("endpoint"), *(len(name) for name in tally))
        tr.write_line(f"  {'endpoint':<{width}}  requests  with violations  errors  warnings")
        for name in sorted(tally):
            c = tally[name]
            tr.write_line(f"  {name:<{width}}  {c['requests']:>8}  {c['with_violations']:>15}  {c['errors']:>6}  "
                          f"{c['warnings']:>8}")


# -- fixtures ----------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def mockcre_server(pytestconfig):
    """The session's mockcre server (a :class:`mockcre.server.ThreadedServer`): ``url``, ``app``, ``service``."""
    session = pytestconfig.stash[_SESSION]
    server = session.start()
    yield server
    session.absorb()
    session.stop()


@pytest.fixture
def mockcre(request, mockcre_server):
    """A handle on the mockcre server, reset before this test: see :class:`MockCre`."""
    session = request.config.stash[_SESSION]
    options = _marker_options(request.node)
    handle = MockCre(mockcre_server, session, Path(str(request.node.path)).parent)
    handle._begin(options)
    yield handle
    handle._finish(options)


@pytest.fixture(autouse=True)
def _mockcre_marker(request):
    """A test marked ``@pytest.mark.mockcre`` gets the ``mockcre`` fixture even when it does not name it."""
    if "mockcre" not in request.fixturenames and request.node.get_closest_marker("mockcre") is not None:
        request.getfixturevalue("mockcre")


# -- the session's server ----------------------------------------------------------------------


class _Session:
    """One per pytest process: the server (started on first use) and the tally for the summary."""

    def __init__(self, config):
        self.config = config
        self.strict = bool(config.getoption("mockcre_strict", False))
        base = Path(str(config.invocation_params.dir))
        self.scenario_dirs = [base / d for d in config.getoption("mockcre_scenario_dir", None) or ()]
        self.server = None
        self.used = False
        self.tally: dict[str, dict] = {}  # endpoint -> requests, with_violations, errors, warnings
        self.absorbed = 0  # journal seq counted so far
        self.loaded_key = None  # scenario files the marker of the previous test loaded (see MockCre._begin)
        self.loaded_names = None
        self._sock: socket.socket | None = None

    def reserve(self) -> str:
        """The URL the server will have: its port is bound now, so the header can name it."""
        if self.server is not None:
            return self.server.url
        if self._sock is None:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sock.listen(128)
            self._sock = sock
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def start(self):
        if self.server is None:
            from mockcre.app import create_app
            from mockcre.server import ThreadedServer

            app = create_app({"strict": self.strict})
            sock, self._sock = self._sock, None
            self.server = ThreadedServer(app, sock=sock).start()
            self.used = True
        return self.server

    def absorb(self) -> list[dict]:
        """Journal entries not yet counted: add them to the tally and return them."""
        if self.server is None:
            return []
        fresh = self.server.service.journal.query(after_seq=self.absorbed)
        for entry in fresh:
            self.absorbed = max(self.absorbed, entry["seq"])
            counts = self.tally.setdefault(entry.get("endpoint") or "?", {
                "requests": 0, "with_violations": 0, "errors": 0, "warnings": 0})
            violations = entry.get("violations") or ()
            counts["requests"] += 1
            counts["with_violations"] += bool(violations)
            counts["errors"] += sum(v.get("severity") == "error" for v in violations)
            counts["warnings"] += sum(v.get("severity") != "error" for v in violations)
        return fresh

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()
            self.server = None

    def close(self) -> None:
        self.stop()
        if self._sock is not None:
            self._sock.close()
            self._sock = None


# -- the handle --------------------------------------------------------------------------------


class MockCre:
    """What a test sees of the mockcre server.

    ``url``; ``load_scenario(path_or_mapping)``; ``journal`` (entries, oldest first);
    ``requests(endpoint=None, **filters)``; ``state(**filters)``; ``reset()``;
    ``assert_called(endpoint, times=None, **fields)``; ``assert_no_violations()``; and
    ``server`` / ``service`` / ``app`` for anything else.
    """

    def __init__(self, server, session: _Session, test_dir: Path):
        self.server = server
        self.service = server.service
        self.app = server.app
        self.url = server.url
        self._session = session
        self._test_dir = test_dir
        self._earlier: list[dict] = []  # entries of this test dropped by a reset() in the middle of it

    # -- lifecycle (driven by the fixture) -------------------------------------------------

    def _begin(self, options: dict) -> None:
        session = self._session
        session.absorb()
        strict = options["strict"]
        self.service.config.strict = session.strict if strict is None else bool(strict)
        sources = []
        for source in options["scenario"]:
            try:
                sources.append(source if isinstance(source, dict) or _is_text(source) else self.find_scenario(source))
            except FileNotFoundError as exc:
                pytest.fail(f"@pytest.mark.mockcre(scenario={source!r}): {exc}", pytrace=False)
        # The same scenario files as the previous test, unchanged and alone: keep them loaded and only
        # reset (states, counters, fixtures re-applied): milliseconds instead of parsing them again.
        key = _files_key(sources)
        if key is not None and key == session.loaded_key and self._loaded_names() == session.loaded_names:
            self.service.reset()
            return
        _full_reset(self.service)
        session.loaded_key = session.loaded_names = None
        names = []
        for source in sources:
            try:
                names.append(self._load(source))
            except (OSError, ValueError) as exc:  # ScenarioError is a ValueError
                pytest.fail(f"@pytest.mark.mockcre(scenario={source!r}): {_explain(exc)}", pytrace=False)
        session.loaded_key, session.loaded_names = key, names

    def _loaded_names(self) -> list | None:
        scenarios = getattr(self.service, "scenarios", None)
        return None if scenarios is None else [d.get("name") for d in scenarios.describe()]

    def _finish(self, options: dict) -> None:
        entries = self._earlier + self._session.absorb()
        self._earlier = []
        self.service.config.strict = self._session.strict
        if options["allow_violations"]:
            return
        broken = [e for e in entries if _errors_of(e)]
        if broken:
            pytest.fail(_violations_report(broken, self.url), pytrace=False)

    # -- reading -------------------------------------------------------------------------------

    @property
    def journal(self) -> list[dict]:
        """Every request received since this test began (or since ``reset()``), oldest first."""
        return self.service.journal.query()

    def requests(self, endpoint=None, **filters) -> list[dict]:
        """Journal entries, filtered: ``endpoint`` (name like ``cre.query`` or path like ``/query``), and
        ``user``, ``item``, ``kind``, ``dialect``, ``has_violations``, ``has_errors``, ``since``, ``until``."""
        names = None if endpoint in (None, "any", "*") else _endpoint_names(endpoint)
        return self.service.journal.query(names, **filters)

    def state(self, **filters) -> dict:
        """The store as ``GET /__admin/state`` shows it, unpaginated: every item, pool, user and action.

        Filters: ``partition=("cre", "prod")``, ``pool``, ``user``, ``item``."""
        from mockcre.admin import snapshot

        if isinstance(filters.get("partition"), str):
            filters["partition"] = tuple(filters["partition"].split(":", 1))
        filters.setdefault("limit", None)
        filters.setdefault("actions", None)
        return snapshot(self.service, **filters)

    def violations(self, warnings: bool = False) -> list[tuple[dict, dict]]:
        """(entry, violation) pairs of this test's requests: errors, and warnings too when asked."""
        out = []
        for entry in self._earlier + self.journal:
            for v in entry.get("violations") or ():
                if warnings or v.get("severity") == "error":
                    out.append((entry, v))
        return out

    # -- steering ------------------------------------------------------------------------------

    def reset(self, scenarios: bool = False) -> None:
        """Empty store and journal and restart scenario states (``scenarios=True``: unload them too).

        Violations already received still fail the test at teardown."""
        self._earlier += self._session.absorb()
        if scenarios:
            self._session.loaded_key = None
            _full_reset(self.service)
        else:
            self.service.reset()

    def load_scenario(self, source) -> str:
        """Load a scenario; returns its name.

        ``source``: a mapping; YAML text; or a file: an absolute path, a path relative to the test
        file's folder or to a ``--mockcre-scenario-dir``, or the bare name of a bundled scenario
        (``"shop"`` or ``"shop.yaml"``)."""
        self._session.loaded_key = None  # the next test starts from a clean slate
        if isinstance(source, dict) or _is_text(source):
            return self._load(source)
        return self._load(self.find_scenario(source))

    def _load(self, source) -> str:
        if isinstance(source, Path):
            return self.service.scenarios.load(source)
        return self.service.scenarios.load(source, base_dir=self._test_dir)

    def find_scenario(self, name) -> Path:
        """The scenario file ``name`` refers to (see :meth:`load_scenario`); FileNotFoundError lists where it looked."""
        ref = Path(name)
        if ref.is_absolute():
            folders = [None]
        else:
            folders = [self._test_dir, *self._session.scenario_dirs]
            if len(ref.parts) == 1:
                from mockcre.resources import scenarios_dir

                folders.append(scenarios_dir())
        tried = []
        for folder in folders:
            base = ref if folder is None else folder / ref
            for suffix in SCENARIO_SUFFIXES if not ref.suffix else ("",):
                candidate = base.with_name(base.name + suffix)
                if candidate.is_file():
                    return candidate
            tried.append(str(base))
        where = "\n  ".join(tried)
        raise FileNotFoundError(f"no scenario {str(name)!r}; looked in (with .yaml/.yml/.json when no suffix):\n  {where}")

    # -- assertions ----------------------------------------------------------------------------

    def assert_called(self, endpoint, times: int | None = None, **fields) -> list[dict]:
        """Assert that requests to ``endpoint`` with ``fields`` arrived: at least once, or exactly ``times``.

        ``endpoint``: a name (``cre.upload``, ``dm.service``…), a path (``/upload``) or ``"any"``.
        ``fields``: ``user=``, ``item=`` (any user/item id the body names), ``kind=``, ``dialect=``,
        ``code=`` (the reply's code), or a body field, looked for at the top of the body and in each
        record of ``data`` (cre batches); ``a__b`` reaches into ``a.b``. A value matches when equal
        (``"1"`` and ``1`` count as equal), when a compiled regex matches, or when a callable returns
        true. Returns the matching entries. On failure the message shows the closest requests
        side by side with what was expected."""
        __tracebackhide__ = True
        names = None if endpoint in (None, "any", "*") else _endpoint_names(endpoint)
        entries = self.journal
        matched = [e for e in entries if not _differences(e, names, fields)]
        if (len(matched) >= 1) if times is None else (len(matched) == times):
            return matched
        raise AssertionError(_near_miss(endpoint, names, times, fields, entries, matched, self.url))

    def assert_no_violations(self, warnings: bool = False) -> None:
        """Assert that no request so far broke the contract (``warnings=True``: nor drew a warning)."""
        __tracebackhide__ = True
        found = self.violations(warnings=warnings)
        if found:
            entries = list({id(e): e for e, _ in found}.values())
            raise AssertionError(_violations_report(entries, self.url, warnings=warnings))

    def __repr__(self) -> str:
        return f"<mockcre {self.url}: {len(self.service.journal)} requests>"


# -- helpers -----------------------------------------------------------------------------------


def _full_reset(service) -> None:
    """Store, journal, scenario states and loaded scenarios: as a fresh server."""
    if hasattr(service, "scenarios"):
        service.reset(scenarios=True)
    else:  # a service without the scenario engine
        service.reset()


def _is_text(source) -> bool:
    """YAML or JSON text rather than a file name."""
    return isinstance(source, str) and ("\n" in source or source.lstrip().startswith("{"))


def _files_key(sources: list):
    """What identifies a list of scenario files and their contents (None when any is not a file)."""
    if not all(isinstance(s, Path) for s in sources):
        return None
    try:
        return tuple((str(s.resolve()), s.stat().st_mtime_ns, s.stat().st_size) for s in sources)
    except OSError:
        return None


def _marker_options(node) -> dict:
    options = {"scenario": [], "strict": None, "allow_violations": False}
    marks = list(node.iter_markers("mockcre"))  # closest first
    for mark in reversed(marks):  # so the closest wins
        unknown = sorted(set(mark.kwargs) - set(MARKER_ARGS))
        if unknown:
            pytest.fail(f"@pytest.mark.mockcre: unknown argument(s) {', '.join(unknown)}; "
                        f"known: {', '.join(MARKER_ARGS)}", pytrace=False)
        scenario = mark.kwargs.get("scenario", list(mark.args) or None)
        if scenario is not None:
            options["scenario"] = list(scenario) if isinstance(scenario, (list, tuple)) else [scenario]
        for key in ("strict", "allow_violations"):
            if key in mark.kwargs:
                options[key] = mark.kwargs[key]
    return options


def _explain(exc: Exception) -> str:
    problems = getattr(exc, "problems", None)
    if problems:
        return "invalid scenario:\n" + "\n".join(f"  - {p}" for p in problems)
    return str(exc)


def _endpoint_names(endpoint) -> set:
    """Endpoint names from names (``cre.query``), paths (``/query``) or a collection of either."""
    from mockcre.app import PATHS
    from mockcre.domain import ENDPOINTS

    out = set()
    for one in [endpoint] if isinstance(endpoint, str) else endpoint:
        text = one.split()[-1] if one.upper().startswith("POST ") else one
        if text in ENDPOINTS:
            out.add(text)
        elif text == "/" or PATHS.get(text) == "dm.root":
            out |= {"dm.data", "dm.service"}
        elif text in PATHS:
            out.add(PATHS[text])
        else:
            close = difflib.get_close_matches(text, [*ENDPOINTS, *PATHS], n=2)
            hint = f"; did you mean {' or '.join(close)}?" if close else ""
            raise ValueError(f"unknown endpoint {one!r}{hint} Known: {', '.join(ENDPOINTS)} (or their paths)")
    return out


def _errors_of(entry: dict) -> list[dict]:
    return [v for v in entry.get("violations") or () if v.get("severity") == "error"]


def _walk(node, parts):
    if not parts:
        yield node
        return
    if isinstance(node, list):
        for element in node:
            yield from _walk(element, parts)
    elif isinstance(node, dict) and parts[0] in node:
        yield from _walk(node[parts[0]], parts[1:])


def _received(entry: dict, key: str) -> list:
    """Every value of ``key`` in the entry: meta fields, users/items, reply code, or body fields."""
    if key in ("user", "users"):
        return list(entry.get("users") or ())
    if key in ("item", "items"):
        return list(entry.get("items") or ())
    if key in META_FIELDS:
        return [entry.get(key)]
    if key == "code":
        reply = entry.get("reply")
        return [reply.get("code")] if isinstance(reply, dict) else []
    body = entry.get("body")
    parts = key.split("__")
    found = list(_walk(body, parts))
    data = body.get("data") if isinstance(body, dict) else None
    if isinstance(data, list):
        found += [v for record in data for v in _walk(record, parts)]
        found += [v for record in data if isinstance(record, dict)
                  for v in _walk(record.get("item_action"), parts)]
    return found


def _matches(value, expected) -> bool:
    if isinstance(expected, re.Pattern):
        return value is not None and not isinstance(value, (dict, list)) and expected.search(str(value)) is not None
    if callable(expected):
        try:
            return bool(expected(value))
        except Exception:
            return False
    if value == expected and type(value) is not bool and type(expected) is not bool:
        return True
    if isinstance(value, bool) or isinstance(expected, bool):
        return value is expected
    scalars = (str, int, float)
    return isinstance(value, scalars) and isinstance(expected, scalars) and str(value) == str(expected)


def _differences(entry: dict, names, fields: dict) -> list[tuple]:
    """(field, expected, received values) for each criterion the entry fails."""
    out = []
    if names is not None and entry.get("endpoint") not in names:
        out.append(("endpoint", " or ".join(sorted(names)), [entry.get("endpoint")]))
    for key, expected in fields.items():
        got = _received(entry, key)
        if not any(_matches(v, expected) for v in got):
            out.append((key, expected, got))
    return out


def _show(value) -> str:
    if isinstance(value, re.Pattern):
        return f"matching /{value.pattern}/"
    if callable(value):
        return f"satisfying {getattr(value, '__name__', 'a predicate')}"
    text = repr(value)
    return text if len(text) <= 60 else text[:59] + "…"


def _show_all(values: list) -> str:
    if not values:
        return "(absent)"
    unique = []
    for value in values:
        if value not in unique:
            unique.append(value)
    values = unique
    shown = ", ".join(_show(v) for v in values[:5])
    return shown + (f", … ({len(values)} values)" if len(values) > 5 else "")


def _summary(entry: dict) -> str:
    reply = entry.get("reply") if isinstance(entry.get("reply"), dict) else {}
    head = f"#{entry.get('seq')} {entry.get('endpoint')}" + (f" ({entry['kind']})" if entry.get("kind") else "")
    bits = [head]
    if entry.get("users"):
        bits.append(f"user {', '.join(entry['users'][:3])}")
    if entry.get("items"):
        items = entry["items"]
        bits.append(f"items {', '.join(items[:5])}{'…' if len(items) > 5 else ''}")
    if "code" in reply:
        bits.append(f"reply code {reply['code']!r}")
    errors = _errors_of(entry)
    if errors:
        bits.append(f"{len(errors)} contract error{'s' * (len(errors) != 1)}")
    return ", ".join(bits)


def _near_miss(endpoint, names, times, fields, entries, matched, url) -> str:
    criteria = ", ".join([repr(endpoint)] + [f"{k}={_show(v)}" for k, v in fields.items()])
    wanted = "at least 1 matching request" if times is None else f"exactly {times} matching request{'s' * (times != 1)}"
    lines = [f"assert_called({criteria}): expected {wanted}, got {len(matched)}."]
    if not entries:
        lines.append(f"mockcre received no requests at all since the test began (is the client pointed at {url}?)")
        return "\n".join(lines)
    if matched:
        lines.append("Matching requests:")
        lines += [f"  {_summary(e)}" for e in matched[:LISTED_SHOWN]]
        if len(matched) > LISTED_SHOWN:
            lines.append(f"  … and {len(matched) - LISTED_SHOWN} more")
    others = [e for e in entries if e not in matched]
    if others and (times is None or len(matched) < times):
        ranked = sorted(others, key=lambda e: (len(_differences(e, names, fields)), -e.get("seq", 0)))
        lines.append(f"Received {len(entries)} request{'s' * (len(entries) != 1)}; the closest that did not match:")
        for entry in ranked[:CLOSEST_SHOWN]:
            lines.append("")
            lines += _side_by_side(entry, names, fields)
        if len(others) > CLOSEST_SHOWN:
            lines.append("")
            lines.append("Other requests received:")
            lines += [f"  {_summary(e)}" for e in ranked[CLOSEST_SHOWN:CLOSEST_SHOWN + LISTED_SHOWN]]
            rest = len(others) - CLOSEST_SHOWN - LISTED_SHOWN
            if rest > 0:
                lines.append(f"  … and {rest} more")
    return "\n".join(lines)


def _side_by_side(entry: dict, names, fields: dict) -> list[str]:
    """WireMock-style: expected | received, one row per criterion, differing rows flagged."""
    differing = {key for key, _, _ in _differences(entry, names, fields)}
    rows = []
    if names is not None:
        rows.append(("endpoint", " or ".join(sorted(names)), str(entry.get("endpoint")), "endpoint" in differing))
    for key, expected in fields.items():
        rows.append((key, _show(expected), _show_all(_received(entry, key)), key in differing))
    left = [f"{key}: {expected}" for key, expected, _, _ in rows]
    width = max(len("expected"), *(len(text) for text in left)) if left else len("expected")
    right_width = max(len("received"), *(len(r[2]) for r in rows)) if rows else len("received")
    out = [f"  {_summary(entry)}: {len(differing)} of {len(rows)} criteria differ",
           f"    {'expected':<{width}} | received"]
    for text, (_, _, received, bad) in zip(left, rows):
        out.append((f"    {text:<{width}} | {received:<{right_width}}" + ("   <<<<< differs" if bad else "")).rstrip())
    return out


def _violations_report(entries: list[dict], url: str, warnings: bool = False) -> str:
    if warnings:
        count = sum(len(e.get("violations") or ()) for e in entries)
        head = (f"mockcre: {len(entries)} request{'s' * (len(entries) != 1)} drew {count} contract "
                f"violation{'s' * (count != 1)} (errors and warnings):")
    else:
        count = sum(len(_errors_of(e)) for e in entries)
        head = (f"mockcre: the code under test sent {len(entries)} request{'s' * (len(entries) != 1)} that "
                f"break{'s' * (len(entries) == 1)} the contract ({count} violation{'s' * (count != 1)}):")
    lines = [head]
    for entry in entries:
        lines.append(f"  {_summary(entry)}")
        for v in entry.get("violations") or ():
            if warnings or v.get("severity") == "error":
                tag = "" if v.get("severity") == "error" else " (warning)"
                lines.append(f"    {v.get('path') or '/'}: {v.get('message')} [{v.get('rule')}]{tag}")
    if not warnings:
        lines.append("Fix the request, or mark a test that sends it on purpose with "
                     "@pytest.mark.mockcre(allow_violations=True).")
    return "\n".join(lines)
