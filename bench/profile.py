"""Where a cre /query's time goes under load: py-spy on the mockcre process while wrk sends the bench's rotation.

    python bench/profile.py                 # 10 s of load, 8 s sampled; top frames printed
    python bench/profile.py --seconds 5 --top 30 --all-threads

What it reports, for the process that serves (mockcre serve: one process, its asyncio loop):
- CPU time per request (user + system, all its threads) and context switches per request, from /proc:
  the price of the server around the app (aiohttp's C parser, uvloop, the admin thread pool's
  hand-offs) shows here and not in a Python profile;
- py-spy's samples of the thread holding the GIL (``--gil``), by function: self time (the function's
  own lines) and inclusive time (with what it calls). py-spy pauses the worker for each sample (a
  few per cent of its time at 200 a second); with --nonblocking about a tenth of the stacks came out
  torn, frames of one moment on those of another.
``--all-threads`` samples every thread instead, waiting ones included (``--idle``).
The raw samples (one line per stack, flamegraph.pl's input) are kept in bench/results/.
py-spy is installed with pip into this interpreter's environment when missing.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import run  # noqa: E402  (bench/run.py: servers, wrk, the request bodies)


def py_spy() -> str:
    found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "py-spy"], check=True)
        found = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")
    return found


def worker_pid(server: run.Server) -> int:
    children = Path(f"/proc/{server.proc.pid}/task/{server.proc.pid}/children").read_text().split()
    return int(children[-1]) if children else server.proc.pid


def counters(pid: int) -> tuple[float, int, int]:
    """(CPU seconds, voluntary, involuntary context switches) summed over the process's threads."""
    cpu = voluntary = involuntary = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            stat = (task / "stat").read_text()
            status = (task / "status").read_text()
        except FileNotFoundError:  # a thread that ended meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()
        cpu += int(fields[11]) + int(fields[12])
        voluntary += int(re.search(r"^voluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
        involuntary += int(re.search(r"^nonvoluntary_ctxt_switches:\s+(\d+)", status, re.M).group(1))
    return cpu / os.sysconf("SC_CLK_TCK"), voluntary, involuntary


def frames(path: Path) -> tuple[int, collections.Counter, collections.Counter]:
    """Total samples, and samples by function: self and inclusive."""
    own, inclusive, total = collections.Counter(), collections.Counter(), 0
    for line in path.read_text(encoding="utf-8").splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        names = [_short(f) for f in stack.split(";")]
        own[names[-1]] += n
        for name in set(names):
            inclusive[name] += n
    return total, own, inclusive


def _short(frame: str) -> str:
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame or "(no Python frame: native code holding the GIL)"
    name, file = match.groups()
    file = re.sub(r"^.*/(site-packages|lib/python3[.][0-9]+)/", "", file).replace(str(run.ROOT) + "/", "")
    return f"{name} ({file})"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10, help="length of the load (sampling stops 2 s before its end)")
    parser.add_argument("--top", type=int, default=25, help="functions listed")
    parser.add_argument("--rate", type=int, default=200, help="samples a second")
    parser.add_argument("--all-threads", action="store_true", help="sample every thread, idle ones too, not only the GIL holder")
    args = parser.parse_args(argv)
    run.ensure_wrk()
    spy = py_spy()
    run.RESULTS.mkdir(parents=True, exist_ok=True)
    out = run.RESULTS / f"profile-{time.strftime('%Y%m%d-%H%M%S')}.txt"
    bodies = run.shop_queries()
    server = run.Server("mockcre", run.mockcre("serve", "--port", str(port := run.free_port()), "--scenario", "shop.yaml"), port)
    try:
        pid = worker_pid(server)
        run.wrk(server.url + "/query", bodies, 3)  # warm-up
        load = {}
        before = counters(pid)
        loader = threading.Thread(target=lambda: load.update(run.wrk(server.url + "/query", bodies, args.seconds)))
        loader.start()
        time.sleep(1)
        subprocess.run([spy, "record", "-p", str(pid), "-d", str(max(1, args.seconds - 2)), "-r", str(args.rate), "-f", "raw",
                        "-o", str(out), "--idle" if args.all_threads else "--gil"],
                       check=True, capture_output=True)
        loader.join()
        after = counters(pid)
    finally:
        server.stop()
    requests = load["rps"] * args.seconds
    cpu, voluntary, involuntary = (b - a for a, b in zip(before, after))
    print(f"cre /query, 240-body rotation, 16 connections, {args.seconds} s: {load['rps']:,.0f} req/s, "
          f"p50 {load['p50_ms']:.2f} ms, p99 {load['p99_ms']:.2f} ms, non-2xx {load['non_2xx']}")
    print(f"worker: {cpu / args.seconds:.2f} cores busy, {cpu / requests * 1e6:.0f} µs CPU a request, "
          f"{voluntary / requests:.2f} voluntary and {involuntary / requests:.2f} involuntary context switches a request")
    total, own, inclusive = frames(out)
    what = "every thread's" if args.all_threads else "GIL holder's"
    for title, counter in (("self", own), ("inclusive", inclusive)):
        print(f"\n{title} time, % of {total:,} samples of the {what} stack:")
        for name, n in counter.most_common(args.top):
            print(f"  {100 * n / total:5.1f} %  {name}")
    print(f"\nraw samples: {out.relative_to(run.ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
