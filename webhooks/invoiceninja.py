"""Invoice Ninja v5 subscriptions: the body is the bare entity with no event name and no signature, so we
subscribe one URL per event (/webhooks/invoiceninja/<event>) with our own secret header."""

from __future__ import annotations

from syncengine.inbox import NewEvent
from syncengine.vendors import invoiceninja

from .sender import BadPayload, Incoming, Sender, known_event, require
from .signatures import shared_secret

SECRET_HEADER = "X-Webhook-Secret"  # noqa: S105 - a header name, not a secret

# Event names of app/Models/Webhook.php, as used in the subscription URL; with every one we subscribe.
EVENTS = frozenset(invoiceninja.EVENTS) | frozenset(
    {
        "create_client", "update_client", "delete_client", "archive_client", "restore_client",
        "create_invoice", "update_invoice", "delete_invoice", "archive_invoice", "restore_invoice",
        "sent_invoice", "late_invoice", "remind_invoice",
        "create_payment", "update_payment", "delete_payment", "archive_payment", "restore_payment",
        "create_expense", "update_expense", "delete_expense", "archive_expense",
        "create_product", "update_product", "delete_product", "restore_product", "archive_product",
        "create_vendor", "create_quote",
    }
)  # fmt: skip


def verify(headers, body, secrets, now) -> None:  # type: ignore[no-untyped-def]
    shared_secret(headers.get(SECRET_HEADER), secrets)


def parse(incoming: Incoming) -> list[NewEvent]:
    if not incoming.path_event:
        raise BadPayload("Invoice Ninja names no event in its body: subscribe /webhooks/invoiceninja/<event>")
    event = known_event("invoiceninja", incoming.path_event, EVENTS, in_path=True)
    entity_id = require(incoming.payload, "id", "entity id")
    # The change key collapses this with a sweep's listing of the same change (invoiceninja.change_key).
    key = invoiceninja.change_key(event.partition("_")[2], incoming.payload)
    updated_at = incoming.payload.get("updated_at", "")
    return [NewEvent("invoiceninja", key or f"{event}:{entity_id}:{updated_at}", event, incoming.payload)]


SENDER = Sender("invoiceninja", verify, parse)
