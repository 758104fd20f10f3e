"""Mutation testing of the guards: mutmut 3 on one module at a time, one process, bounded in time.

    .venv/bin/python bench/mutation.py mockcre.faces.cors
    .venv/bin/python bench/mutation.py mockcre.contracts.transport.x_decode_transport   # one function

The modules and the test files are ``[tool.mutmut]`` in pyproject.toml (``only_mutate``,
``pytest_add_cli_args_test_selection``); mutmut works in ``mutants/`` (git-ignored) and keeps its
results there, so a second run of the same module only runs what changed. Prints the figures of
the module (mutants, killed, survived, other) and the names of the survivors; ``mutmut show NAME``
prints a survivor's diff. Not part of the test suite: one module takes minutes.
"""

from __future__ import annotations

import argparse
import collections
import os
import signal
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MUTMUT = [str(Path(sys.executable).parent / "mutmut")]
DEFAULT_MINUTES = 20  # the machine is shared: a run that takes longer is stopped


def configured_modules() -> list[str]:
    """The dotted names of the files ``[tool.mutmut] only_mutate`` lists."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    return [p.removesuffix(".py").replace("/", ".") for p in config["only_mutate"]]


def run(target: str, minutes: float) -> int:
    """``mutmut run`` on the mutants of ``target`` with one worker; its exit code (-9 when stopped)."""
    proc = subprocess.Popen([*MUTMUT, "run", "--max-children", "1", f"{target}*"], cwd=ROOT, start_new_session=True,
                            stdout=subprocess.DEVNULL)
    try:
        return proc.wait(timeout=minutes * 60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        print(f"stopped after {minutes:g} minutes; the mutants not run yet show as 'not checked'", file=sys.stderr)
        return -9


def figures(target: str) -> tuple[collections.Counter, list[str]]:
    """Counts of each outcome among ``target``'s mutants, and the survivors' names."""
    listing = subprocess.run([*MUTMUT, "results", "--all", "true"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout
    outcomes, survivors = collections.Counter(), []
    for line in listing.splitlines():
        name, _, outcome = line.strip().rpartition(": ")
        if name.startswith(target):
            outcomes[outcome] += 1
            if outcome == "survived":
                survivors.append(name)
    return outcomes, survivors


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("target", help="a module of [tool.mutmut] only_mutate (dotted), or a function's mutant prefix")
    parser.add_argument("--minutes", type=float, default=DEFAULT_MINUTES, help="stop the run after this long")
    args = parser.parse_args(argv)
    if not any(args.target.startswith(module) for module in configured_modules()):
        parser.error(f"{args.target} is in none of [tool.mutmut] only_mutate: {', '.join(configured_modules())}")
    run(args.target, args.minutes)
    outcomes, survivors = figures(args.target)
    total, killed = sum(outcomes.values()), outcomes["killed"]
    print(f"{args.target}: {total} mutants, {killed} killed ({killed / max(total, 1):.0%}), "
          f"{outcomes['survived']} survived, other: {dict(outcomes - collections.Counter(killed=killed, survived=outcomes['survived']))}")
    print("\n".join(survivors))
    return 0


if __name__ == "__main__":
    sys.exit(main())
