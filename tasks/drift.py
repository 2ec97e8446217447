"""The daily drift report (docs/architecture.md, Sweeps and drift): per (system, kind), what each system holds
against the hub.

Sweeps see changes; a change no sweep can list (a Mautic or Directus hard delete, an edit older than a
cursor that was reset) or a push that gave up leaves a system different from the hub without any event.
Once a day every carrier is listed in full and compared with the records and links: live counts, a digest
of content hashes on each side, and each object that differs. The comparison uses the mappers' canonical
fields and the content hash of echo suppression: an object differs when the hub never saw the version the
system holds (a lost event), or when the hub holds a change from elsewhere that never reached it (a push
that gave up). The digests are over (id, hash) on each side, the hub's side being the version it saw.
It reports and never repairs: differences go to `syncengine status --drift` and to one Directus review
item per run, for a person to decide.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from connectors.adapters import adapter_for
from syncengine.db import session_scope
from syncengine.errors import SyncError
from syncengine.idempotency import Effect
from syncengine.models import Link, Record, SyncCursor, utcnow
from syncengine.records import already_has, content_hash, push_fields
from syncengine.settings import get_settings

log = logging.getLogger(__name__)

PAGE = 500
Listing = Callable[[Any], Iterable[dict[str, Any]]]  # connector -> every object of the kind, archived too

# Invoice Ninja: active rows only, an archived one is what F9 leaves behind. Kinds whose list rows carry
# every mapped field (ERPNext Sales Invoices keep their lines in a child table
# that lists do not return: reading each would be a request per invoice, so they are left out).
LISTINGS: dict[tuple[str, str], Listing] = {
    ("invoiceninja", "contact"): lambda c: c.paginate("clients", {"status": "active"}, page_size=PAGE),
    ("invoiceninja", "product"): lambda c: c.paginate("products", {"status": "active"}, page_size=PAGE),
    ("invoiceninja", "invoice"): lambda c: c.paginate("invoices", {"status": "active"}, page_size=PAGE),
    ("erpnext", "contact"): lambda c: c.iter_documents("Customer", page_size=PAGE),
    ("erpnext", "product"): lambda c: c.iter_documents("Item", page_size=PAGE),
    ("mautic", "contact"): lambda c: c.iter_contacts(page_size=100),  # Mautic's list limit is modest
    ("directus", "contact"): lambda c: c.items("contacts", page_size=PAGE),
    ("directus", "product"): lambda c: c.items("products", page_size=PAGE),
    ("directus", "invoice"): lambda c: c.items("invoices", page_size=PAGE),
}  # fmt: skip

NOT_IN_HUB = "in the system, unknown to the hub"
NOT_IN_SYSTEM = "in the hub, not in the system"
DIFFERS = "content differs from the hub"
DELETED_IN_HUB = "deleted in the hub, live in the system"


@dataclass
class Difference:
    problem: str
    external_id: str | None = None
    record_id: int | None = None
    # The hub saw this very content (a conflict or an owned field group it did not take) or never did (an
    # event that was lost).
    seen_by_hub: bool | None = None


@dataclass
class KindDrift:
    system: str
    kind: str
    in_system: int = 0
    in_hub: int = 0
    system_digest: str = ""
    hub_digest: str = ""
    differences: list[Difference] = field(default_factory=list)
    error: str | None = None


@dataclass
class _Object:
    external_id: str
    hash: str  # content hash of its canonical fields, as echo suppression stores it in links
    live: bool


def compare(session: Session, system: str, kind: str, objects: Iterable[dict[str, Any]]) -> KindDrift:
    """One (system, kind) against the hub: every live object, every live record."""
    adapter = adapter_for(system, kind)
    found: dict[str, _Object] = {}
    for obj in objects:
        change = adapter.to_change(obj)
        found[change.external_id] = _Object(
            change.external_id, content_hash(change.fields), not change.deleted
        )
    rows = session.execute(
        select(Record, Link)
        .outerjoin(Link, (Link.record_id == Record.id) & (Link.system == system))
        .where(Record.kind == kind)
    ).all()  # fmt: skip
    report = KindDrift(system, kind, in_system=sum(o.live for o in found.values()))
    hub_side, linked = [], set()
    # A system that cannot archive (Mautic keeps a contact's marketing history) keeps its copy of a deleted
    # record by design (tasks.push._archive): that is no drift.
    archives = getattr(adapter, "archive", None) is not None
    for record, link in rows:
        if link is not None:
            linked.add(link.external_id)
        if record.deleted_at is not None:
            obj = found.get(link.external_id) if link is not None else None
            if obj is not None and obj.live and archives:
                report.differences.append(Difference(DELETED_IN_HUB, obj.external_id, record.id))
            continue
        report.in_hub += 1
        if link is None:
            report.differences.append(Difference(NOT_IN_SYSTEM, None, record.id))
            continue
        known = (link.last_seen_hash, link.last_pushed_hash)
        obj = found.get(link.external_id)
        if obj is None or not obj.live:
            report.differences.append(Difference(NOT_IN_SYSTEM, link.external_id, record.id))
            continue
        hub_side.append(f"{link.external_id}:{obj.hash if obj.hash in known else link.last_seen_hash}")
        if obj.hash not in known:
            report.differences.append(Difference(DIFFERS, obj.external_id, record.id, seen_by_hub=False))
        elif _owed(record, link, system, push_fields(adapter, record)):
            report.differences.append(Difference(DIFFERS, obj.external_id, record.id, seen_by_hub=True))
    for obj in found.values():
        if obj.live and obj.external_id not in linked:
            report.differences.append(Difference(NOT_IN_HUB, obj.external_id))
    system_side = [f"{o.external_id}:{o.hash}" for o in found.values() if o.live and o.external_id in linked]
    report.system_digest, report.hub_digest = _digest(system_side), _digest(hub_side)
    return report


def _owed(record: Record, link: Link, system: str, carried: dict[str, Any]) -> bool:
    """The hub holds a change made elsewhere that never reached this system (a push that gave up): what
    it would push is neither what it last pushed nor what the system already has per field group, and
    some field group's latest change came from another system."""
    if link.last_pushed_hash == content_hash(carried) or already_has(link, record.kind, carried):
        return False
    return any(meta.get("system") != system for meta in (record.field_meta or {}).values())


