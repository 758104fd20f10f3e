"""The quality report as text (coloured on a terminal), JSON or one self-contained HTML page."""

from __future__ import annotations

import json

from jinja2 import Environment, PackageLoader, select_autoescape

from mockcre.common.text import utc_date
from mockcre.tools.quality import ERROR, INFO, WARNING, Report

_COLOURS = {ERROR: "\033[31m", WARNING: "\033[33m", INFO: "\033[36m"}
_RESET = "\033[0m"

_env = Environment(loader=PackageLoader("mockcre.faces", "templates"), autoescape=select_autoescape(["html"]))
_env.filters["utc"] = utc_date  # the dashboard registers the same filter: one report template, one date format


def text(report: Report, colour: bool = False) -> str:
    def paint(severity, s):
        return f"{_COLOURS[severity]}{s}{_RESET}" if colour else s

    s = report.scores
    lines = [f"mockcre data-quality report — overall {_score(s['overall'])}",
             f"  items {_score(s['items'])}   actions {_score(s['actions'])}   requests {_score(s['requests'])}",
             f"  ({report.totals['items']} items, {report.totals['actions']} actions, {report.totals['requests']} "
             f"recommendation requests, {report.totals['journal_entries']} journal entries)", ""]
    found = [f for f in report.findings if f.count]
    if not found:
        lines.append("No findings.")
    for f in found:
        lines.append(paint(f.severity, f"{f.severity.upper():<7} {f.rule}  ×{f.count}  {f.title}"))
        lines.append(f"        document: {f.cites}")
        for example in f.examples:
            seq = f"#{example['seq']} " if example["seq"] is not None else ""
            lines.append(f"        - {seq}{example['value']}")
    return "\n".join(lines) + "\n"


def as_json(report: Report) -> str:
    return json.dumps(report.to_dict(), ensure_ascii=False, indent=2) + "\n"


def html(report: Report) -> str:
    """One page, no external fonts, scripts or styles: it works offline and as a CI artifact."""
    return _env.get_template("report_page.html").render(report=report.to_dict())


def _score(value) -> str:
    return "n/a" if value is None else f"{value:.0f}/100"
