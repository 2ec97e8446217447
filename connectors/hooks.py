"""What a vendor's webhook subscriptions are made of, for `webhooks install` (connectors.subscriptions):
the subscription we want, one of ours the vendor holds, and the calls each vendor's `<vendor>_hooks` module
implements to list, create, update and remove them."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

OUR_NAME = "syncengine"  # the name (or name prefix) of what we create where the vendor names things
# Report actions: install does (created, updated, removed); check finds (missing, outdated, stale,
# duplicate); both may say unchanged, skipped, forbidden or error.
PROBLEMS = frozenset({"missing", "outdated", "stale", "duplicate", "forbidden", "error"})


@dataclass(frozen=True)
class Change:
    """One line of install's or check's report."""

    system: str
    subscription: str
    action: str
    detail: str = ""
    fix: str = ""

    @property
    def problem(self) -> bool:
        return self.action in PROBLEMS

    def __str__(self) -> str:
        line = f"{self.system:<13} {self.action:<9} {self.subscription}"
        line += f" ({self.detail})" if self.detail else ""
        return line + (f" -> {self.fix}" if self.fix else "")


@dataclass
class Want:
    """A subscription we want: what it subscribes to (`key`), where it sends, the fields that must hold."""

    key: str
    url: str
    body: dict[str, Any]
    # Fields sent on create but not compared (a secret the API masks when read back).
    create_only: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Held:
    """A subscription of ours the service holds: its id there, what it subscribes to, where it sends."""

    vendor_id: str
    key: str
    url: str
    fields: Mapping[str, Any]


def differs(want: Mapping[str, Any], have: Mapping[str, Any]) -> list[str]:
    """The wanted fields whose value in the service is something else."""
    return [k for k, v in want.items() if _norm(have.get(k)) != _norm(v)]


def _norm(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return sorted(json.dumps(_norm(v), sort_keys=True) for v in value)
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dict):
        return {k: _norm(v) for k, v in value.items()}
    return str(value) if isinstance(value, int) else value


def our_path(url: str, sender: str, *, event: bool = False) -> bool:
    """True when the URL's path is our receiver's for `sender` (with an event segment if `event`), on any
    host and under any prefix: a receiver that moved is still ours."""
    path = urlsplit(str(url or "")).path.rstrip("/")
    tail = r"/[^/]+" if event else ""
    return re.search(rf"/webhooks/{re.escape(sender)}{tail}$", path) is not None


class Hooks:
    """How one service lists, creates, updates and removes our subscriptions."""

    system = ""
    credentials = ""  # the settings holding our credentials there, for a refused login
    forbidden_fix = ""  # what a person grants when the service refuses these calls to our credentials
    needs_our_secret = True  # False where the vendor signs with a secret of its own (Revolut)

    def __init__(self, connector: Any, receiver: str, secret: str | None) -> None:
        self.api = connector
        self.receiver = receiver.rstrip("/")
        self.secret = secret

    def wanted(self) -> list[Want]:
        raise NotImplementedError

    def ours(self) -> list[Held]:
        """Every subscription the service holds that is ours (see the module docstring), wherever it sends."""
        raise NotImplementedError

    def create(self, want: Want) -> str:
        """Create it; returns a note for the report (empty when there is nothing to say)."""
        raise NotImplementedError

    def update(self, held: Held, want: Want, fields: list[str]) -> None:
        raise NotImplementedError

    def remove(self, held: Held) -> None:
        raise NotImplementedError

    def kept(self, held: Held, apply: bool) -> Change | None:
        """Anything else to check of a subscription we keep (Revolut: its signing secret is stored)."""
        return None


def label(key: str, url: str) -> str:
    return f"{key} at {url}"
