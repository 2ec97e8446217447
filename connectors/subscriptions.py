"""`syncengine webhooks install` / `check`: our webhook subscriptions in each service, through its own API.

What we want is declared once per service (`wanted`): one subscription per (event, our URL). Install lists
what the service holds, keeps one of ours per event (moving it to our URL when it points elsewhere),
creates what is missing, corrects what differs and removes the rest of ours (duplicates, and ours at
another URL), so a second run changes nothing; check only reports. Anything the service sends elsewhere
that is not ours is left alone. How a subscription is recognised as ours is each vendor's own
(`connectors/<vendor>_hooks.py`, named by its `hooks` in syncengine.vendors.REGISTRY): by its name where we
name it, else by our receiver's path in its URL, on any host.

So one deployment per vendor account: a second deployment's subscriptions would look like ours at another
URL and be moved.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from functools import cache
from typing import Any

from syncengine.errors import AuthExpired, SyncError
from syncengine.redaction import redact
from syncengine.settings import Settings, get_settings
from syncengine.vendors import REGISTRY

from . import connector_for, load
from .hooks import PROBLEMS, Change, Held, Hooks, Want, differs, label

__all__ = ["PROBLEMS", "Change", "hooks", "reconcile"]


@cache
def hooks() -> dict[str, type[Hooks]]:
    """Each vendor's subscriptions (its `hooks` in syncengine.vendors.REGISTRY), by system."""
    return {name: load(vendor.hooks) for name, vendor in REGISTRY.items() if vendor.hooks}


def _connector(system: str, settings: Settings) -> Any:
    if system == "revolut":
        from connectors.revolut import RevolutConnector

        base = (settings.services["revolut"].url or "").removesuffix("/1.0") + "/2.0"
        return RevolutConnector(base)
    return connector_for(system)


def reconcile(
    receiver: str, *, apply: bool, systems: Iterable[str] | None = None, settings: Settings | None = None,
    connector: Callable[[str, Settings], Any] = _connector,
) -> list[Change]:  # fmt: skip
    """Create/correct/remove (apply) or only compare (check) our subscriptions; one Change per line. A
    service that is down, refuses us or is not configured is one line and the others are still done."""
    settings = settings or get_settings()
    changes: list[Change] = []
    for system in systems or hooks():
        svc = settings.services[system]
        secret = svc.webhook_secrets[0].reveal() if svc.webhook_secrets else None
        if not svc.configured:
            changes.append(Change(system, "-", "skipped", f"{system.upper()}_URL is not set"))
            continue
        if secret is None and hooks()[system].needs_our_secret:
            changes.append(Change(system, "-", "skipped", f"set {system.upper()}_WEBHOOK_SECRET first"))
            continue
        try:
            vendor = hooks()[system](connector(system, settings), receiver, secret)
            changes.extend(_reconcile_one(vendor, apply))
        except Exception as exc:  # one vendor down or misconfigured must not hide the others' report
            changes.append(failure(system, exc))
    return changes


def failure(system: str, exc: Exception, refused: str | None = None) -> Change:
    """A vendor's failure as one line with what to do: refused credentials (401) say which settings to check,
    a refused call (403) what to grant (`refused`, else what managing webhooks needs), anything else what
    broke. Shared with `setup`."""
    detail = redact(f"{type(exc).__name__}: {exc}")[:300]
    vendor, status = hooks()[system], getattr(exc, "status", None)
    if isinstance(exc, AuthExpired) or status == 401:
        return Change(system, "-", "forbidden", detail, f"check {vendor.credentials}")
    if status == 403:
        return Change(system, "-", "forbidden", detail, refused or vendor.forbidden_fix)
    if isinstance(exc, SyncError):
        fix = f"check {system.upper()}_URL and that the service answers"
    elif isinstance(exc, ValueError):  # a connector refusing incomplete settings
        fix = f"complete the {system.upper()}_* settings (README: Configuration)"
    else:
        fix = "this is a bug in syncengine: please report it"
    return Change(system, "-", "error", detail, fix)


def _reconcile_one(vendor: Hooks, apply: bool) -> list[Change]:
    held, wanted = vendor.ours(), vendor.wanted()
    kept: set[str] = set()
    out = []
    for want in wanted:
        same = [h for h in held if h.key == want.key]
        keep = _best(want, [h for h in same if h.url == want.url] or same)
        if keep is None:
            note = vendor.create(want) if apply else ""
            out.append(
                Change(vendor.system, label(want.key, want.url), "created" if apply else "missing", note)
            )
            continue
        kept.add(keep.vendor_id)
        out.append(_correct(vendor, keep, want, apply))
        if (more := vendor.kept(keep, apply)) is not None:
            out.append(more)
    wanted_at = {(w.key, w.url) for w in wanted}
    for extra in (h for h in held if h.vendor_id not in kept):
        kind = "duplicate" if (extra.key, extra.url) in wanted_at else "stale"
        if apply:
            vendor.remove(extra)
        out.append(Change(vendor.system, label(extra.key, extra.url), "removed" if apply else kind,
                          kind if apply else ""))  # fmt: skip
    return out


def _best(want: Want, candidates: list[Held]) -> Held | None:
    """The one to keep among ours for a wanted subscription: the one closest to it."""
    return min(candidates, key=lambda h: len(differs(want.body, h.fields)), default=None)


def _correct(vendor: Hooks, keep: Held, want: Want, apply: bool) -> Change:
    wrong = differs(want.body, keep.fields)
    name = label(want.key, want.url)
    if not wrong:
        return Change(vendor.system, name, "unchanged")
    if apply:
        vendor.update(keep, want, wrong)
    detail = f"moved from {keep.url}" if keep.url != want.url else ", ".join(wrong)
    if not apply and keep.url != want.url:
        detail = f"sends to {keep.url}"
    return Change(vendor.system, name, "updated" if apply else "outdated", detail)
