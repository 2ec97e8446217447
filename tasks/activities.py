"""F8: a Mautic email opened or form submitted on a contact the hub knows becomes an `activity` record,
which fans out to Directus (an `activities` item) and Invoice Ninja (a line in the client's notes).

The activity's ref is the Mautic stat or submission id, so however often Mautic reports it (a second open
of the same email, a redelivered webhook) it stays one record, one item and one note line. An activity of
a contact the hub does not know (an anonymous visitor, a contact not synced yet) is ignored with a log line.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.adapters import from_iso
from connectors.normalise import email as normal_email
from syncengine.models import Link, Record
from syncengine.records import Change, merge

from .dispatch import Handler, HandlerContext, handles
from .sync import defer_pushes

log = logging.getLogger(__name__)


Read = Callable[[dict[str, Any]], tuple[dict[str, Any] | None, dict[str, Any]]]


def email_opened(item: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """(the Mautic contact, the activity fields but `contact_id`) of an `email_on_open` item."""
    stat = item.get("stat") or {}
    email = stat.get("email") or {}
    fields = {
        "ref": f"mautic:email_open:{stat['id']}",
        "type": "email_open",
        "subject": email.get("subject") or email.get("name"),
        "occurred_at": stat.get("dateRead") or item.get("timestamp"),  # the first open: stable on repeats
        "details": {"email_id": email.get("id"), "email_address": normal_email(stat.get("emailAddress"))},
    }
    return stat.get("lead"), fields


def form_submitted(item: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    submission = item.get("submission") or {}
    form = submission.get("form") or {}
    fields = {
        "ref": f"mautic:form_submit:{submission['id']}",
        "type": "form_submit",
        "subject": form.get("name"),
        "occurred_at": submission.get("dateSubmitted") or item.get("timestamp"),
        "details": {"form_id": form.get("id"), "results": submission.get("results") or {}},
    }
    return submission.get("lead"), fields


def hub_contact(session: Session, lead: dict[str, Any] | None) -> int | None:
    """The live hub contact of a Mautic contact: by its link, else by its email."""
    if not lead:
        return None
    record_id = session.execute(
        select(Link.record_id).where(
            Link.system == "mautic", Link.kind == "contact", Link.external_id == str(lead.get("id"))
        )
    ).scalar_one_or_none()
    if record_id is None:
        address = normal_email(
            lead.get("email") or ((lead.get("fields") or {}).get("all") or {}).get("email")
        )
        record_id = session.execute(
            select(Record.id).where(Record.kind == "contact", Record.match_key == address)
        ).scalar_one_or_none() if address else None  # fmt: skip
    if record_id is None or session.get(Record, record_id).deleted_at is not None:
        return None
    return record_id


def activity_handler(read: Read) -> Handler:
    """A handler that turns one Mautic engagement event into an activity of a known contact."""

    def handle(ctx: HandlerContext) -> None:
        lead, fields = read(ctx.event.payload)
        contact_id = hub_contact(ctx.session, lead)
        if contact_id is None:
            log.info("mautic %s: %s is on no contact the hub knows: ignored", fields["type"], fields["ref"])
            return
        fields["contact_id"] = contact_id
        at = from_iso(fields["occurred_at"])
        merged = merge(
            ctx.session, Change("mautic", "activity", fields["ref"], fields, at, match_key=fields["ref"])
        )
        defer_pushes(ctx, merged)

    return handle


handles("mautic", "mautic.email_on_open")(activity_handler(email_opened))
handles("mautic", "mautic.form_on_submit")(activity_handler(form_submitted))
