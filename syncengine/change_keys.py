"""The inbox key of one change of one vendor object, the same whether a webhook or a sweep saw it.

`{system}:{entity}:{id}:{modified}[:{state}][:{digest}]`: the receiver derives it from a webhook payload
that carries the vendor's modification stamp, and a sweep from the listed row, so the change seen both ways
is stored once (unique source + event_id). The state (archived, deleted) keeps a delete or archive apart
from the edit stamped in the same second; where the stamp has whole seconds only (Invoice Ninja, Mautic)
a digest of the object keeps two edits of one second apart too, since a collapsed edit would be lost. Where
a payload has no stamp (Directus Flows send the request input, not the row) no key can tell a repeated
delivery from a value set back, so the receiver keeps each update delivery (webhooks.directus) and the
handler's read-back makes a repeat a no-op.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

ARCHIVED, DELETED = "archived", "deleted"


def change_key(
    system: str, entity: str, entity_id: Any, modified: Any, state: str = "", content: str = ""
) -> str:
    return ":".join(
        part for part in (system, entity, str(entity_id), stamp(modified), state, content) if part
    )


def digest(obj: Any) -> str:
    """The object's content, short: a webhook body and a listed row of the same version digest alike."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


def stamp(value: Any) -> str:
    """One spelling per instant: ISO 8601 in UTC for zoned times (`Z` or `+00:00`), naive times (Frappe's
    site zone) as given but in ISO form, Unix seconds as the integer."""
    if isinstance(value, datetime):
        return (value.astimezone(UTC) if value.tzinfo else value).isoformat()
    if isinstance(value, int | float):
        return str(int(value))
    text = str(value).strip()
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00").replace(" ", "T"))
    except ValueError:
        return text
    return (parsed.astimezone(UTC) if parsed.tzinfo else parsed).isoformat()


def invoiceninja_key(entity: str, obj: dict[str, Any]) -> str | None:
    """Invoice Ninja entities carry `updated_at` (Unix seconds), `is_deleted` and `archived_at`."""
    if obj.get("id") in (None, "") or not obj.get("updated_at"):
        return None
    state = DELETED if obj.get("is_deleted") else ARCHIVED if obj.get("archived_at") else ""
    # stamp() spells Unix seconds as the integer; int() here would raise on a mistyped stamp (a 500).
    return change_key("invoiceninja", entity, obj["id"], obj["updated_at"], state, digest(obj))


def erpnext_key(doctype: str, name: Any, modified: Any, *, deleted: bool = False) -> str | None:
    """Frappe's `modified` (microseconds) names a version; on_trash keeps the last one, marked deleted."""
    if not name or not modified:
        return None
    return change_key("erpnext", doctype, name, modified, DELETED if deleted else "")


def mautic_contact_key(contact: dict[str, Any]) -> str | None:
    modified = contact.get("dateModified") or contact.get("dateAdded")
    if contact.get("id") in (None, "") or not modified:
        return None
    return change_key("mautic", "contact", contact["id"], modified, "", digest(contact))


def mautic_deleted_key(contact_id: Any) -> str:
    """The delete webhook and the audit log row it left (the Stats API) share only the contact id, and a
    contact is deleted once."""
    return change_key("mautic", "contact", contact_id, "", DELETED)


# Mautic's engagement webhooks and its contact activity listing (`/api/contacts/activity`) both name an email
# stat or a form submission by its id and by a stamp that never changes: `dateRead` stays the first open's
# (a second open updates `lastOpened` only), a submission is never edited. The webhook's own `timestamp` is
# when the webhook was built, which no listing can reproduce, so it is not part of the key.
MAUTIC_ACTIVITIES = {
    "mautic.email_on_open": ("stat", "dateRead"),
    "mautic.form_on_submit": ("submission", "dateSubmitted"),
}


def mautic_activity_key(event_type: str, obj: dict[str, Any]) -> str | None:
    """`mautic.email_on_open:stat:{id}:{dateRead}` for the stat (or submission) a webhook item carries."""
    subject, stamp_key = MAUTIC_ACTIVITIES.get(event_type, ("", ""))
    if not subject or obj.get("id") in (None, "") or not obj.get(stamp_key):
        return None
    return f"{event_type}:{subject}:{obj['id']}:{stamp(obj[stamp_key])}"


def revolut_key(tx_id: Any, state: Any) -> str | None:
    """A bank transaction changes by its state; created and state-changed events of one state collapse."""
    if not tx_id or not state:
        return None
    return f"revolut:transaction:{tx_id}:{state}"


def directus_deleted_key(collection: str, key: Any) -> str:
    """A Directus delete has no stamp anywhere (the Flow sends the keys, the activity log its own time), but
    a key is deleted once, so collection and key name it for the webhook and the activity sweep alike."""
    return change_key("directus", collection, key, "", DELETED)


def directus_key(collection: str, item: dict[str, Any]) -> str:
    return change_key("directus", collection, item["id"], item.get("date_updated") or item["date_created"])
