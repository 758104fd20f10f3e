"""A mockcre server for any test framework, or none: ``with MockcreServer(scenario="shop") as mock:``.

It runs the app in a background thread on a free 127.0.0.1 port and asks questions of what it
received: the ``mockcre`` pytest fixture is this class with a few fixtures around it (one server
per pytest process, :meth:`MockcreServer.begin_test` before each test), as pytest-httpserver's is
its ``HTTPServer``. Anywhere else::

    with MockcreServer(scenario="shop") as mock:
        my_client.upload(base_url=mock.url, ...)           # the code under test, over real HTTP
        mock.assert_called("cre.upload", item_id="a1")
    # leaving the block stops the server and fails on any contract-breaking request it received

Importing this module stays cheap (Flask and the contracts load in :meth:`MockcreServer.start`),
because the pytest plugin imports it in every pytest session where mockcre is installed.
"""

from __future__ import annotations

import difflib
import re
import socket
from pathlib import Path

from mockcre.common import __version__
from mockcre.common.text import plural
from mockcre.pipeline.config import parse_origin

CLOSEST_SHOWN = 3  # near misses spelled out by assert_called
LISTED_SHOWN = 10  # requests listed in a failure message
SCENARIO_SUFFIXES = ("", ".yaml", ".yml", ".json")


class ScenarioLoadError(Exception):
    """A scenario given to :class:`MockcreServer` or :meth:`~MockcreServer.begin_test` was not found or not valid."""

    def __init__(self, source, reason: str):
        super().__init__(f"scenario {source!r}: {reason}")
        self.source, self.reason = source, reason


