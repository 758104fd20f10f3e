"""``mockcre validate`` over real files and stdin, as CI runs it."""

from __future__ import annotations

import json
import subprocess
import sys
from xml.etree import ElementTree as ET

import pytest

from mockcre.common.resources import load_schema


def run(*args, stdin: bytes | None = None, cwd=None):
    return subprocess.run([sys.executable, "-m", "mockcre", "validate", *args], input=stdin, capture_output=True,
                          timeout=60, cwd=cwd)


def example(name: str) -> dict:
    return load_schema(name)["examples"][0]


@pytest.fixture
def files(tmp_path):
    good = tmp_path / "good.json"
    good.write_text(json.dumps(example("cre.action"), ensure_ascii=False), encoding="utf-8")
    bad = dict(example("cre.query"))
    del bad["token"]
    lines = [json.dumps(example("dm.action"), ensure_ascii=False), "", "{not json", json.dumps(bad, ensure_ascii=False)]
    batch = tmp_path / "batch.jsonl"
    batch.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return good, batch


def test_a_valid_file_exits_0_from_any_directory(files, tmp_path):
    good, _ = files
    done = run(str(good), cwd=tmp_path.parent)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.decode().strip().endswith("1 body: 1 valid, 0 invalid, 0 warnings")


def test_jsonl_names_each_bad_line_and_a_broken_line_is_a_violation(files):
    _, batch = files
    done = run(str(batch))
    out = done.stdout.decode()
    assert done.returncode == 1
    assert f"{batch}:3: unrecognised body: invalid" in out and "json.syntax" in out and "line 1 column 2" in out  # the broken line
    assert f"{batch}:4: cre query: invalid" in out and "/token" in out and "schema.required" in out
    assert f"{batch}:1: dm action: valid" in out  # warnings only
    assert out.strip().endswith("3 bodies: 1 valid, 2 invalid, 2 warnings")
    assert "Traceback" not in done.stderr.decode()


def test_stdin_one_body_and_json_lines(files):
    good, batch = files
    one = run("-", stdin=good.read_bytes())
    assert one.returncode == 0 and "1 body: " in one.stdout.decode()
    many = run("-", "--format", "json", stdin=batch.read_bytes())
    doc = json.loads(many.stdout)
    assert many.returncode == 1
    assert [(b["line"], b["valid"]) for b in doc["bodies"]] == [(1, True), (3, False), (4, False)]
    assert doc["summary"] == {"bodies": 3, "invalid": 2, "warnings": 2}
    missing = next(v for v in doc["bodies"][2]["violations"] if v["rule"] == "schema.required")
    assert missing == {"path": "/token", "severity": "error", "rule": "schema.required",
                       "message": missing["message"]} and missing["message"].startswith("token: required field is missing")


def test_junit_parses_back_with_one_testcase_per_body(files):
    good, batch = files
    done = run("--format", "junit", str(good), str(batch))
    assert done.returncode == 1
    suite = ET.fromstring(done.stdout).find("testsuite")
    cases = suite.findall("testcase")
    assert suite.get("tests") == "4" and suite.get("failures") == "2" and len(cases) == 4
    failed = [c.get("name") for c in cases if c.find("failure") is not None]
    assert failed == [f"{batch}:3 (unrecognised body)", f"{batch}:4 (cre query)"]
    assert "contract violation" in cases[3].find("failure").get("message")
    assert "request-id-shape" in cases[1].find("system-out").text  # warnings are kept, not failed


def test_strict_and_explicit_kind(tmp_path):
    body = tmp_path / "item.json"
    body.write_text(json.dumps(example("dm.item"), ensure_ascii=False), encoding="utf-8")
    assert run(str(body)).returncode == 0
    strict = run("--strict", str(body))
    assert strict.returncode == 1 and "/expire_time" in strict.stdout.decode()
    as_action = run("--dialect", "dm", "--kind", "action", str(body))  # an item's fields: the root cause alone
    assert as_action.returncode == 1 and "data-type-mismatch" in as_action.stdout.decode()


@pytest.mark.parametrize("args, message", [
    (("missing.json",), "cannot read missing.json"),
    (("--dialect", "cre", "--kind", "recommend", "x.json"), "unknown kind 'recommend' for cre"),
])
def test_usage_errors_exit_2(tmp_path, args, message):
    (tmp_path / "x.json").write_text("{}", encoding="utf-8")
    done = run(*args, cwd=tmp_path)
    assert done.returncode == 2 and message in done.stderr.decode()


def test_hostile_bytes_are_violations_not_crashes(tmp_path):
    path = tmp_path / "bad.json"
    path.write_bytes(b"\xff\xfe{" + b"[" * 2000)
    done = run(str(path))
    assert done.returncode == 1 and "json.encoding" in done.stdout.decode() and not done.stderr


def test_every_option_of_every_command_has_help_text():
    import argparse

    from mockcre.faces.cli import build_parser

    missing = []

    def walk(parser, name):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for sub, subparser in action.choices.items():
                    walk(subparser, f"{name} {sub}")
            elif not action.help and not isinstance(action, argparse._HelpAction):
                missing.append(f"{name} {'/'.join(action.option_strings) or action.dest}")

    walk(build_parser(), "mockcre")
    assert not missing, missing
