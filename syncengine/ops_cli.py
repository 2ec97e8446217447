"""The operations subcommands of `syncengine`: `flower`, and `webhooks install|check`."""

from __future__ import annotations

import argparse
import os
import sys


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


def add_commands(sub: argparse._SubParsersAction) -> None:
    sub.add_parser("flower", help="Flower, refused without FLOWER_BASIC_AUTH or Flower's OAuth").set_defaults(
        func=cmd_flower
    )
    hooks = sub.add_parser("webhooks", help="create (install) or compare (check) our vendor subscriptions")
    hooks.add_argument("action", choices=["install", "check"])
    hooks.add_argument("--url", help="the receiver's public base URL (default SYNCENGINE_PUBLIC_URL)")
    hooks.add_argument(
        "--system", choices=["invoiceninja", "erpnext", "mautic", "directus", "revolut"], help="only this one"
    )
    hooks.set_defaults(func=cmd_webhooks)
