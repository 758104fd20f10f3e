"""``mockcre report``: the data-quality report of a running server (--url) or a journal file."""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.error
import urllib.request

from mockcre.tools import quality, report_render

_FAIL_LEVELS = {"error": (quality.ERROR,), "warning": (quality.ERROR, quality.WARNING), "never": ()}


def from_journal(path: str) -> quality.Report:
    """The report of a journal file (one JSON object a line, as ``mockcre serve --journal`` writes)."""
    entries = []
    with open(path, encoding="utf-8") as fh:
        for number, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
            except ValueError as exc:
                raise ValueError(f"line {number} is not JSON ({exc})") from None
            if not isinstance(entry, dict) or "seq" not in entry:
                raise ValueError(f"line {number} is not a journal entry")
            entries.append(entry)
    return quality.analyse(quality.replay(entries), entries, time.time())


def from_url(url: str, token: str | None) -> dict:
    request = urllib.request.Request(url.rstrip("/") + "/__admin/report?format=json")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)


def main(args) -> int:
    try:
        if args.journal:
            report = from_journal(args.journal)
        else:
            report = quality.Report.from_dict(from_url(args.url, args.admin_token))
    except (OSError, ValueError, KeyError, TypeError, urllib.error.URLError) as exc:  # unreadable, or not a report
        sys.stderr.write(f"mockcre report: cannot read {'the journal' if args.journal else args.url}: {exc}\n")
        return 2
    if args.format == "json":
        sys.stdout.write(report_render.as_json(report))
    elif args.format == "html":
        sys.stdout.write(report_render.html(report))
    else:
        sys.stdout.write(report_render.text(report, colour=sys.stdout.isatty() and not os.environ.get("NO_COLOR")))
    return 1 if report.worst() in _FAIL_LEVELS[args.fail_on] else 0
