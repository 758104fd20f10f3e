#!/usr/bin/env bash
# Known-vulnerability check of mockcre's dependencies (issue 9.5).
#
#   bench/audit.sh            # exit 0: every dependency audited, none vulnerable
#                             # exit 1: a known vulnerability (pip-audit lists it with the fixed version)
#                             # exit 2: some dependencies could not be audited from this machine
#   bench/audit.sh -f json    # extra arguments go to pip-audit
#
# What is audited: the exact installed versions of everything `mockcre[test]` pulls in, transitively
# (runtime and test dependencies; environment markers honoured), pinned into a temporary list.
# How: pip-audit --strict, which asks PyPI's JSON API for each release
# (https://pypi.org/pypi/NAME/VERSION/json lists the release's advisories from the PyPA advisory
# database). --strict matters: without it, a dependency pip-audit could not look up is skipped and
# the run still says "No known vulnerabilities found".
#
# Fallback (when the per-release API is unreachable, as on a mirror that serves only project pages):
# the project page https://pypi.org/pypi/NAME/json lists the advisories of the *latest* release, so
# every dependency installed at its latest version is still audited; the others are named as not
# auditable from here, and the script exits 2. The equivalent complete check offline is pip-audit
# against a local copy of https://github.com/pypa/advisory-database (or `pip-audit -s osv` where
# api.osv.dev is reachable) with the pinned list this script prints.
set -uo pipefail
cd "$(dirname "$0")/.."
python3 -m pip_audit --version >/dev/null 2>&1 || python3 -m pip install -q pip-audit || exit 2
pinned="$(mktemp)"
log="$(mktemp)"
trap 'rm -f "$pinned" "$log"' EXIT
python3 - "$pinned" <<'PY' || exit 2
"""Write name==version for mockcre[test] and everything it requires, as installed."""
import re
import sys
from importlib.metadata import PackageNotFoundError, distribution

from packaging.requirements import Requirement

seen, todo = {}, [("mockcre", frozenset({"test"}))]
while todo:
    name, extras = todo.pop()
    key = re.sub(r"[-_.]+", "-", name).lower()
    try:
        dist = distribution(name)
    except PackageNotFoundError:
        continue  # a marker-less optional dependency that is not installed: nothing to audit
    done = seen.get(key, (None, frozenset()))[1]
    if key in seen and extras <= done:
        continue
    seen[key] = (dist.version, done | extras)
    for text in dist.requires or ():
        req = Requirement(text)
        if req.marker is None or any(req.marker.evaluate({"extra": e}) for e in (extras or {""})):
            todo.append((req.name, frozenset(req.extras)))
seen.pop("mockcre", None)  # the project itself is not on PyPI
with open(sys.argv[1], "w", encoding="utf-8") as out:
    for key, (version, _) in sorted(seen.items()):
        out.write(f"{key}=={version}\n")
print(f"auditing {len(seen)} distributions: " + ", ".join(f"{k} {v}" for k, (v, _) in sorted(seen.items())))
PY

python3 -m pip_audit --requirement "$pinned" --no-deps --disable-pip --strict --progress-spinner off --desc on "$@" 2>"$log"
status=$?
grep -v -e "encouraged to fully hash" -e "pip-compile" "$log" >&2
if [ "$status" -eq 0 ] || ! grep -q "could not be audited" "$log"; then
    exit "$status"
fi

echo "pip-audit could not look releases up here; falling back to PyPI project pages (advisories of latest releases)" >&2
python3 - "$pinned" <<'PY'
import json
import sys
import urllib.request

audited, unknown, vulnerable = [], [], []
for line in open(sys.argv[1], encoding="utf-8"):
    name, _, version = line.strip().partition("==")
    try:
        with urllib.request.urlopen(f"https://pypi.org/pypi/{name}/json", timeout=30) as resp:
            page = json.load(resp)
    except OSError as exc:
        unknown.append(f"{name} {version} ({exc})")
        continue
    if page["info"]["version"] != version:
        unknown.append(f"{name} {version} (latest {page['info']['version']})")
        continue
    advisories = page.get("vulnerabilities") or []
    (vulnerable if advisories else audited).append(
        f"{name} {version}" + "".join(f"\n    {a.get('id')}: fixed in {', '.join(a.get('fixed_in') or ['?'])}" for a in advisories))
print(f"{len(audited)} audited, no known vulnerability: {', '.join(audited)}")
if vulnerable:
    print(f"{len(vulnerable)} with known vulnerabilities:\n  " + "\n  ".join(vulnerable))
if unknown:
    print(f"{len(unknown)} not auditable from here (not the latest release; needs the per-release API):\n  "
          + "\n  ".join(unknown))
sys.exit(1 if vulnerable else 2 if unknown else 0)
PY
