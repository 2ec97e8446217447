"""Anti-entropy (issue 15): compare every linked object's carried fields in each system with the hub, and
repair each divergence by the conflict policy.

The comparison is the drift report's (tasks.drift: one listing per (system, kind), paged, then content
hashes against the links), so it costs O(objects) reads; a repair costs O(differences) writes. A system
that holds a state the hub never saw (a lost event, an object the hub does not know, a copy live there
whose record is deleted) has that state merged as a change from that system, as its webhook would have
been: the conflict policy decides, and whoever holds a losing value is pushed the winner. A system that
misses a change the hub holds (a push that gave up) is pushed it. A linked object gone from its system
without an event is left for a person (a delete, or a restore elsewhere, is theirs to decide). Every
repair is recorded (`syncengine status --drift`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

from connectors.adapters import adapter_for
from syncengine.db import session_scope
from syncengine.errors import SyncError
from syncengine.models import utcnow
from syncengine.records import merge, note_held
from syncengine.redaction import redact
from syncengine.settings import get_settings
from syncengine.tombstones import buried
from tasks import drift

from .push import push_record

log = logging.getLogger(__name__)

MERGE, PUSH, LEFT = "merge", "push", "left for a person"
REPORT_KIND = "repair"  # the last run's row in sync_cursors (tasks.drift.keep)


@dataclass
class Repair:
    system: str
    kind: str
    problem: str
    external_id: str | None
    record_id: int | None
    action: str
    outcome: str = ""

    @property
    def failed(self) -> bool:
        return self.outcome.startswith("failed")


def action(diff: drift.Difference) -> str:
    """What the conflict policy asks for one difference."""
    if diff.problem == drift.NOT_IN_SYSTEM:
        return PUSH if diff.external_id is None else LEFT
    if diff.problem == drift.DIFFERS and diff.seen_by_hub:
        return PUSH
    return MERGE  # DIFFERS never seen, NOT_IN_HUB, DELETED_IN_HUB: that system's state goes through the hub


def kinds(system: str | None = None, kind: str | None = None) -> list[tuple[str, str]]:
    services = get_settings().services
    return [
        (s, k) for s, k in drift.LISTINGS
        if system in (None, s) and kind in (None, k) and services[s].configured
    ]  # fmt: skip


def repair_kind(
    system: str, kind: str, connector: Any, *, dry_run: bool, again: str = "repair",
    on_repair: Callable[[Repair], None] | None = None,
) -> list[Repair]:  # fmt: skip
    """One (system, kind): list it, compare it, repair (or, dry, only say) each difference."""
    objects = list(drift.LISTINGS[(system, kind)](connector))
    adapter = adapter_for(system, kind)
    by_id = {adapter.to_change(obj).external_id: obj for obj in objects}
    with session_scope() as session:
        report = drift.compare(session, system, kind, objects)
    repairs = []
    for diff in report.differences:
        repair = Repair(system, kind, diff.problem, diff.external_id, diff.record_id, action(diff))
        repair.outcome = "would " + repair.action if dry_run and repair.action != LEFT else ""
        if not dry_run and repair.action != LEFT:
            repair.outcome = _repair(repair, by_id.get(diff.external_id or ""), again)
        repairs.append(repair)
        if on_repair is not None:
            on_repair(repair)
    return repairs


def _repair(repair: Repair, obj: dict[str, Any] | None, again: str) -> str:
    """Pushes carry `again` in their idempotency keys: the system may have lost what an earlier push of
    the same record version wrote, and that push's stored answer must not stand in for this write."""
    try:
        if repair.action == PUSH:
            return _push(repair.record_id, repair.system, again)
        return _merge(repair, obj, again)
    except SyncError as exc:
        log.warning("repair of %s %s %s failed: %s", repair.system, repair.kind, repair.external_id, exc)
        return f"failed: {redact(str(exc))[:300]}"
    except Exception as exc:  # a bug or conflict on one object (two records claim it) stops no other repair
        log.exception("repair of %s %s %s failed", repair.system, repair.kind, repair.external_id)
        return f"failed: {type(exc).__name__}: {redact(str(exc).splitlines()[0] if str(exc) else '')[:300]}"


def _merge(repair: Repair, obj: dict[str, Any] | None, again: str) -> str:
    """The listed state as a change from its system; then what it holds is written over where it lost,
    and every other system is pushed what the hub now has."""
    if obj is None:
        return "failed: listed object not found again"
    change = adapter_for(repair.system, repair.kind).to_change(obj)
    with session_scope() as session:
        if buried(session, change):
            return "dropped: deleted before the hub knew it"
        merged = merge(session, change)
        note_held(session, change)
    repair.record_id = merged.record_id
    for target in sorted({*merged.targets, repair.system}):  # a push that fails raises: the repair failed
        _push(merged.record_id, target, again)
    return f"merged, {len(merged.changed)} field(s) changed"


def _push(record_id: int | None, system: str, again: str) -> str:
    if record_id is None or not get_settings().services[system].configured:
        return "not pushed"
    return push_record(record_id, system, again)


def run(
    system: str | None = None, kind: str | None = None, *, dry_run: bool = False,
    connector_for: Callable[[str], Any] | None = None, on_kind: Callable[[str, str], Any] | None = None,
) -> list[Repair]:  # fmt: skip
    """Every configured (system, kind) asked for; a system that cannot be listed is one failed repair."""
    from connectors import connector_for as default_connector

    connector_for = connector_for or default_connector
    repairs: list[Repair] = []
    again = f"repair{utcnow():%Y%m%dT%H%M%S%f}"
    for s, k in kinds(system, kind):
        on_repair = on_kind(s, k) if on_kind is not None else None
        try:
            repairs += repair_kind(s, k, connector_for(s), dry_run=dry_run, again=again, on_repair=on_repair)
        except SyncError as exc:
            repairs.append(
                Repair(s, k, "not compared", None, None, "list", f"failed: {redact(str(exc))[:300]}")
            )
    save(repairs, dry_run)
    return repairs


def save(repairs: list[Repair], dry_run: bool) -> None:
    ran_at = utcnow()
    stats = {"ran_at": ran_at.isoformat(), "dry_run": dry_run, "repairs": [asdict(r) for r in repairs]}
    drift.keep(REPORT_KIND, stats, ran_at)


def last_run() -> dict[str, Any] | None:
    return drift.kept(REPORT_KIND)


def render(run_: dict[str, Any] | None, limit: int = 50) -> str:
    """The last repair run as `syncengine status --drift` prints it, after the drift report."""
    if not run_:
        return "no repair run yet (`syncengine reconcile --repair`)"
    repairs = run_["repairs"]
    failed = sum(r["outcome"].startswith("failed") for r in repairs)
    what = "dry run" if run_["dry_run"] else "repair run"
    lines = [f"{what} of {run_['ran_at']}: {len(repairs)} difference(s), {failed} failed"]
    for r in repairs[:limit]:
        lines.append(
            f"  {r['system']} {r['kind']} {r['external_id'] or '-'} (record {r['record_id']}): "
            f"{r['problem']}: {r['action']}: {r['outcome'] or '-'}"
        )
    if len(repairs) > limit:
        lines.append(f"  … and {len(repairs) - limit} more")
    return "\n".join(lines)
