"""Mautic 5 webhooks: Webhook-Signature = base64(HMAC-SHA256(secret, raw body)). One body may batch
several events of several types ({"<event key>": [payload, ...]}): each becomes its own inbox event."""

from __future__ import annotations

from syncengine.inbox import NewEvent
from syncengine.vendors import mautic

from .sender import BadPayload, Incoming, Sender, UnknownEvent, body_digest
from .signatures import base64_hmac

# The webhook events Mautic's bundles register (their WebhookSubscribers; the developer docs' "Webhook events
# and payloads" lists all but the segment change); with every one we subscribe.
EVENTS = frozenset(mautic.EVENTS) | {
    "mautic.lead_post_save_new", "mautic.lead_post_save_update", "mautic.lead_points_change",
    "mautic.lead_post_delete", "mautic.lead_channel_subscription_changed", "mautic.lead_company_change",
    "mautic.lead_list_change",
    "mautic.company_post_save", "mautic.company_post_delete", "mautic.email_on_send", "mautic.email_on_open",
    "mautic.form_on_submit", "mautic.page_on_hit", "mautic.sms_on_send",
}  # fmt: skip

# The object that names what each event is about, by the key Mautic puts it under.
_SUBJECT_KEYS = ("contact", "lead", "company", "submission", "stat", "hit", "email")


def verify(headers, body, secrets, now) -> None:  # type: ignore[no-untyped-def]
    base64_hmac(headers.get("Webhook-Signature"), body, secrets)


# Contact changes carry dateModified: keyed by the change, they collapse with a sweep's listing of it.
_CONTACT_CHANGES = ("mautic.lead_post_save_new", "mautic.lead_post_save_update")


def _event_id(event_type: str, item: dict) -> str:
    contact = item.get("contact")
    if event_type in _CONTACT_CHANGES and isinstance(contact, dict):
        key = mautic.contact_key(contact)
        if key is not None:
            return key
    if event_type == "mautic.lead_post_delete":  # keyed like the deleted-contacts sweep's audit log row
        deleted = item.get("id") or (contact.get("id") if isinstance(contact, dict) else None)
        if deleted not in (None, ""):
            return mautic.deleted_key(deleted)
    if event_type in mautic.ACTIVITIES:  # keyed like the activity sweep's listing of it (tasks.sweep_sources)
        subject = item.get(mautic.ACTIVITIES[event_type][0])
        key = mautic.activity_key(event_type, subject) if isinstance(subject, dict) else None
        if key is not None:
            return key
    for key in _SUBJECT_KEYS:
        subject = item.get(key)
        if isinstance(subject, dict) and subject.get("id") not in (None, ""):
            return f"{event_type}:{key}:{subject['id']}:{item.get('timestamp', body_digest(item))}"
    return f"{event_type}:{body_digest(item)}"


def parse(incoming: Incoming) -> list[NewEvent]:
    events = []
    for event_type, items in incoming.payload.items():
        if not event_type.startswith("mautic.") or not isinstance(items, list):
            raise BadPayload(f"unexpected key {event_type[:64]!r}: Mautic sends {{'mautic.<event>': [...]}}")
        if event_type not in EVENTS:
            raise UnknownEvent("mautic", event_type, in_path=False)
        for item in items:
            if not isinstance(item, dict):
                raise BadPayload(f"{event_type} item is not an object")
            events.append(NewEvent("mautic", _event_id(event_type, item), event_type, item))
    if not events:
        raise BadPayload("no events in body")
    return events


SENDER = Sender("mautic", verify, parse)
