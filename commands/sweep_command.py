"""`syncengine sweep`: sweeps run here and now by an operator, with progress on a terminal and one line per
sweep. A vendor that is down, mistyped or refuses us is one line (commands.explain.vendor_failure), and
that vendor's other sweeps are skipped. The calls go through breakers of this process only: a sweep against
a mistyped URL must not open the breaker every worker shares (syncengine.breaker.keep_local)."""

from __future__ import annotations

import sys
from datetime import datetime

from syncengine.breaker import keep_local
from syncengine.progress import progress

from .explain import DEBUG, USAGE, Mistake, explain, vendor_failure


def run(system: str | None, kind: str | None, since: datetime | None) -> int:
    """0 when every sweep ran; else the worst exit code of the vendors that failed (2: configuration)."""
    from tasks.reconcile import kinds_for

    keep_local()
    targets = kinds_for(system, kind)
    if not targets:
        raise _no_sweep(system, kind)
    failed: dict[str, int] = {}
    for target_system, target_kind in targets:
        if target_system in failed:
            continue
        mistake = _one(target_system, target_kind, since)
        if mistake is not None:
            print(f"{target_system} {target_kind}: {mistake}", file=sys.stderr)
            failed[target_system] = mistake.code
    if len(targets) > 1:
        for skipped in failed:
            print(f"{skipped}'s other sweeps skipped", file=sys.stderr)
    return max(failed.values(), default=0)


def _one(system: str, kind: str, since: datetime | None) -> Mistake | None:
    from tasks.reconcile import sweep

    try:
        with progress(f"sweep {system} {kind}", unit="listed") as bar:
            result = sweep(system, kind, since=since, on_page=lambda r: bar.set(done=r.listed, new=r.new))
    except Exception as exc:
        if explain(exc) is not None or DEBUG["on"]:  # our own environment, not the vendor's; or --debug
            raise
        return vendor_failure(system, exc)
    print(f"{system} {kind}: {result.listed:,} listed, {result.new:,} new, cursor {result.cursor}")
    return None


def _no_sweep(system: str | None, kind: str | None) -> Mistake:
    from tasks.reconcile import kinds_for
    from tasks.sweep_sources import SOURCES

    if system is None:
        if not kinds_for():
            return Mistake(
                "no system is configured", "set a vendor's URL and credentials (README: Configuration)"
            )
        return Mistake(f"no configured system has a {kind} sweep", "see `syncengine sweep --help`")
    kinds = sorted(k for s, k in SOURCES if s == system)
    return Mistake(f"{system} has no {kind} sweep", f"its sweeps: {', '.join(kinds)}", USAGE)
