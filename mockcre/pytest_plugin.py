"""pytest plugin (entry point ``pytest11``): a real mockcre server for your tests, reset before each one.

Installing mockcre (from a checkout or its wheel: it is not on PyPI) is all it takes; then, in any test::

    def test_upload(mockcre):
        my_client.upload(base_url=mockcre.url, ...)          # the code under test, over real HTTP
        mockcre.assert_called("cre.upload", item_id="a1")

The behaviour is :class:`mockcre.testing.MockcreServer`'s; this module wires it to pytest: one server
per pytest process (``mockcre_server``; per xdist worker), begun afresh for each test (``mockcre``);
the marker ``@pytest.mark.mockcre(scenario=..., strict=..., allow_violations=...)``; a teardown that
fails a test whose code under test broke the contract; ``--mockcre-strict`` and
``--mockcre-scenario-dir DIR``; the server's URL in the header and, with ``-v``, what it received.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mockcre.common import __version__
from mockcre.testing import MockcreServer, ScenarioLoadError, tally_lines

MARKER_ARGS = ("scenario", "strict", "allow_violations", "cors_origins", "tls")

_SESSION = pytest.StashKey["_Session"]()


class _Session:
    """One per pytest process: the server (made when the header or a test first needs it) and the tally."""

    def __init__(self, config):
        self.config = config
        self.servers: dict[bool, MockcreServer] = {}  # by tls
        self.tally: dict[str, dict] | None = None  # for -v: what the server (or every xdist worker's) received

    def get_server(self, tls: bool = False) -> MockcreServer:
        """The session's server: plain HTTP, or (for tests marked ``tls=True``) a second one on HTTPS."""
        if tls not in self.servers:
            base = Path(str(self.config.invocation_params.dir))
            dirs = [base / d for d in self.config.getoption("mockcre_scenario_dir", None) or ()]
            self.servers[tls] = MockcreServer(strict=bool(self.config.getoption("mockcre_strict", False)), tls=tls,
                                              scenario_dirs=dirs)
        return self.servers[tls]

    def add(self, tally: dict) -> None:
        if self.tally is None:
            self.tally = {}
        for endpoint, counts in tally.items():
            mine = self.tally.setdefault(endpoint, dict.fromkeys(counts, 0))
            for key, value in counts.items():
                mine[key] = mine.get(key, 0) + value


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
        "mockcre(scenario=None, strict=None, allow_violations=False, cors_origins=None, tls=False): load scenario(s) "
        "(a bundled name, a path relative to the test file or --mockcre-scenario-dir, or a mapping) into the mockcre "
        "server, switch the strict contract, let the test send contract-breaking requests on purpose, allow CORS on "
        "the API only for these origins, or use the session's HTTPS server (mockcre.ca_path to trust).")
    config.stash[_SESSION] = _Session(config)


def pytest_unconfigure(config):
    session = config.stash.get(_SESSION, None)
    for server in session.servers.values() if session is not None else ():
        server.stop()


def pytest_report_header(config):
    session = config.stash.get(_SESSION, None)
    if session is None:
        return None
    if config.pluginmanager.has_plugin("dsession"):  # the xdist controller runs no tests itself
        return f"mockcre {__version__}: one server per xdist worker, each on a free 127.0.0.1 port"
    try:
        url = session.get_server().url
    except OSError:  # no loopback to bind to: the header must never break a test run
        url = "on a free 127.0.0.1 port"
    return f"mockcre {__version__}: server {url} (starts when a test uses it)"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node, error):
    """xdist controller: add up what each worker's server received."""
    session = node.config.stash.get(_SESSION, None)
    tally = getattr(node, "workeroutput", {}).get("mockcre")
    if session is not None and tally is not None:
        session.add(tally)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    session = config.stash.get(_SESSION, None)
    if session is None or session.tally is None or config.get_verbosity() < 1:
        return
    terminalreporter.write_sep("-", "mockcre")
    for line in tally_lines(session.tally):
        terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def mockcre_server(pytestconfig):
    """The session's :class:`mockcre.testing.MockcreServer`; not reset for you (the ``mockcre`` fixture is)."""
    yield from _session_server(pytestconfig, tls=False)


@pytest.fixture(scope="session")
def _mockcre_tls_server(pytestconfig):
    """The session's HTTPS server, started for the first test marked ``@pytest.mark.mockcre(tls=True)``."""
    yield from _session_server(pytestconfig, tls=True)


def _session_server(pytestconfig, tls: bool):
    session = pytestconfig.stash[_SESSION]
    server = session.get_server(tls).start()
    yield server
    server.stop()
    session.add(server.tally)
    workeroutput = getattr(pytestconfig, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: the controller prints the summary
        workeroutput["mockcre"] = session.tally


@pytest.fixture
def mockcre(request, mockcre_server):
    """The mockcre server, begun afresh for this test with its marker's options: see :class:`MockcreServer`."""
    options = _marker_options(request.node)
    if options["tls"]:
        mockcre_server = request.getfixturevalue("_mockcre_tls_server")
    mockcre_server.base_dir = Path(str(request.node.path)).parent
    try:
        mockcre_server.begin_test(options["scenario"], options["strict"], options["cors_origins"])
    except ScenarioLoadError as exc:
        pytest.fail(f"@pytest.mark.mockcre(scenario={exc.source!r}): {exc.reason}", pytrace=False)
    yield mockcre_server
    mockcre_server.end_test()  # between tests, the session's defaults
    if not options["allow_violations"]:
        _fail_on_violations(mockcre_server)


def _fail_on_violations(server: MockcreServer) -> None:
    """Fail the test's teardown with the violation report, printed once.

    ``pytest.fail`` is called outside the ``except`` block: raised inside it, pytest would print the
    report twice ("During handling of the above exception, another exception occurred").
    """
    try:
        server.assert_no_violations()
        return
    except AssertionError as exc:
        report = str(exc)
    pytest.fail(f"{report}\nFix the request, or mark a test that sends it on purpose with "
                "@pytest.mark.mockcre(allow_violations=True).", pytrace=False)


@pytest.fixture(autouse=True)
def _mockcre_marker(request):
    """A test marked ``@pytest.mark.mockcre`` gets the ``mockcre`` fixture even when it does not name it."""
    if "mockcre" not in request.fixturenames and request.node.get_closest_marker("mockcre") is not None:
        request.getfixturevalue("mockcre")


def _marker_options(node) -> dict:
    options = {"scenario": [], "strict": None, "allow_violations": False, "cors_origins": None, "tls": False}
    for mark in reversed(list(node.iter_markers("mockcre"))):  # closest last, so the closest wins
        unknown = sorted(set(mark.kwargs) - set(MARKER_ARGS))
        if unknown:
            pytest.fail(f"@pytest.mark.mockcre: unknown argument(s) {', '.join(unknown)}; "
                        f"known: {', '.join(MARKER_ARGS)}", pytrace=False)
        scenario = mark.kwargs.get("scenario", list(mark.args) or None)
        if scenario is not None:
            options["scenario"] = scenario
        for key in ("strict", "allow_violations", "cors_origins", "tls"):
            if key in mark.kwargs:
                options[key] = mark.kwargs[key]
    return options
