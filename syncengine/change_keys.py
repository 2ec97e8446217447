"""The inbox key of one change of one vendor object, the same whether a webhook or a sweep saw it.

`{system}:{entity}:{id}:{modified}[:{state}][:{digest}]`: the receiver derives it from a webhook payload
that carries the vendor's modification stamp, and a sweep from the listed row, so the change seen both ways
is stored once (unique source + event_id). The state (archived, deleted) keeps a delete or archive apart
from the edit stamped in the same second; where the stamp has whole seconds only (Invoice Ninja, Mautic)
a digest of the object keeps two edits of one second apart too, since a collapsed edit would be lost. Where
a payload has no stamp (Directus Flows send the request input, not the row) no key can tell a repeated
delivery from a value set back, so the receiver keeps each update delivery (webhooks.directus) and the
handler's read-back makes a repeat a no-op.

The machinery is here; each vendor's keys are in its home (syncengine.vendors.<vendor>: `change_key`, and
Mautic's and Directus's `deleted_key`, Mautic's `contact_key` and `activity_key`).
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
