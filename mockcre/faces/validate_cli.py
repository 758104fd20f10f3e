"""``mockcre validate``: check request bodies offline, from files or stdin, for people and for CI."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree as ET

from mockcre.contracts import ERROR, WARNING, Checked, Violation, check
from mockcre.contracts.jsonbody import is_json
from mockcre.common.text import plural


class UnreadableInput(Exception):
    """A path that does not exist or cannot be read: a usage problem (exit 2), not an invalid body."""


@dataclass
class Result:
    source: str
    line: int | None
    checked: Checked

    @property
    def label(self) -> str:
        return f"{self.source}:{self.line}" if self.line is not None else self.source

    @property
    def errors(self) -> list[Violation]:
        return [v for v in self.checked.violations if v.severity == ERROR]

    @property
    def warnings(self) -> list[Violation]:
        return [v for v in self.checked.violations if v.severity == WARNING]

    @property
    def what(self) -> str:
        c = self.checked
        return f"{c.dialect} {c.kind}" if c.dialect and c.kind else "unrecognised body"


def read_bodies(path: str, stdin=None):
    """Yield ``(source, line, raw)`` for each body: a .json file is one body, .jsonl one per line, - is stdin."""
    if path == "-":
        text = (stdin or sys.stdin.buffer).read()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        if len(lines) > 1 and is_json(lines[0]):
            yield from _lines("<stdin>", text)
        else:
            yield "<stdin>", None, text
        return
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise UnreadableInput(f"cannot read {path}: {exc.strerror or exc}") from exc
    if path.endswith(".jsonl") or path.endswith(".ndjson"):
        yield from _lines(path, data)
    else:
        yield path, None, data


def _lines(source: str, data: bytes):
    for number, line in enumerate(data.splitlines(), 1):
        if line.strip():
            yield source, number, line


def run(paths, dialect=None, kind=None, strict=False, stdin=None) -> list[Result]:
    results = []
    for path in paths:
        for source, line, raw in read_bodies(path, stdin):
            results.append(Result(source, line, check(raw, dialect, kind, strict)))
    return results


def render_text(results, out) -> None:
    for r in results:
        if r.checked.violations:
            state = "invalid" if r.errors else "valid"
            out.write(f"{r.label}: {r.what}: {state} ({plural(len(r.errors), 'error')}, "
                      f"{plural(len(r.warnings), 'warning')})\n")
            for v in r.checked.violations:
                out.write(f"  {v.severity:<7} {v.path or '/'}  {v.message}  [{v.rule}]\n")
    invalid = sum(1 for r in results if r.errors)
    warnings = sum(len(r.warnings) for r in results)
    out.write(f"{plural(len(results), 'body')}: {len(results) - invalid} valid, {invalid} invalid, "
              f"{plural(warnings, 'warning')}\n")


def render_json(results, out) -> None:
    doc = {
        "bodies": [
            {"source": r.source, "line": r.line, "dialect": r.checked.dialect, "kind": r.checked.kind,
             "valid": not r.errors, "violations": [v.to_dict() for v in r.checked.violations]}
            for r in results
        ],
        "summary": {"bodies": len(results), "invalid": sum(1 for r in results if r.errors),
                    "warnings": sum(len(r.warnings) for r in results)},
    }
    json.dump(doc, out, ensure_ascii=False, indent=2)
    out.write("\n")


def render_junit(results, out) -> None:
    """One testcase per body, as CI systems (GitLab, Jenkins, GitHub reporters) display JUnit XML."""
    suite = ET.Element("testsuite", name="mockcre validate", tests=str(len(results)),
                       failures=str(sum(1 for r in results if r.errors)), errors="0", skipped="0")
    for r in results:
        case = ET.SubElement(suite, "testcase", classname=r.source, name=f"{r.label} ({r.what})")
        if r.errors:
            failure = ET.SubElement(case, "failure", message=f"{len(r.errors)} contract violation(s)", type="contract")
            failure.text = "\n".join(str(v) for v in r.errors)
        if r.warnings:
            ET.SubElement(case, "system-out").text = "\n".join(str(v) for v in r.warnings)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.indent(root)
    out.write(ET.tostring(root, encoding="unicode", xml_declaration=True) + "\n")


RENDERERS = {"text": render_text, "json": render_json, "junit": render_junit}


def main(args) -> int:
    try:
        results = run(args.paths, args.dialect, args.kind, args.strict)
    except UnreadableInput as exc:
        sys.stderr.write(f"mockcre validate: {exc}\n")
        return 2
    except ValueError as exc:  # an unknown --kind for the --dialect
        sys.stderr.write(f"mockcre validate: {exc}\n")
        return 2
    RENDERERS[args.format](results, sys.stdout)
    return 1 if any(r.errors for r in results) else 0
