"""What is true of Mautic whoever uses it: the webhook triggers we subscribe to, and what the engine needs
there, declared once: `syncengine setup` checks and creates it
(connectors.mautic_setup), the contact mapping and the email tasks read their names from here, and the
simulators are seeded with it (simulators.wiring).

- Contact fields: the core fields the mapping writes (present in every Mautic; they must be published),
  and the custom boolean `marketing_consent`, read (never written) as the contact's consent.
- Two template emails, sent through the API to one contact each (`POST /api/emails/{id}/contact/{id}/send`
  with tokens): the invoice email (F4) and the payment receipt (F5).
- The role permissions the engine's calls need (Mautic's `bundle:level:permission` names).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from syncengine import change_keys as keys
from syncengine.inbox import NewEvent

# The triggers of our one webhook (`webhooks install`), sent in signed batches to /webhooks/mautic.
EVENTS = (
    "mautic.lead_post_save_new", "mautic.lead_post_save_update", "mautic.lead_post_delete",
    "mautic.email_on_open", "mautic.form_on_submit",
)  # fmt: skip


def contact_key(contact: dict[str, Any]) -> str | None:
    """The change key (syncengine.change_keys) of a contact, from a webhook or the contact listing."""
    modified = contact.get("dateModified") or contact.get("dateAdded")
    if contact.get("id") in (None, "") or not modified:
        return None
    return keys.change_key("mautic", "contact", contact["id"], modified, "", keys.digest(contact))


def deleted_key(contact_id: Any) -> str:
    """The delete webhook and the audit log row it left (the Stats API) share only the contact id, and a
    contact is deleted once."""
    return keys.change_key("mautic", "contact", contact_id, "", keys.DELETED)


# Mautic's engagement webhooks and its contact activity listing (`/api/contacts/activity`) both name an email
# stat or a form submission by its id and by a stamp that never changes: `dateRead` stays the first open's
# (a second open updates `lastOpened` only), a submission is never edited. The webhook's own `timestamp` is
# when the webhook was built, which no listing can reproduce, so it is not part of the key.
ACTIVITIES = {
    "mautic.email_on_open": ("stat", "dateRead"),
    "mautic.form_on_submit": ("submission", "dateSubmitted"),
}


def activity_key(event_type: str, obj: dict[str, Any]) -> str | None:
    """`mautic.email_on_open:stat:{id}:{dateRead}` for the stat (or submission) a webhook item carries."""
    subject, stamp_key = ACTIVITIES.get(event_type, ("", ""))
    if not subject or obj.get("id") in (None, "") or not obj.get(stamp_key):
        return None
    return f"{event_type}:{subject}:{obj['id']}:{keys.stamp(obj[stamp_key])}"


# What the sweeps (tasks.sweep_sources) see, as the webhooks of the same changes.


def swept_contact(row: dict[str, Any]) -> NewEvent:
    key = contact_key(row) or f"mautic.lead_post_save_update:contact:{row['id']}"
    return NewEvent("mautic", key, "mautic.lead_post_save_update", {"contact": row})


def swept_deleted(row: dict[str, Any]) -> NewEvent:
    """The `lead_post_delete` item tasks.deletes reads (the deleted id), keyed as the receiver keys it."""
    event = "mautic.lead_post_delete"
    return NewEvent("mautic", deleted_key(row["object_id"]), event, {"id": int(row["object_id"])})


# Mautic never re-sends a lost `email_on_open` / `form_on_submit` webhook, and an open or a submission is
# not a contact change (`date_modified` stays put), so the contact sweep cannot see it. The contact
# timeline lists them by their own stamps (`date_read`, `date_submitted`).


def swept_activity(row: dict[str, Any]) -> NewEvent:
    """The webhook item of a timeline event: what tasks.activities reads (`email_opened`,
    `form_submitted`), keyed as the receiver keys that webhook (`activity_key`)."""
    details, lead = row.get("details") or {}, {"id": row.get("contactId")}
    if row.get("event") == "form.submitted":
        listed = details.get("submission") or {}
        subject = {**listed, "form": details.get("form") or listed.get("form"), "lead": lead}
        event_type, key = "mautic.form_on_submit", "submission"
    else:  # email.read: getLeadStats' row (snake_case as listed) in the webhook's Stat shape
        stat = details.get("stat") or {}
        email = {"id": stat.get("email_id"), "name": stat.get("email_name"),
                 "subject": stat.get("subject") or stat.get("storedSubject")}  # fmt: skip
        subject = {"id": stat.get("id"), "dateSent": stat.get("dateSent"),
                   "dateRead": stat.get("dateRead") or row.get("timestamp"), "isRead": True,
                   "trackingHash": stat.get("idHash"), "email": email, "lead": lead}  # fmt: skip
        event_type, key = "mautic.email_on_open", "stat"
    event_id = activity_key(event_type, subject) or f"{event_type}:{row.get('eventId')}"
    return NewEvent("mautic", event_id, event_type, {key: subject, "timestamp": row.get("timestamp")})


@dataclass(frozen=True)
class ContactField:
    """A custom contact field as `POST /api/fields/contact/new` takes it."""

    alias: str
    label: str
    type: str
    properties: tuple[tuple[str, str], ...] = ()

    def body(self) -> dict[str, object]:
        return {"label": self.label, "alias": self.alias, "type": self.type, "group": "core",
                "isPublished": True, "properties": dict(self.properties)}  # fmt: skip


# A boolean field needs its two labels (LeadBundle FormFieldHelper: `yes` and `no` are required).
CONSENT_FIELD = ContactField(
    "marketing_consent", "Marketing consent", "boolean", (("no", "No"), ("yes", "Yes"))
)
CUSTOM_FIELDS = (CONSENT_FIELD,)
# The core contact fields the mapping reads and writes, by alias.
CORE_FIELDS = (
    "firstname", "lastname", "email", "phone", "company",
    "address1", "address2", "city", "zipcode", "country",
)  # fmt: skip


@dataclass(frozen=True)
class TemplateEmail:
    """An email we send with tokens: which setting names it, its default id, and the starter template
    `setup` creates when there is none (an operator edits its text in Mautic)."""

    option: str  # the key in the Mautic settings' options
    variable: str  # the environment variable an operator sets
    default_id: int
    name: str
    subject: str
    tokens: tuple[str, ...]

    def email_id(self, options: Mapping[str, str]) -> int:
        configured = options.get(self.option)
        return int(configured) if configured else self.default_id

    def html(self) -> str:
        rows = "".join(f"<li>{token.replace('_', ' ')}: {{{token}}}</li>" for token in self.tokens)
        return f"<html><body><p>{self.subject}</p><ul>{rows}</ul></body></html>"

    def body(self) -> dict[str, object]:
        """`POST /api/emails/new`: a published template email (the kind sent one contact at a time)."""
        return {"name": self.name, "subject": self.subject, "emailType": "template", "isPublished": True,
                "customHtml": self.html()}  # fmt: skip


INVOICE_EMAIL = TemplateEmail(
    "invoice_email_id", "MAUTIC_INVOICE_EMAIL_ID", 1, "syncengine: invoice", "Your invoice {invoice_number}",
    ("invoice_number", "invoice_total", "invoice_currency", "invoice_due_date"),
)  # fmt: skip
RECEIPT_EMAIL = TemplateEmail(
    "receipt_email_id", "MAUTIC_RECEIPT_EMAIL_ID", 2, "syncengine: payment receipt",
    "We received your payment for invoice {invoice_number}",
    ("invoice_number", "payment_amount", "payment_currency", "payment_date"),
)  # fmt: skip
EMAILS = (INVOICE_EMAIL, RECEIPT_EMAIL)

# Role permissions behind the engine's writes; reads are tried for real by `setup`. Sending an email
# checks view access to the email and edit access to the contact (EmailApiController::sendLeadAction).
PERMISSIONS = {
    "lead:leads:viewother": "read every contact",
    "lead:leads:create": "create contacts",
    "lead:leads:editother": "edit contacts and send them emails",
    "email:emails:viewother": "send the invoice and receipt emails",
    "webhook:webhooks:viewother": "list webhooks",
    "webhook:webhooks:create": "create our webhook",
    "webhook:webhooks:editother": "correct our webhook",
    "webhook:webhooks:deleteother": "remove duplicates of our webhook",
    "lead:fields:view": "see that email is the unique identifier (else each create is looked up first)",
}