def _digest(entries: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(entries)).encode()).hexdigest()[:16]


def run(connector_for: Callable[[str], Any] | None = None) -> list[KindDrift]:
    """Compare every configured (system, kind), store the report, file one review when anything differs."""
    from connectors import connector_for as default_connector

    connector_for = connector_for or default_connector
    services = get_settings().services
    reports = []
    for system, kind in LISTINGS:
        if not services[system].configured:
            continue
        try:
            objects = list(LISTINGS[(system, kind)](connector_for(system)))
        except SyncError as exc:
            reports.append(KindDrift(system, kind, error=str(exc)[:300]))
            continue
        with session_scope() as session:
            reports.append(compare(session, system, kind, objects))
    ran_at = utcnow()
    save(reports, ran_at)
    if any(r.differences or r.error for r in reports) and services["directus"].configured:
        file_review(reports, ran_at.isoformat())
    return reports


# --- where the report goes --------------------------------------------------------------------------------

HUB = "hub"  # the system the hub's own reports are kept under in sync_cursors
REPORT_KIND = "drift"  # the daily full sweep's report


def save(reports: list[KindDrift], ran_at: Any) -> None:
    keep(REPORT_KIND, {"ran_at": ran_at.isoformat(), "kinds": [asdict(r) for r in reports]}, ran_at)


def last_report() -> dict[str, Any] | None:
    return kept(REPORT_KIND)


def keep(kind: str, stats: dict[str, Any], ran_at: Any) -> None:
    """The hub's last report of this kind (the drift report, the repair run), in place of the one before:
    one row of sync_cursors under HUB."""
    with session_scope() as session:
        session.execute(delete(SyncCursor).where(SyncCursor.system == HUB, SyncCursor.kind == kind))
        session.add(SyncCursor(system=HUB, kind=kind, cursor=None, swept_at=ran_at, stats=stats))


def kept(kind: str) -> dict[str, Any] | None:
    with session_scope() as session:
        return session.execute(
            select(SyncCursor.stats).where(SyncCursor.system == HUB, SyncCursor.kind == kind)
        ).scalar_one_or_none()


def render(report: dict[str, Any] | None, limit: int = 50) -> str:
    """The report as `syncengine status --drift` prints it: one line per (system, kind), then each
    difference (the first `limit` of each)."""
    if not report:
        return "no drift report yet (the beat runs one daily; `syncengine status --drift` shows the last)"
    lines = [f"drift report of {report['ran_at']}"]
    for kind in report["kinds"]:
        name = f"{kind['system']} {kind['kind']}"
        if kind.get("error"):
            lines.append(f"  {name}: not compared: {kind['error']}")
            continue
        same = "same" if kind["system_digest"] == kind["hub_digest"] else "differ"
        lines.append(
            f"  {name}: {kind['in_system']} live in the system, {kind['in_hub']} in the hub, digests {same}, "
            f"{len(kind['differences'])} differences"
        )
        for diff in kind["differences"][:limit]:
            seen = {True: " (the hub saw this version)", False: " (never seen by the hub)"}.get(
                diff["seen_by_hub"], ""
            )
            lines.append(
                f"    {diff['problem']}: external id {diff['external_id']}, record {diff['record_id']}{seen}"
            )
        if len(kind["differences"]) > limit:
            lines.append(f"    … and {len(kind['differences']) - limit} more")
    return "\n".join(lines)


def file_review(reports: list[KindDrift], ran_at: str) -> dict[str, Any]:
    """One review item per run in Directus, with the differences; created once even if the run repeats."""
    from connectors import connector_for

    count = sum(len(r.differences) for r in reports)
    failed = [f"{r.system} {r.kind}" for r in reports if r.error]
    stats = {"ran_at": ran_at, "kinds": [asdict(r) for r in reports]}
    review = {
        "ext_id": f"drift:{ran_at}",
        "kind": "drift",
        "title": f"drift: {count} differences" + (f", not compared: {', '.join(failed)}" if failed else ""),
        "details": render(stats, limit=20)[:20000],
    }
    effect = Effect(f"review:directus:drift:{ran_at}", "directus", "create_review", review["ext_id"])
    return connector_for("directus").create_review(effect, review)
