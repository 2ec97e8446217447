"""Our own writes coming back, known at intake: a webhook that carries one object of a contact or product
exactly as our last push there left it is the echo the worker would drop (tasks.sync `_echo_as_sent`, the
merge's echo rule), so it is stored already done, in the round trip of its INSERT, and costs no task.

Only what the worker's handler reads as sent counts: a whole Invoice Ninja entity, a Mautic contact, the
document of our ERPNext Webhook template, a Directus create's input. Anything else (an object we have no
link for yet, other content, a payload that does not read) is stored as before and handled by a task,
which decides as it always did: an edit is never taken for an echo here that the worker would not."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from typing import Any

from connectors.adapters import Adapter, adapter_for, adapters
from connectors.base import marker_lock
from connectors.erpnext_mapping import CustomerAdapter, ItemAdapter
from syncengine.errors import Retryable
from syncengine.inbox import Echo, NewEvent
from syncengine.locks import lock
from syncengine.records import content_hash
from syncengine.vendors import directus, erpnext

log = logging.getLogger(__name__)

AsSent = Callable[[dict[str, Any]], list[dict[str, Any]]]


def _whole(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [payload]


def _contact(payload: dict[str, Any]) -> list[dict[str, Any]]:
    return [payload["contact"]] if isinstance(payload.get("contact"), dict) else []


def _doc(doctype: str) -> AsSent:
    return lambda payload: erpnext.doc_as_sent(payload, doctype)


# ERPNext's stamps are read in the site's time zone, which its adapter asks the site for once: the receiver
# calls no vendor, and takes no stamp from ERPNext (as note_echo), so these read the fields alone.
_FIELDS_ONLY: dict[tuple[str, str], Adapter] = {
    ("erpnext", "contact"): CustomerAdapter(site_timezone=UTC),
    ("erpnext", "product"): ItemAdapter(site_timezone=UTC),
}

# (source, event type) -> (kind, the objects as the payload carries them, whether the merge would note its
# stamp); the events the contact and product handlers take (tasks.clients, tasks.products), but archives,
# deletes and restores.
CARRIED: dict[tuple[str, str], tuple[str, AsSent, bool]] = {
    **{("invoiceninja", f"{op}_client"): ("contact", _whole, True) for op in ("create", "update")},
    **{("invoiceninja", f"{op}_product"): ("product", _whole, True) for op in ("create", "update")},
    **{("mautic", event): ("contact", _contact, True)
       for event in ("mautic.lead_post_save_new", "mautic.lead_post_save_update")},
    **{("erpnext", event): ("contact", _doc("Customer"), False) for event in erpnext.changes("Customer")},
    **{("erpnext", event): ("product", _doc("Item"), False) for event in erpnext.changes("Item")},
    ("directus", "contacts.items.create"): ("contact", directus.created_item, False),
    ("directus", "products.items.create"): ("product", directus.created_item, False),
}  # fmt: skip


@dataclass(frozen=True)
class Probe:
    """What to compare with the object's link, and the lock a push creating that object holds until it
    has stored the link (connectors.base.create_once): the echo of a create usually comes while the push
    is still storing it, and is known once that lock is free (the worker's `_await_our_create` waits the
    same way)."""

    echo: Echo
    marker: str | None


def echo_of(event: NewEvent) -> Probe | None:
    """The probe, when the event carries exactly one object of a kind that the receiver can read; None
    otherwise. `at` is noted as the merge's echo rule notes it (the stamp of a whole entity), not for a
    payload the worker takes with note_echo (no stamp)."""
    carried = CARRIED.get((event.source, event.event_type))
    if carried is None or not isinstance(event.payload, dict):
        return None
    kind, as_sent, stamped = carried
    adapter = _FIELDS_ONLY.get((event.source, kind)) or adapters().get((event.source, kind))
    try:
        objs = as_sent(event.payload)
        if adapter is None or len(objs) != 1:
            return None
        change = adapter.to_change(objs[0])
    except Exception:  # not readable here: the worker reads it as it always did
        log.debug("%s %s not read at intake", event.source, event.event_type, exc_info=True)
        return None
    if change.deleted:
        return None
    at = change.remote_updated_at if stamped else None
    echo = Echo(change.system, change.kind, change.external_id, content_hash(change.fields), at)
    return Probe(echo, _marker(change.system, adapter_for(change.system, change.kind), change.fields))


def _marker(system: str, adapter: Any, fields: dict[str, Any]) -> str | None:
    marker = getattr(adapter, "marker", None)
    try:
        return marker_lock(system, marker(fields)) if marker is not None else None
    except Exception:  # nothing to create it by (no SKU): nothing of ours creates it under a lock
        return None


def settle(row_id: int, probe: Probe, close: Callable[[int, Echo], bool], wait: float) -> bool:
    """After the answer: wait (at most `wait` seconds) for a create of that object in flight to store its
    link, then close the event if it is our echo after all. False: a worker must handle it."""
    if probe.marker is not None:
        try:
            with lock(probe.marker, timeout=1.0, wait=wait):
                pass
        except Retryable:
            return False  # still creating it: the worker waits for it as before
    return close(row_id, probe.echo)
