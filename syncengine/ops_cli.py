"""The operations subcommands of `syncengine`: `flower`, `setup`, and `webhooks install|check`."""

from __future__ import annotations

import argparse
import os
import sys

SYSTEMS = ["invoiceninja", "erpnext", "mautic", "directus", "revolut"]


def cmd_flower(_args: argparse.Namespace) -> int:
    from .flower_cmd import FlowerNotProtected, flower_command

    try:
        command = flower_command()
    except FlowerNotProtected as exc:
        print(f"refusing to start Flower: {exc}", file=sys.stderr)
        return 2
    os.execv(sys.executable, command)


def cmd_webhooks(args: argparse.Namespace) -> int:
    from .settings import get_settings
    from .subscriptions import reconcile

    receiver = args.url or get_settings().public_url
    if not receiver:
        print("say where the vendors reach us: --url https://… or SYNCENGINE_PUBLIC_URL", file=sys.stderr)
        return 2
    systems = [args.system] if args.system else None
    changes = reconcile(receiver, apply=args.action == "install", systems=systems)
    for change in changes:
        print(change)
    if any(c.action == "error" for c in changes):
        return 1
    if args.action == "check":
        return 1 if any(c.action in ("missing", "outdated") for c in changes) else 0
    return 0


# A subscription's state in `webhooks install|check`, as a setup finding's status.
_HOOK_STATUS = {"unchanged": "ok", "outdated": "wrong"}


def cmd_setup(args: argparse.Namespace) -> int:
    """Each vendor's side (schema, permissions), then our webhook subscriptions; exit 1 while anything
    is still wrong, so a deploy script can stop on it."""
    from connectors.setup import SETUPS, Finding, run

    from .settings import get_settings
    from .subscriptions import reconcile

    apply = not args.check
    systems = [args.system] if args.system else None
    findings = run(apply=apply, systems=[s for s in systems or SETUPS if s in SETUPS])
    receiver = args.url or get_settings().public_url
    if receiver:
        for change in reconcile(receiver, apply=apply, systems=systems):
            status = _HOOK_STATUS.get(change.action, change.action)
            fix = "run `syncengine setup`" if status in ("missing", "wrong") else ""
            findings.append(
                Finding(change.system, f"webhook {change.subscription}", status, change.detail, fix)
            )
    else:
        findings.append(
            Finding("webhooks", "-", "skipped", "no receiver URL: pass --url or set SYNCENGINE_PUBLIC_URL")
        )
    for finding in findings:
        print(finding)
    problems = [f for f in findings if f.problem]
    if all(f.status == "skipped" for f in findings):
        print("nothing was checked: configure a vendor first (README: Connecting the real systems)")
        return 2
    print(f"{len(problems)} problem(s)" if problems else "everything the engine needs is in place")
    return 1 if problems else 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("flower", help="Flower, refused without FLOWER_BASIC_AUTH or Flower's OAuth").set_defaults(
        func=cmd_flower
    )
    hooks = sub.add_parser("webhooks", help="create (install) or compare (check) our vendor subscriptions")
    hooks.add_argument("action", choices=["install", "check"])
    hooks.add_argument("--url", help="the receiver's public base URL (default SYNCENGINE_PUBLIC_URL)")
    hooks.add_argument("--system", choices=SYSTEMS, help="only this one")
    hooks.set_defaults(func=cmd_webhooks)
    setup = sub.add_parser(
        "setup",
        help="create or check what each vendor must hold for the engine (schema, permissions, webhooks)",
    )
    setup.add_argument(
        "--check", action="store_true", help="change nothing; one line per problem with its fix"
    )
    setup.add_argument("--system", choices=SYSTEMS, help="only this one (default: every configured one)")
    setup.add_argument(
        "--url", help="the receiver's public base URL for the webhooks (default SYNCENGINE_PUBLIC_URL)"
    )
    setup.set_defaults(func=cmd_setup)
