"""The `llm-policy-proxy` command: serve, check-config, demo, hash-key, keys ..., policy ..., budget ...."""

from __future__ import annotations

import argparse
import getpass
import sys
from pathlib import Path

from .cli.serve import cmd_check_config, cmd_serve
from .identity import hash_key, keys_cli


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="llm-policy-proxy", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the proxy")
    serve.add_argument("--config", type=Path, required=True)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--workers", type=int, default=1)

    check = commands.add_parser("check-config", help="validate a config file and exit")
    check.add_argument("file", type=Path)

    demo = commands.add_parser("demo", help="run the proxy in front of the built-in demo model")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--host", default="127.0.0.1")

    hashing = commands.add_parser("hash-key", help="print the SHA-256 to store in config for an API key")
    hashing.add_argument("key", nargs="?", help="the key (prompted for when omitted)")

    policy = commands.add_parser("policy", help="check, test and evaluate Rego policies")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    folder = "policy folder (default: ./policies in the current directory)"
    for name, text in (("check", "validate a policy folder as the proxy does before serving it"),
                       ("test", "run every test_ rule, like `opa test`")):
        sub = policy_commands.add_parser(name, help=text)
        sub.add_argument("dir", nargs="?", type=Path, help=folder)
        if name == "test":
            sub.add_argument("-v", "--verbose", action="store_true")
        else:
            sub.add_argument("--timeout-ms", type=int, default=500, help="policy.timeout_ms to check against")
    evaluate = policy_commands.add_parser("eval", help="print the decision for an input document")
    evaluate.add_argument("dir", nargs="?", type=Path, help=folder)
    evaluate.add_argument("--input", type=Path, required=True)
    evaluate.add_argument("--entrypoint", default="data.llm.main.decision")
    diff = policy_commands.add_parser("diff-report", help="summarise live-vs-shadow policy differences")
    diff.add_argument("file", type=Path)

    budget = commands.add_parser("budget", help="show or reset budget usage in the configured store")
    budget_commands = budget.add_subparsers(dest="budget_command", required=True)
    show = budget_commands.add_parser("show", help="spend per scope and window")
    show.add_argument("--config", type=Path, required=True)
    show.add_argument("--scope", help="scope prefix, e.g. team: or team:payments")
    show.add_argument("--json", action="store_true")
    reset = budget_commands.add_parser("reset", help="forget a scope's spend")
    reset.add_argument("--config", type=Path, required=True)
    reset.add_argument("scope")

    shadow = commands.add_parser("shadow-ai", help="direct AI-provider calls refused by the egress proxy")
    shadow_commands = shadow.add_subparsers(dest="shadow_command", required=True)
    report = shadow_commands.add_parser("report", help="which apps tried which providers, newest first")
    report.add_argument("--config", type=Path, required=True)
    report.add_argument("--since", default="7d", help="e.g. 30m, 12h, 7d")

    keys_cli.add_parser(commands)

    args = parser.parse_args(argv)
    if args.command == "keys":
        return keys_cli.run(args)
    if args.command == "shadow-ai":
        from proxy.cli.budget import cmd_shadow_report
        return cmd_shadow_report(args)
    if args.command == "policy":
        return cmd_policy(args)
    if args.command == "budget":
        from proxy.cli.budget import cmd_budget
        return cmd_budget(args)
    if args.command == "serve":
        return cmd_serve(args.config, args.host, args.port, args.workers)
    if args.command == "check-config":
        return cmd_check_config(args.file)
    if args.command == "demo":
        from proxy.cli.demo import run_demo
        return run_demo(args.host, args.port)
    if args.command == "hash-key":
        print(hash_key(args.key or getpass.getpass("API key: ")))
        return 0
    parser.error(f"unknown command {args.command}")
    return 2


def cmd_policy(args: argparse.Namespace) -> int:
    from .policy import cli
    if args.policy_command == "check":
        return cli.cmd_check(args.dir, timeout_ms=args.timeout_ms)
    if args.policy_command == "test":
        return cli.cmd_test(args.dir, verbose=args.verbose)
    if args.policy_command == "eval":
        return cli.cmd_eval(args.dir, args.input, entrypoint=args.entrypoint)
    return cli.cmd_diff_report(args.file)


if __name__ == "__main__":
    sys.exit(main())
