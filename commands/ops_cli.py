"""The operations subcommands of `syncengine`: `flower`, `setup`, and `webhooks install|check`."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from .explain import Mistake

SYSTEMS = ["invoiceninja", "erpnext", "mautic", "directus", "revolut"]
NO_RECEIVER = "say where the vendors reach us: --url https://… or SYNCENGINE_PUBLIC_URL"


def cmd_flower(_args: argparse.Namespace) -> int:
    from .flower_cmd import FlowerNotProtected, flower_command

    try:
        command = flower_command()
    except FlowerNotProtected as exc:
        raise Mistake("refusing to start Flower", str(exc)) from None
    os.execv(sys.executable, command)


def cmd_webhooks(args: argparse.Namespace) -> int:
    """Exit 1 when a vendor failed (install) or anything is missing, outdated, stale or duplicated (check)."""
    from connectors.subscriptions import reconcile
    from syncengine.breaker import keep_local
    from syncengine.settings import get_settings

    receiver = args.url or get_settings().public_url
    if not receiver:
        raise Mistake("no receiver URL", NO_RECEIVER)
    keep_local()  # a vendor that fails here must not open the breaker the workers share
    changes = reconcile(receiver, apply=args.action == "install", systems=_systems(args))
    for change in changes:
        print(change)
    return 1 if any(c.problem for c in changes) else 0


def cmd_setup(args: argparse.Namespace) -> int:
    """Each vendor's side (schema, permissions), then our webhook subscriptions; exit 1 while anything
    is still wrong, so a deploy script can stop on it. A vendor that is down or refuses us is one line and
    its webhooks are not tried; the others are still set up."""
    from syncengine.breaker import keep_local
    from syncengine.settings import get_settings

    keep_local()  # a vendor that fails here must not open the breaker the workers share
    receiver = args.url or get_settings().public_url
    findings = _setup_findings(not args.check, _systems(args) or SYSTEMS, receiver)
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


def _setup_findings(apply: bool, wanted: list[str], receiver: str | None) -> list[Any]:
    """Vendor by vendor (a progress bar on a terminal): its side, then its webhooks unless it is down,
    refuses us, or is not configured (already said)."""
    from connectors.setup import SETUPS, run
    from syncengine.progress import progress

    findings = [] if receiver else _webhook_findings(None, apply, [])
    with progress("setup", total=len(wanted), unit="vendors") as bar:
        for system in wanted:
            bar.describe(f"setup {system}")
            found = run(apply=apply, systems=[system]) if system in SETUPS else []
            down = any(f.subject == "-" and (f.problem or f.status == "skipped") for f in found)
            findings += (
                found if down or not receiver else [*found, *_webhook_findings(receiver, apply, [system])]
            )
            bar.advance()
    return findings


def _webhook_findings(receiver: str | None, apply: bool, systems: list[str]) -> list[Any]:
    """`webhooks install|check` as setup findings, one per subscription."""
    from connectors.setup import Finding
    from connectors.subscriptions import reconcile

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


def add_commands(command: Callable[..., argparse.ArgumentParser]) -> None:
    """`command(name, help, description, epilog)` adds one subcommand the way the CLI formats them."""
    setup = command(
        "setup", "create or check what each vendor must hold (schema, permissions, webhooks)",
        "Vendor by vendor: its schema (fields, custom fields, template emails), then the permissions of the "
        "credentials (tried without a visible trace), then our webhook subscriptions. One line per problem "
        "with its fix, and per change made; exit 1 while anything is wrong, so a deploy script can stop on "
        "it. A vendor that is down or refuses us is one line; the others are still set up.",
        "examples:\n  syncengine setup --url https://sync.example.com\n  syncengine setup --check\n"
        "  syncengine setup --system mautic --system revolut --verbose",
    )  # fmt: skip
    setup.add_argument("--check", action="store_true", help="change nothing; a line per problem and its fix")
    setup.add_argument("--system", choices=SYSTEMS, action="append",
                       help="only this one (repeatable); default: every configured one")  # fmt: skip
    setup.add_argument("--url", help="the receiver's public base URL; default: SYNCENGINE_PUBLIC_URL")
    setup.add_argument("--verbose", action="store_true", help="also list what is already in place")
    setup.set_defaults(func=cmd_setup)

    hooks = command(
        "webhooks", "install or check our webhook subscriptions in every vendor",
        "install keeps exactly one subscription of ours per (event, our URL) in each vendor: creates what is "
        "missing, corrects what differs, moves ours to --url, removes duplicates; others' subscriptions are "
        "left alone. check changes nothing and exits 1 when anything is missing, outdated, stale or "
        "duplicated.",
        "examples:\n  syncengine webhooks install --url https://sync.example.com\n"
        "  syncengine webhooks check --system erpnext",
    )  # fmt: skip
    hooks.add_argument("action", choices=["install", "check"], help="install (create, correct) or check")
    hooks.add_argument("--url", help="the receiver's public base URL; default: SYNCENGINE_PUBLIC_URL")
    hooks.add_argument("--system", choices=SYSTEMS, action="append",
                       help="only this one (repeatable); default: every configured one")  # fmt: skip
    hooks.set_defaults(func=cmd_webhooks)

    command(
        "flower",
        "the Celery monitor, behind FLOWER_BASIC_AUTH or Flower's OAuth",
        "Run Flower on PORT (else FLOWER_PORT, 5555) behind FLOWER_BASIC_AUTH or Flower's OAuth variables; "
        "Flower's own /metrics and /healthcheck are behind them too.",
        "example:\n  FLOWER_BASIC_AUTH=ops:$(openssl rand -hex 16) syncengine flower",
    ).set_defaults(func=cmd_flower)
