"""The ``mockcre`` command: one subcommand per job, each in its own module, imported when used."""

from __future__ import annotations

import argparse
import sys

from mockcre.common import __version__
from mockcre.faces import tls
from mockcre.contracts.jsonbody import DEFAULT_MAX_BYTES
from mockcre.common.domain import DIALECTS, REQUEST_KINDS, RESPONSE_KINDS
from mockcre.scenarios import ScenarioError


def _validate(args) -> int:
    from mockcre.faces import validate_cli

    return validate_cli.main(args)


def _serve(args) -> int:
    from mockcre.contracts.auth import Accounts
    from mockcre.model.clock import parse_moment
    from mockcre.faces.server import is_loopback, serve
    from mockcre.scenarios.loader import latency_spec

    try:
        Accounts.parse(args.account)
    except ValueError as exc:
        sys.stderr.write(f"mockcre serve: {exc}\n")
        return 2
    for option, value, parse in (("--clock", args.clock, parse_moment), ("--latency", args.latency, latency_spec)):
        try:
            if value is not None:
                parse(value)
        except ValueError as exc:
            sys.stderr.write(f"mockcre serve: {option}: {exc}\n")
            return 2
    if not is_loopback(args.host) and not args.admin_token:
        sys.stderr.write(f"mockcre serve: --host {args.host} exposes the server beyond this machine; "
                         "the admin API then needs --admin-token T (clients send Authorization: Bearer T)\n")
        return 2
    config = {"strict": args.strict, "seed": args.seed, "accounts": args.account, "journal_file": args.journal,
              "admin_token": args.admin_token, "scenarios": [_scenario_path(s) for s in args.scenario], "watch": args.watch,
              "state_file": args.state, "max_body_bytes": args.max_body_bytes,
              "max_batch_records": args.max_batch_records, "journal_size": args.journal_size,
              "cors_origins": args.cors_origin, "allowed_hosts": args.allowed_host + tls.admin_host_names(args),
              "latency": args.latency}
    if args.clock is not None:
        config["clock"] = args.clock
    from mockcre.faces import readiness
    from mockcre.faces.server import port_is_free

    args.port, args.tls_port = readiness.chosen_ports(args.host, args.port, args.tls_port)  # 0: a free port each
    problem = tls.problem_with(args)
    if problem:
        sys.stderr.write(f"mockcre serve: {problem}\n")
        return 2
    # a port taken by another server would accept too: serve reports it and exits 2, with no ready line
    free = all(p is None or port_is_free(args.host, p) for p in (args.port, args.tls_port))
    try:
        with tls.certificates_for(args) as certificates:
            if free:
                readiness.announce_when_listening(args.host, args.port, args.tls_port,
                                                  args.tls or args.tls_port is not None, args.port_file)
            return serve(args.host, args.port, config, tls=certificates, tls_port=args.tls_port)
    except tls.CertificateError as exc:
        sys.stderr.write(f"mockcre serve: {exc}\n")
        return 2
    except ScenarioError as exc:
        sys.stderr.write("mockcre serve: the scenario does not load:\n  " + "\n  ".join(exc.problems) + "\n")
        return 2


def _scenario_path(name: str) -> str:
    """A scenario file as an absolute path (--watch follows it), or a bundled one's bare name as given."""
    from pathlib import Path

    return str(Path(name).resolve()) if Path(name).exists() else name


def _scenario_lint(args) -> int:
    import time

    from mockcre.scenarios import lint_files
    from mockcre.common.text import plural

    found = lint_files(args.files, time.time())
    for problem in found:
        print(problem)
    problems = [p for p in found if p.severity == "error"]
    warnings = f", {plural(len(found) - len(problems), 'warning')}" if len(found) > len(problems) else ""
    print(f"{plural(len(args.files), 'file')} checked, {plural(len(problems), 'problem')}{warnings}")
    return 1 if problems else 0


def _state(args) -> int:
    from mockcre.pipeline.persist import StateFile

    state = StateFile(args.state)
    try:
        if args.state_command == "export":
            with open(args.file, "w", encoding="utf-8") as out:
                n = state.export(out)
            print(f"exported {n} records from {args.state} to {args.file}")
        else:
            with open(args.file, encoding="utf-8") as lines:
                n = state.load_lines(lines)
            print(f"imported {n} records from {args.file} into {args.state}")
    except (OSError, ValueError) as exc:
        sys.stderr.write(f"mockcre state {args.state_command}: {exc}\n")
        return 2
    finally:
        state.close()
    return 0


def _conformance(args) -> int:
    from mockcre.tools import conformance

    return conformance.main(args)


def _openapi(args) -> int:
    from mockcre.tools import openapi

    return openapi.main(args)


