"""The operations subcommands of `syncengine`: `flower`, `setup`, and `webhooks install|check`."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

SYSTEMS = ["invoiceninja", "erpnext", "mautic", "directus", "revolut"]
NO_RECEIVER = "say where the vendors reach us: --url https://… or SYNCENGINE_PUBLIC_URL"


def cmd_flower(_args: argparse.Namespace) -> int:
    from .flower_cmd import FlowerNotProtected, flower_command

    try:
        command = flower_command()
    except FlowerNotProtected as exc:
        print(f"refusing to start Flower: {exc}", file=sys.stderr)
        return 2
    os.execv(sys.executable, command)


def cmd_webhooks(args: argparse.Namespace) -> int:
    """Exit 1 when a vendor failed (install) or anything is missing, outdated, stale or duplicated (check)."""
    from .settings import get_settings
    from .subscriptions import reconcile

    receiver = args.url or get_settings().public_url
    if not receiver:
        print(NO_RECEIVER, file=sys.stderr)
        return 2
    changes = reconcile(receiver, apply=args.action == "install", systems=_systems(args))
    for change in changes:
        print(change)
    return 1 if any(c.problem for c in changes) else 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Each vendor's side (schema, permissions), then our webhook subscriptions; exit 1 while anything
    is still wrong, so a deploy script can stop on it. A vendor that is down or refuses us is one line and
    its webhooks are not tried; the others are still set up."""
    from connectors.setup import SETUPS, run

    from .settings import get_settings

    apply, systems = not args.check, _systems(args)
    findings = run(apply=apply, systems=[s for s in systems or SETUPS if s in SETUPS])
    # Left out of the webhooks: a vendor that is down, refuses us, or is not configured (already said).
    unreachable = {f.system for f in findings if f.subject == "-" and (f.problem or f.status == "skipped")}
    receiver = args.url or get_settings().public_url
    findings += _webhook_findings(receiver, apply, [s for s in systems or SYSTEMS if s not in unreachable])
    for finding in sorted(findings, key=lambda f: _order(f.system)):
        if args.verbose or finding.status != "ok":
            print(finding)
    problems = [f for f in findings if f.problem]
    if all(f.status == "skipped" for f in findings):
        print("nothing was checked: configure a vendor first (README: Connecting the real systems)")
        return 2
    fine = sum(f.status == "ok" for f in findings)
    mended = sum(f.status in ("created", "updated", "removed") for f in findings)
    if problems:
        print(f"{len(problems)} problem(s); {fine} thing(s) already right, {mended} mended")
    else:
        print(f"everything the engine needs is in place: {fine} already right, {mended} mended")
    return 1 if problems else 0


def _webhook_findings(receiver: str | None, apply: bool, systems: list[str]) -> list[Any]:
    """`webhooks install|check` as setup findings, one per subscription."""
    from connectors.setup import Finding

    from .subscriptions import reconcile

    if not receiver:
        return [Finding("webhooks", "-", "skipped", f"no receiver URL: {NO_RECEIVER}")]
    findings = []
    for change in reconcile(receiver, apply=apply, systems=systems):
        status = "ok" if change.action == "unchanged" else change.action
        fix = change.fix or (f"run `syncengine setup --system {change.system}`" if change.problem else "")
        subject = "webhooks" if change.subscription == "-" else f"webhook {change.subscription}"
        findings.append(Finding(change.system, subject, status, change.detail, fix))
    return findings


def _systems(args: argparse.Namespace) -> list[str] | None:
    return list(dict.fromkeys(args.system)) if args.system else None


def _order(system: str) -> int:
    return SYSTEMS.index(system) if system in SYSTEMS else len(SYSTEMS)


def add_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("flower", help="Flower, refused without FLOWER_BASIC_AUTH or Flower's OAuth").set_defaults(
        func=cmd_flower
    )
    hooks = sub.add_parser("webhooks", help="create (install) or compare (check) our vendor subscriptions")
    hooks.add_argument("action", choices=["install", "check"])
    hooks.add_argument("--url", help="the receiver's public base URL (default SYNCENGINE_PUBLIC_URL)")
    hooks.add_argument("--system", choices=SYSTEMS, action="append", help="only this one (repeatable)")
    hooks.set_defaults(func=cmd_webhooks)
    setup = sub.add_parser(
        "setup",
        help="create or check what each vendor must hold for the engine (schema, permissions, webhooks)",
    )
    setup.add_argument(
        "--check", action="store_true", help="change nothing; one line per problem with its fix"
    )
    setup.add_argument(
        "--system", choices=SYSTEMS, action="append", help="only this one (repeatable; default: all)"
    )
    setup.add_argument(
        "--url", help="the receiver's public base URL for the webhooks (default SYNCENGINE_PUBLIC_URL)"
    )
    setup.add_argument("--verbose", action="store_true", help="also list what is already in place")
    setup.set_defaults(func=cmd_setup)