class MockcreServer:
    """A real mockcre server on 127.0.0.1 and what a test asks of it.

    ``scenario``: one or a list of scenarios (see :meth:`load_scenario`) loaded at start and by every
    :meth:`begin_test`. ``strict``: the strict contract. ``allow_violations``: leaving the ``with``
    block does not fail on contract-breaking requests. ``scenario_dirs``: folders where scenario
    names are looked up after :attr:`base_dir`. Other keywords are :func:`mockcre.create_app` config
    (``seed``, ``accounts``, ``clock``…).

    The port is bound here, so :attr:`url` is known before :meth:`start` (the pytest header names
    it); a stopped server does not start again.
    """

    def __init__(self, scenario=None, strict: bool = False, tls: bool = False, *, allow_violations: bool = False,
                 scenario_dirs=(), **config):
        self.scenario = _as_list(scenario)
        self.strict = bool(strict)
        self.allow_violations = allow_violations
        self.scenario_dirs = [Path(d) for d in scenario_dirs]
        self.base_dir = Path.cwd()  # relative scenario names are looked up here first (pytest: the test's folder)
        self.app_config = config  # create_app keywords
        self.server = None  # the mockcre.faces.server.ThreadedServer, once started
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(128)
        self.tls = bool(tls)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._sock.getsockname()[1]}"
        self._certificates = None  # with tls: a server certificate from the kept local CA (mockcre.faces.tls.LocalCA)
        self._tls_dir = None
        self._stopped = False
        self._earlier: list[dict] = []  # entries of this test that a reset() dropped: still checked at the end
        self._tally: dict[str, dict] = {}
        self._counted = 0  # journal seq counted into the tally so far
        self._loaded_key = None  # the scenario files begin_test loaded last, to keep them loaded (see there)
        self._loaded_names = None
        self._cors_origins: list = []  # this server's own, from its config (see end_test)

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> "MockcreServer":
        """Serve in a background thread and load :attr:`scenario`; returns self. A second call does nothing."""
        if self._stopped:
            raise RuntimeError(f"{self!r} was stopped; make a new MockcreServer")
        if self.server is None:
            from mockcre.faces.app import create_app
            from mockcre.faces.server import ThreadedServer

            try:
                app = create_app({"strict": self.strict, **self.app_config})
                self._cors_origins = app.extensions["mockcre"].config.cors_origins
                context = self._make_certificates().server_context() if self.tls else None
                self.server = ThreadedServer(app, sock=self._sock, ssl_context=context).start()
                self._sock = None  # the server has it now
                self.begin_test()
            except BaseException:
                self.stop()  # a half-started server must not keep its port or thread
                raise
        return self

    def stop(self) -> None:
        """Stop serving (what was received stays readable): no thread of the server's and no file of its is left
        open. Safe to call twice, or before :meth:`start`."""
        if self._stopped:
            return
        self._stopped = True
        if self.server is not None:
            self._count_new()
            self.server.stop()
            self.service.close()  # the watcher thread, the journal and --state files
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self._tls_dir is not None:
            self._tls_dir.cleanup()

    # -- TLS -------------------------------------------------------------------------------------

    def _make_certificates(self):
        import tempfile

        from mockcre.faces import tls

        self._tls_dir = tempfile.TemporaryDirectory(prefix="mockcre-tls-")
        self._certificates = tls.from_local_ca(tls.LocalCA.open(), Path(self._tls_dir.name))
        return self._certificates

    @property
    def ca_path(self) -> Path:
        """With ``tls=True``: the local CA's certificate (PEM), e.g. ``requests.get(url, verify=mock.ca_path)``."""
        return self._tls_only().ca_path

    def ssl_context(self):
        """With ``tls=True``: an :class:`ssl.SSLContext` that trusts the local CA, for clients that take one."""
        return self._tls_only().client_context()

    def _tls_only(self):
        if self._certificates is None:
            raise RuntimeError(f"{self!r}: ca_path and ssl_context() need MockcreServer(tls=True), started")
        return self._certificates

    def __enter__(self) -> "MockcreServer":
        return self.start()

    def __exit__(self, exc_type, exc, tb) -> None:
        __tracebackhide__ = True
        self.stop()
        if exc_type is None and not self.allow_violations:
            self.assert_no_violations()

    def begin_test(self, scenario=None, strict=None, cors_origins=None) -> None:
        """A fresh start for the next test on a long-lived server: store, journal, scenario states, clock and
        the record of violations emptied; ``strict``, ``cors_origins`` and ``scenario`` (default: this
        server's) in force.

        The same scenario files as the previous call, unchanged and alone, stay loaded and are only
        reset (states, counters, fixtures re-applied): milliseconds instead of parsing them again.
        Raises :class:`ScenarioLoadError`."""
        self._count_new()
        self._earlier = []
        self.service.config.strict = self.strict if strict is None else bool(strict)
        self.service.config.cors_origins = self._cors_origins if cors_origins is None else \
            [parse_origin(o) for o in cors_origins]
        wanted = self.scenario if scenario is None else _as_list(scenario)
        sources = []
        for source in wanted:
            try:
                sources.append(source if isinstance(source, dict) or _is_text(source) else self.find_scenario(source))
            except FileNotFoundError as exc:
                raise ScenarioLoadError(source, str(exc)) from exc
        key = _files_key(sources)
        if key is not None and key == self._loaded_key and self._scenario_names() == self._loaded_names:
            self.service.reset()
            return
        self.service.reset(scenarios=True)
        self._loaded_key = self._loaded_names = None
        names = []
        for original, source in zip(wanted, sources):
            try:
                names.append(self._load(source))
            except (OSError, ValueError) as exc:  # ScenarioError is a ValueError
                raise ScenarioLoadError(original, _explain(exc)) from exc
        self._loaded_key, self._loaded_names = key, names

    def end_test(self) -> None:
        """Between tests: this server's own ``strict`` and ``cors_origins`` again."""
        self.service.config.strict = self.strict
        self.service.config.cors_origins = self._cors_origins

    # -- reading -------------------------------------------------------------------------------

    @property
    def service(self):
        """The :class:`mockcre.pipeline.service.Service` behind the app."""
        return self._started().service

    @property
    def app(self):
        """The Flask app."""
        return self._started().app

    def _started(self):
        if self.server is None:
            raise RuntimeError(f"{self!r}: use `with MockcreServer(...)` or start() first")
        return self.server

    @property
    def clock(self):
        """The mock's :class:`mockcre.model.clock.Clock`: ``now``, ``freeze(T)`` (epoch, ISO 8601 or datetime),
        ``advance(seconds, timedelta or "30d")``, ``resume()``. Each test starts on wall time, or at the
        loaded scenario's ``clock:``."""
        return self.service.config.clock

    @property
    def journal(self) -> list[dict]:
        """Every request received since the test began (or since ``reset()``), oldest first."""
        return self.service.journal.query()

    def requests(self, endpoint=None, **filters) -> list[dict]:
        """Journal entries, filtered: ``endpoint`` (name like ``cre.query`` or path like ``/query``), and
        ``user``, ``item``, ``kind``, ``dialect``, ``has_violations``, ``has_errors``, ``since``, ``until``."""
        names = None if endpoint in (None, "any", "*") else _endpoint_names(endpoint)
        return self.service.journal.query(names, **filters)

    def state(self, **filters) -> dict:
        """The store as ``GET /__admin/state`` shows it, unpaginated: every item, pool, user and action.

        Filters: ``partition=("cre", "prod")`` (or ``"cre:prod"``), ``pool``, ``user``, ``item``."""
        from mockcre.faces.admin import snapshot

        if isinstance(filters.get("partition"), str):
            filters["partition"] = tuple(filters["partition"].split(":", 1))
        filters.setdefault("limit", None)
        filters.setdefault("actions", None)
        return snapshot(self.service, **filters)

    def violations(self, warnings: bool = False) -> list[tuple[dict, dict]]:
        """(entry, violation) pairs of this test's requests, reset() or not: errors, and warnings too when asked."""
        out = []
        for entry in self._earlier + self.journal:
            for v in entry.get("violations") or ():
                if warnings or v.get("severity") == "error":
                    out.append((entry, v))
        return out

    @property
    def tally(self) -> dict[str, dict]:
        """endpoint -> ``requests``, ``with_violations``, ``errors``, ``warnings`` over the server's whole life."""
        self._count_new()
        return self._tally

    def _count_new(self) -> None:
        """Add the journal entries not counted yet to the tally: before anything empties the journal."""
        if self.server is None:
            return
        for entry in self.service.journal.query(after_seq=self._counted):
            self._counted = max(self._counted, entry["seq"])
            counts = self._tally.setdefault(entry.get("endpoint") or "?", {
                "requests": 0, "with_violations": 0, "errors": 0, "warnings": 0})
            violations = entry.get("violations") or ()
            counts["requests"] += 1
            counts["with_violations"] += bool(violations)
            counts["errors"] += sum(v.get("severity") == "error" for v in violations)
            counts["warnings"] += sum(v.get("severity") != "error" for v in violations)

    # -- steering ------------------------------------------------------------------------------

    def reset(self, scenarios: bool = False) -> None:
        """Empty store and journal and restart scenario states (``scenarios=True``: unload them too).

        Violations already received still count for :meth:`violations` until the next :meth:`begin_test`."""
        self._count_new()
        self._earlier += self.journal
        if scenarios:
            self._loaded_key = None
        self.service.reset(scenarios=scenarios)

    def load_scenario(self, source) -> str:
        """Load a scenario; returns its name.

        ``source``: a mapping; YAML text; or a file: an absolute path, a path relative to :attr:`base_dir`
        (pytest: the test file's folder) or to one of :attr:`scenario_dirs`, or the bare name of a
        bundled scenario (``"shop"`` or ``"shop.yaml"``)."""
        self._loaded_key = None  # the next begin_test starts from a clean slate
        if isinstance(source, dict) or _is_text(source):
            return self._load(source)
        return self._load(self.find_scenario(source))

    def _load(self, source) -> str:
        if isinstance(source, Path):
            return self.service.scenarios.load(source)
        return self.service.scenarios.load(source, base_dir=self.base_dir)

    def _scenario_names(self) -> list:
        return [d.get("name") for d in self.service.scenarios.describe()]

    def find_scenario(self, name) -> Path:
        """The scenario file ``name`` refers to (see :meth:`load_scenario`); FileNotFoundError lists where it looked."""
        ref = Path(name)
        if ref.is_absolute():
            folders = [None]
        else:
            folders = [self.base_dir, *self.scenario_dirs]
            if len(ref.parts) == 1:
                from mockcre.common.resources import scenarios_dir

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
        ``fields``: field path -> matcher in the request-matching language of a scenario's ``when.match``
        (:mod:`mockcre.scenarios.matching`): ``user=``, ``item=`` (any user/item id the body names),
        ``kind=``, ``dialect=``, ``code=`` (the reply's), or a body field, looked for at the top and in
        each record the dialect nests; ``a__b`` is the path ``a.b``. A value matches when equal (``"1"``
        and ``1`` count as equal), when an operator object holds (``{"regex": "^u"}``, ``{"gt": 3}``…),
        when a compiled regex finds it, or when a callable returns true. Returns the matching entries.
        On failure the message shows the closest requests side by side with what was expected."""
        __tracebackhide__ = True
        pattern, names = _pattern(endpoint, fields)
        entries = self.journal
        matched = pattern.select(entries)
        if (len(matched) >= 1) if times is None else (len(matched) == times):
            return matched
        raise AssertionError(_near_miss("assert_called", endpoint, names, times, fields, pattern, entries, matched,
                                        self.url))

    def assert_not_called(self, endpoint, **fields) -> None:
        """Assert that no request to ``endpoint`` with ``fields`` arrived (the same language as
        :meth:`assert_called`); on failure the message lists the ones that did."""
        __tracebackhide__ = True
        pattern, names = _pattern(endpoint, fields)
        matched = pattern.select(self.journal)
        if matched:
            raise AssertionError(_near_miss("assert_not_called", endpoint, names, 0, fields, pattern, matched, matched,
                                            self.url))

    def assert_no_violations(self, warnings: bool = False) -> None:
        """Assert that no request of this test broke the contract (``warnings=True``: nor drew a warning)."""
        __tracebackhide__ = True
        found = self.violations(warnings=warnings)
        if found:
            entries = list({id(e): e for e, _ in found}.values())
            raise AssertionError(_violations_report(entries, warnings=warnings))

    def __repr__(self) -> str:
        if self.server is None:
            return f"<mockcre {self.url}: {'stopped' if self._stopped else 'not started'}>"
        return f"<mockcre {self.url}: {len(self.service.journal)} requests>"


def tally_lines(tally: dict[str, dict]) -> list[str]:
    """:attr:`MockcreServer.tally` as a few lines of text: totals, then a table by endpoint."""
    total, flawed, errors, warnings = (sum(c[key] for c in tally.values())
                                       for key in ("requests", "with_violations", "errors", "warnings"))
    lines = [f"mockcre {__version__}: {plural(total, 'request')} received, {flawed} with violations "
             f"({plural(errors, 'error')}, {plural(warnings, 'warning')})"]
    if tally:
        width = max(len("endpoint"), *(len(name) for name in tally))
        lines.append(f"  {'endpoint':<{width}}  requests  with violations  errors  warnings")
        for name in sorted(tally):
            c = tally[name]
            lines.append(f"  {name:<{width}}  {c['requests']:>8}  {c['with_violations']:>15}  {c['errors']:>6}  "
                         f"{c['warnings']:>8}")
    return lines


# -- helpers -----------------------------------------------------------------------------------


def _as_list(scenario) -> list:
    if scenario is None:
        return []
    return list(scenario) if isinstance(scenario, (list, tuple)) else [scenario]


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


def _explain(exc: Exception) -> str:
    problems = getattr(exc, "problems", None)
    if problems:
        return "invalid scenario:\n" + "\n".join(f"  - {p}" for p in problems)
    return str(exc)


def _endpoint_names(endpoint) -> set:
    """Endpoint names from names (``cre.query``), paths (``/query``) or a collection of either."""
    from mockcre.faces.app import PATHS
    from mockcre.common.domain import ENDPOINTS

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


def _pattern(endpoint, fields: dict):
    """The request pattern of ``assert_called(endpoint, **fields)``, and the endpoint names it means."""
    from mockcre.scenarios.matching import Pattern

    names = None if endpoint in (None, "any", "*") else _endpoint_names(endpoint)
    when = {"match": {key.replace("__", "."): expected for key, expected in fields.items()}}
    if names is not None:
        when["endpoint"] = sorted(names)
    return Pattern(when), names


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
        bits.append(plural(len(errors), "contract error"))
    return ", ".join(bits)


def _near_miss(asked, endpoint, names, times, fields, pattern, entries, matched, url) -> str:
    criteria = ", ".join([repr(endpoint)] + [f"{k}={_show(v)}" for k, v in fields.items()])
    wanted = "at least 1 matching request" if times is None else f"exactly {plural(times, 'matching request')}"
    lines = [f"{asked}({criteria}): expected {wanted}, got {len(matched)}."]
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
        ranked = pattern.closest(others, len(others))
        lines.append(f"Received {plural(len(entries), 'request')}; the closest that did not match:")
        for entry, differing in ranked[:CLOSEST_SHOWN]:
            lines.append("")
            lines += _side_by_side(entry, names, fields, {field for field, _, _ in differing})
        if len(others) > CLOSEST_SHOWN:
            lines.append("")
            lines.append("Other requests received:")
            lines += [f"  {_summary(e)}" for e, _ in ranked[CLOSEST_SHOWN:CLOSEST_SHOWN + LISTED_SHOWN]]
            rest = len(others) - CLOSEST_SHOWN - LISTED_SHOWN
            if rest > 0:
                lines.append(f"  … and {rest} more")
    return "\n".join(lines)


def _side_by_side(entry: dict, names, fields: dict, differing: set) -> list[str]:
    """WireMock-style: expected | received, one row per criterion, the rows the pattern found differing flagged."""
    from mockcre.scenarios.matching import entry_values

    rows = []
    if names is not None:
        rows.append(("endpoint", " or ".join(sorted(names)), str(entry.get("endpoint")), "endpoint" in differing))
    for key, expected in fields.items():
        path = key.replace("__", ".")
        rows.append((key, _show(expected), _show_all(entry_values(entry, path)), path in differing))
    left = [f"{key}: {expected}" for key, expected, _, _ in rows]
    width = max(len("expected"), *(len(text) for text in left)) if left else len("expected")
    right_width = max(len("received"), *(len(r[2]) for r in rows)) if rows else len("received")
    out = [f"  {_summary(entry)}: {sum(r[3] for r in rows)} of {len(rows)} criteria differ",
           f"    {'expected':<{width}} | received"]
    for text, (_, _, received, bad) in zip(left, rows):
        out.append((f"    {text:<{width}} | {received:<{right_width}}" + ("   <<<<< differs" if bad else "")).rstrip())
    return out


def _violations_report(entries: list[dict], warnings: bool = False) -> str:
    if warnings:
        count = sum(len(e.get("violations") or ()) for e in entries)
        head = (f"mockcre: {plural(len(entries), 'request')} drew {plural(count, 'contract violation')} "
                "(errors and warnings):")
    else:
        count = sum(len(_errors_of(e)) for e in entries)
        head = (f"mockcre: the code under test sent {plural(len(entries), 'request')} that "
                f"break{'s' * (len(entries) == 1)} the contract ({plural(count, 'violation')}):")
    lines = [head]
    for entry in entries:
        lines.append(f"  {_summary(entry)}")
        for v in entry.get("violations") or ():
            if warnings or v.get("severity") == "error":
                tag = "" if v.get("severity") == "error" else " (warning)"
                lines.append(f"    {v.get('path') or '/'}: {v.get('message')} [{v.get('rule')}]{tag}")
    return "\n".join(lines)
