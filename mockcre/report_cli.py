"""``mockcre report``: the data-quality report of a running server (--url) or a journal file."""

from __future__ import annotations

import json
import sys
import time
import urllib.error
import urllib.request

from mockcre import quality, report_render

_FAIL_LEVELS = {"error": (quality.ERROR,), "warning": (quality.ERROR, quality.WARNING), "never": ()}


def from_journal(path: str) -> quality.Report:
    entries = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                entries.append(json.loads(line))
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
    except (OSError, ValueError, urllib.error.URLError) as exc:
        sys.stderr.write(f"mockcre report: cannot read {'the journal' if args.journal else args.url}: {exc}\n")
        return 2
    if args.format == "json":
        sys.stdout.write(report_render.as_json(report))
    elif args.format == "html":
        sys.stdout.write(report_render.html(report))
    else:
        sys.stdout.write(report_render.text(report, colour=sys.stdout.isatty()))
    return 1 if report.worst() in _FAIL_LEVELS[args.fail_on] else 0
