"""Instructions a cre /query costs in the pipeline (Service.handle), counted by callgrind.

    python bench/instructions.py                  # this checkout
    python bench/instructions.py --root ../other  # another checkout of mockcre (say, a git worktree of main)

Timings on this shared 2-core machine swing by half between runs, which hides a change of a few per cent;
instruction counts do not (they repeat within about 1 %). The pipeline answers the bench's 240 different
shop queries in turn; it runs twice under valgrind's callgrind, 240 and 840 requests after the same
warm-up, and the difference over 600 is printed, so start-up and loading the scenario cancel out.
valgrind is installed with apt when missing. It is an instrument for changes to the hot path, not a figure
for the docs: bench/run.py measures the served rate and CPU time.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RUNS = (240, 840)


def requests_in_process(count: int):
    """What callgrind measures: ``count`` cre queries through one Service with the shop scenario (returned)."""
    sys.path.insert(0, str(HERE))
    import run

    from mockcre.pipeline.service import Service

    service = Service({"scenarios": ["shop"]})
    bodies = run.shop_queries()
    headers = [[("Host", "127.0.0.1:8080"), ("Content-Type", "application/json"), ("Content-Length", str(len(b)))]
               for b in bodies]
    for i in range(480 + count):  # the same warm-up in both runs: rankings cached, the journal filling
        service.handle("cre.query", bodies[i % len(bodies)], headers[i % len(bodies)], "127.0.0.1:8080")
    return service


def instructions(root: Path, count: int) -> int:
    env = {**os.environ, "PYTHONPATH": str(root), "PYTHONHASHSEED": "0"}
    done = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                           __file__, "--child", str(count)], env=env, cwd=root, capture_output=True, text=True)
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode or not found:
        raise SystemExit(f"callgrind failed:\n{done.stderr[-2000:]}")
    return int(found.group(1))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=HERE.parent, help="the checkout whose mockcre is measured")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        requests_in_process(args.child)
        return 0
    if not shutil.which("valgrind"):
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "valgrind"], check=True)
    fewer, more = (instructions(args.root.resolve(), n) for n in RUNS)
    print(f"{args.root.resolve()}: {(more - fewer) / (RUNS[1] - RUNS[0]):,.0f} instructions a cre /query "
          f"in Service.handle (callgrind, shop scenario)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