def _proxy(args) -> int:
    from mockcre.faces import proxy

    return proxy.main(args)


def _report(args) -> int:
    from mockcre.faces import report_cli

    return report_cli.main(args)


def _ca(args) -> int:
    """``mockcre ca path`` and ``mockcre ca export``: the kept local CA, for clients to trust."""
    from pathlib import Path

    try:
        local = tls.LocalCA.open(args.tls_ca_dir)
        if args.ca_command == "path":
            print(local.cert_path)
            return 0
        out = Path(args.output)
        local.export(out, args.format, args.password)
    except tls.CertificateError as exc:
        sys.stderr.write(f"mockcre ca: {exc}\n")
        return 2
    except OSError as exc:
        sys.stderr.write(f"mockcre ca export: cannot write {args.output}: {exc.strerror}\n")
        return 2
    if args.format == "pem":
        print(f"wrote the CA certificate of {local.folder} to {out} (PEM)")
    else:
        print(f"wrote a PKCS12 truststore to {out}: trusted entry 'mockcre', password {args.password}\n"
              f"  java -Djavax.net.ssl.trustStore={out} -Djavax.net.ssl.trustStorePassword={args.password} "
              "-Djavax.net.ssl.trustStoreType=PKCS12 ...")
    return 0


def _sign(args) -> int:
    from mockcre.dialects.dm import signature

    print(signature(args.bid, args.request_id, args.token))
    return 0


