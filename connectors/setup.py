"""`syncengine setup`: what each vendor must hold on its side for the engine to work, created or checked
through the vendor's own API.

A vendor's needs (collections and fields, custom fields, masters such as a tax account, the emails we
send, the permissions of our credentials) are declared once in its home (`syncengine.vendors.<vendor>`);
its `VendorSetup` here reads that declaration, compares it with what the vendor holds, and creates or
corrects what it can. Each finding is one line: what is wrong and what to do about it. A problem that
setup cannot fix (a permission only an administrator can grant, a company that does not exist) stays a
problem after `setup`, so the command exits 1 until a person has fixed it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from syncengine.settings import Settings, get_settings
from syncengine.vendors import REGISTRY

from . import connector_for, load

OK, CREATED, UPDATED, REMOVED = "ok", "created", "updated", "removed"
MISSING, WRONG, FORBIDDEN, ERROR = "missing", "wrong", "forbidden", "error"
SKIPPED = "skipped"
# A webhook subscription's own words (connectors.subscriptions): outdated, or ours left over (a duplicate,
# or one sending to another URL).
OUTDATED, STALE, DUPLICATE = "outdated", "stale", "duplicate"
PROBLEMS = frozenset({MISSING, WRONG, FORBIDDEN, ERROR, OUTDATED, STALE, DUPLICATE})


@dataclass(frozen=True)
class Finding:
    """One line of setup's report: a thing the engine needs in a vendor, and its state there."""

    system: str
    subject: str  # what is needed: "field contacts.phone", "Custom Field Customer.custom_syncengine_id"
    status: str  # ok, created, updated, missing, wrong, forbidden, error, skipped
    detail: str = ""  # what is wrong, or what was done
    fix: str = ""  # for a problem: what a person does about it, in one line

    @property
    def problem(self) -> bool:
        return self.status in PROBLEMS

    def __str__(self) -> str:
        line = f"{self.system:<13} {self.status:<9} {self.subject}"
        if self.detail:
            line += f": {self.detail}"
        if self.problem and self.fix:
            line += f" -> {self.fix}"
        return line


class VendorSetup:
    """One vendor's side of `setup`. Subclasses implement `schema` and `permissions`; both take the
    connector built from the settings, so they call the vendor exactly as the engine does."""

    system = ""

    def __init__(self, connector: Any, settings: Settings) -> None:
        self.api = connector
        self.settings = settings

    def schema(self, apply: bool) -> list[Finding]:
        """Compare what the vendor holds with the declaration; with `apply`, create or correct it."""
        return []

    def permissions(self) -> list[Finding]:
        """Try each call the engine will make, without changing anything the business can see."""
        return []

    # --- for subclasses ------------------------------------------------------------------------------

    def finding(self, subject: str, status: str, detail: str = "", fix: str = "") -> Finding:
        return Finding(self.system, subject, status, detail, fix)

    def fixable(self, subject: str, apply: bool, create: Callable[[], Any], detail: str,
                *, status: str = MISSING, done: str = CREATED) -> Finding:  # fmt: skip
        """A difference setup can mend: mended with `apply`, else reported with the command that mends it."""
        if not apply:
            return self.finding(subject, status, detail, f"run `syncengine setup --system {self.system}`")
        create()
        return self.finding(subject, done, detail)


# The systems with something to set up on their side, by name.
SETUPS = tuple(sorted(name for name, vendor in REGISTRY.items() if vendor.setup))


def setup_for(system: str, settings: Settings) -> VendorSetup | None:
    """The vendor's setup (its `setup` in syncengine.vendors.REGISTRY; None when it needs none), imported
    only when run, with the process's connector."""
    vendor = REGISTRY.get(system)
    if vendor is None or not vendor.setup:
        return None
    return load(vendor.setup)(connector_for(system), settings)


def run(
    *, apply: bool, systems: Iterable[str] | None = None, settings: Settings | None = None,
    setup: Callable[[str, Settings], VendorSetup | None] = setup_for,
) -> list[Finding]:  # fmt: skip
    """Every configured system's schema, then its permissions; a vendor that is down, refuses us or fails
    in any other way stays one line (subject "-") and the others are still checked."""
    settings = settings or get_settings()
    findings: list[Finding] = []
    for system in systems or SETUPS:
        svc = settings.services.get(system)
        if svc is not None and not svc.configured:
            findings.append(Finding(system, "-", SKIPPED, f"{system.upper()}_URL is not set"))
            continue
        try:
            vendor = setup(system, settings)
            if vendor is None:
                continue
            findings.extend(vendor.schema(apply))
            findings.extend(vendor.permissions())
        except Exception as exc:  # one line per vendor, never a traceback
            findings.append(failed(system, exc))
    return findings


def failed(system: str, exc: Exception) -> Finding:
    """A vendor that could not be set up, as one line with what to do about it."""
    from .subscriptions import failure, hooks

    held = hooks().get(system)
    credentials = held.credentials if held is not None else f"{system.upper()}_*"
    line = failure(
        system, exc, f"check {credentials} and what they may do (README: Connecting the real systems)"
    )
    return Finding(system, "-", line.action, line.detail, line.fix)
