"""Scenarios decide: YAML files that script canned answers, error codes, faults, delays and state
machines (schemas/scenario.schema.json), and the one request-matching language that scenarios,
verification and the recorder share. They decide; the pipeline above carries the decision out.
"""

from .engine import Decision, ScenarioEngine
from .loader import Problem, ScenarioError, lint, read

__all__ = ["ScenarioEngine", "ScenarioError", "Decision", "Problem", "lint", "read", "lint_files"]


def lint_files(paths, now: float) -> list[Problem]:
    """Problems of scenario files, for ``mockcre scenario lint``."""
    problems = []
    for path in paths:
        try:
            problems += lint(read(str(path)), now)
        except ScenarioError as exc:  # unreadable or not YAML: already placed by file, line and column
            problems += exc.items
    return problems