def _at_least_one(text: str) -> int:
    """An argparse type for limits: a whole number of at least 1 (0 or less would refuse everything)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _add_limits(p: argparse.ArgumentParser, body_note: str) -> None:
    """The limits serve and proxy share: the same flags configure the same judge."""
    p.add_argument("--max-body-bytes", type=_at_least_one, default=DEFAULT_MAX_BYTES, metavar="N",
                   help=f"refuse larger request bodies with a -1 envelope{body_note} (default {DEFAULT_MAX_BYTES:,})")
    p.add_argument("--max-batch-records", type=_at_least_one, default=10_000, metavar="N",
                   help="a cre upload with more records in data[] breaks the limit.batch-records rule (default 10,000)")
    p.add_argument("--journal-size", type=_at_least_one, default=10_000, metavar="N",
                   help="journal entries kept in memory, oldest dropped first (default 10,000)")


def _origin(text: str) -> str:
    """An argparse type for --cors-origin, so a mistyped origin is a usage error that says why."""
    from mockcre.pipeline.config import parse_origin

    try:
        return parse_origin(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_browser_flags(p: argparse.ArgumentParser) -> None:
    """What web pages in a browser may do: call the API (CORS), reach the admin API by another host name."""
    p.add_argument("--cors-origin", action="append", default=[], type=_origin, metavar="ORIGIN",
                   help="allow CORS on the API paths for this origin only, e.g. http://localhost:3000 (repeatable; "
                        "default: any origin)")
    p.add_argument("--allowed-host", action="append", default=[], metavar="NAME",
                   help="a host name the admin API answers besides loopback names and the listening address (repeatable)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mockcre", description="Mock and contract-test server for Tencent's recommendation APIs (cre and dm dialects).")
    parser.add_argument("--version", action="version", version=f"mockcre {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    kinds = sorted({k for d in DIALECTS for k in REQUEST_KINDS[d] + RESPONSE_KINDS[d]})
    p = sub.add_parser("validate", help="validate request bodies offline (.json, .jsonl or - for stdin)",
                       description="Validate request bodies against the documents' contracts. Exit 0 when every "
                                   "body is valid, 1 when any is invalid, 2 on a usage error or unreadable input.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="a .json file (one body), a .jsonl file (one body a line) or - (stdin)")
    p.add_argument("--dialect", choices=DIALECTS, help="cre or dm (default: detected from each body)")
    p.add_argument("--kind", choices=kinds, metavar="KIND",
                   help="cre: item, action, query; dm: item, action, recommend; replies: " + ", ".join(
                       sorted({k for d in DIALECTS for k in RESPONSE_KINDS[d]})) + " (default: detected)")
    p.add_argument("--strict", action="store_true", help="reject everything outside the documented tables")
    p.add_argument("--format", choices=["text", "json", "junit"], default="text", help="output format (default text)")
    p.set_defaults(func=_validate)

    p = sub.add_parser("serve", help="run the fake endpoint for both dialects",
                       description="Run the fake endpoint: prints one line per endpoint URL, then serves until "
                                   "SIGINT or SIGTERM and exits 0.")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--scenario", action="append", default=[], metavar="FILE",
                   help="load a scenario (repeatable): a path, or a bundled one by name such as shop.yaml")
    p.add_argument("--watch", action="store_true", help="reload changed scenario files without a restart")
    p.add_argument("--port", type=int, default=8088, help="port (default 8088; 0: a free one, printed in the ready line)")
    p.add_argument("--port-file", metavar="FILE", help="write the port to FILE once the server accepts connections "
                                                       "(for test runs that start mockcre with --port 0)")
    p.add_argument("--strict", action="store_true", help="reject everything outside the documented tables")
    p.add_argument("--seed", type=int, default=0, help="seed of trace ids and scenario choices (default 0)")
    p.add_argument("--account", action="append", default=[], metavar="SPEC",
                   help="cre:TOKEN or dm:BID=TOKEN (repeatable); with any account, tokens and MD5 signatures are checked")
    p.add_argument("--journal", metavar="FILE", help="also append every journal entry to FILE as a JSON line")
    p.add_argument("--state", metavar="FILE", help="keep every accepted report in this SQLite file across restarts")
    _add_limits(p, body_note="")
    p.add_argument("--clock", metavar="T", help="start the mock's clock frozen at T: epoch seconds or ISO 8601 such as "
                                              "2017-01-01T00:00:00Z (wins over a scenario's clock:; move it with "
                                              "POST /__admin/clock)")
    p.add_argument("--latency", metavar="SPEC",
                   help="delay every answer, whichever rule or the engine gives it (a rule's own delay_ms replaces it; "
                        "wins over a scenario's latency:); SPEC is milliseconds: 50, uniform:10,200 (between) or "
                        "lognormal:50,0.5 (median, sigma), drawn from --seed")
    p.add_argument("--admin-token", metavar="T", help="require Authorization: Bearer T on /__admin (needed off loopback)")
    _add_browser_flags(p)
    tls.add_options(p)
    p.add_argument("--tls-port", type=int, metavar="N",
                   help="serve HTTPS on N as well, plain HTTP staying on --port; both share one state (implies --tls)")
    p.set_defaults(func=_serve)

    p = sub.add_parser("state", help="move a persisted store (--state FILE) between machines as JSON lines")
    state = p.add_subparsers(dest="state_command", metavar="SUBCOMMAND", required=True)
    for name, what in (("export", "write the store's records to FILE, one JSON object a line"),
                       ("import", "append the records of an exported FILE to the store (all or nothing)")):
        q = state.add_parser(name, help=what)
        q.add_argument("file", metavar="FILE", help="the JSON-lines file to write (export) or read (import)")
        q.add_argument("--state", required=True, metavar="DB", help="the SQLite file of mockcre serve --state")
        q.set_defaults(func=_state)

    p = sub.add_parser("scenario", help="work with scenario files")
    scenario = p.add_subparsers(dest="scenario_command", metavar="SUBCOMMAND", required=True)
    p = scenario.add_parser("lint", help="check scenario files; problems name file, line and column (exit 0/1)")
    p.add_argument("files", nargs="+", metavar="FILE", help="scenario files (YAML or JSON)")
    p.set_defaults(func=_scenario_lint)

    p = sub.add_parser("conformance", help="property-based conformance run against any server that speaks the API",
                       description="Generate valid, one-defect and stateful request sequences (Hypothesis) and check the "
                                   "answers of a live server. Exit 0 when every check passes, 1 on any failure.")
    p.add_argument("--target", required=True, metavar="URL", help="base URL, e.g. http://127.0.0.1:8088")
    p.add_argument("--dialect", choices=DIALECTS, help="check one dialect (default both)")
    p.add_argument("--max-examples", type=int, default=25, metavar="N", help="examples per check (default 25)")
    p.add_argument("--seed", type=int, default=0, help="Hypothesis seed: the same seed replays the same run (default 0)")
    p.add_argument("--junit", metavar="FILE", help="also write the results as JUnit XML")
    p.add_argument("--account", action="append", default=[], metavar="SPEC",
                   help="cre:TOKEN or dm:BID=TOKEN to sign requests with, for a server with accounts")
    p.add_argument("--no-determinism", action="store_true",
                   help="skip the same-request-same-ranking check (for servers that are not deterministic)")
    p.add_argument("--steps", type=int, default=12, metavar="N", help="steps of each stateful run (default 12)")
    p.add_argument("--shrink-seconds", type=float, default=20.0, metavar="S",
                   help="time to spend shrinking each failure to its smallest request (default 20)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="SECONDS", help="per request (default 10)")
    p.set_defaults(func=_conformance)

    p = sub.add_parser("report", help="integration data-quality report of a running server or a journal file",
                       description="What Tencent's integration engineer would have told you about your data, at once. "
                                   "Exit 1 when a finding at or above --fail-on exists.")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--url", help="base URL of a running mockcre (reads /__admin/report)")
    source.add_argument("--journal", metavar="FILE", help="a journal written by mockcre serve --journal FILE")
    p.add_argument("--format", choices=["text", "json", "html"], default="text", help="output format (default text)")
    p.add_argument("--fail-on", choices=["error", "warning", "never"], default="error",
                   help="exit 1 when a finding of this severity or worse exists (default error)")
    p.add_argument("--latency", metavar="SPEC",
                   help="delay every answer, whichever rule or the engine gives it (a rule's own delay_ms replaces it; "
                        "wins over a scenario's latency:); SPEC is milliseconds: 50, uniform:10,200 (between) or "
                        "lognormal:50,0.5 (median, sigma), drawn from --seed")
    p.add_argument("--admin-token", metavar="T", help="Bearer token of the server's admin API, if it has one")
    p.set_defaults(func=_report)

    p = sub.add_parser("openapi", help="OpenAPI 3.1 document of both dialects, built from the JSON Schemas",
                       description="Write an OpenAPI 3.1 document of both dialects built from mockcre's JSON Schemas: "
                                   "every path, request body, reply and error envelope, the documents' examples, and "
                                   "servers for the real hosts and a local mock.")
    p.add_argument("-o", "--output", metavar="FILE", help="write to FILE (.yaml/.yml: YAML, else JSON; default stdout)")
    p.set_defaults(func=_openapi)

    p = sub.add_parser("proxy", help="validating proxy in front of a real service; --record writes a replayable scenario",
                       description="Forward every request to --upstream unchanged and answer with its reply untouched, "
                                   "judging both against the contracts into the journal (admin API and dashboard as "
                                   "for serve). Serves until SIGINT or SIGTERM and exits 0.")
    p.add_argument("--upstream", required=True, metavar="URL", help="the service to forward to, e.g. https://sdtj.y.qq.com:8008")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8089, help="port (default 8089)")
    p.add_argument("--record", metavar="FILE", help="write the exchanges as a scenario YAML that mockcre serve --scenario replays")
    p.add_argument("--strict", action="store_true", help="judge requests by the strict contract (replies always are)")
    p.add_argument("--upstream-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="answer the dialect's -2 envelope when the upstream has not replied within SECONDS (default 10)")
    p.add_argument("--journal", metavar="FILE", help="also append every journal entry to FILE as a JSON line")
    _add_limits(p, body_note=", not forwarded")
    p.add_argument("--latency", metavar="SPEC",
                   help="delay every answer, whichever rule or the engine gives it (a rule's own delay_ms replaces it; "
                        "wins over a scenario's latency:); SPEC is milliseconds: 50, uniform:10,200 (between) or "
                        "lognormal:50,0.5 (median, sigma), drawn from --seed")
    p.add_argument("--admin-token", metavar="T", help="require Authorization: Bearer T on /__admin (needed off loopback)")
    _add_browser_flags(p)
    tls.add_options(p)
    p.set_defaults(func=_proxy)

    p = sub.add_parser("ca", help="the local CA that serve --tls keeps: its path, or an export for clients to trust",
                       description="The local CA that serve --tls, proxy --tls and MockcreServer(tls=True) sign their "
                                   "server certificates with, made on first use and kept across restarts.")
    ca = p.add_subparsers(dest="ca_command", metavar="SUBCOMMAND", required=True)
    q = ca.add_parser("path", help="print the CA certificate's path (PEM), making the CA if there is none yet")
    tls.add_ca_dir_option(q)
    q.set_defaults(func=_ca)
    q = ca.add_parser("export", help="write the CA certificate as PEM or as a PKCS12 truststore for Java")
    tls.add_ca_dir_option(q)
    q.add_argument("--format", choices=["pem", "pkcs12"], default="pem", help="pem, or pkcs12: a truststore Java "
                                                                              "loads as javax.net.ssl.trustStore (default pem)")
    q.add_argument("-o", "--output", required=True, metavar="FILE", help="the file to write")
    q.add_argument("--password", default=tls.JAVA_STORE_PASSWORD,
                   help=f"the PKCS12 store's password, printed (default {tls.JAVA_STORE_PASSWORD}, as the JDK's cacerts)")
    q.set_defaults(func=_ca)

    p = sub.add_parser("sign", help="print md5(BID&REQUEST_ID&TOKEN) for dm requests",
                       description="Print the MD5 signature a dm request carries in its MD5 field: "
                                   "md5(bid&request_id&TOKEN), lower-case hex.")
    p.add_argument("--bid", required=True, help="the business id, as in the request's bid field")
    p.add_argument("--request-id", required=True, metavar="ID", help="the request's request_id field")
    p.add_argument("--token", required=True, help="the secret token Tencent issued for the bid (never sent itself)")
    p.set_defaults(func=_sign)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `mockcre validate ... | head`
        sys.stderr.close()
        return 0
