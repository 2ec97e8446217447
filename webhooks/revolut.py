"""Revolut Business webhooks v2: signed over "v1.{timestamp}.{raw body}", 5-minute window, several
signatures while a secret rotates. No event id, so a transaction and its state name one event."""

from __future__ import annotations

from syncengine.inbox import NewEvent
from syncengine.settings import get_settings
from syncengine.vendors import revolut

from .sender import Incoming, Sender, known_event, require
from .signatures import revolut_v1

# Business API v2 webhook event types (the spec's WebhookEventType); with every one we subscribe.
EVENTS = frozenset(revolut.EVENTS) | {
    "TransactionCreated", "TransactionStateChanged", "PayoutLinkCreated", "PayoutLinkStateChanged",
}  # fmt: skip


def verify(headers, body, secrets, now) -> None:  # type: ignore[no-untyped-def]
    revolut_v1(
        headers.get("Revolut-Signature"),
        headers.get("Revolut-Request-Timestamp"),
        body,
        secrets,
        now,
        get_settings().revolut_signature_tolerance,
    )


def parse(incoming: Incoming) -> list[NewEvent]:
    event = known_event("revolut", require(incoming.payload, "event", "event name"), EVENTS)
    data = require(incoming.payload, "data", "data")
    tx_id = require(data, "id", "transaction id")
    # Revolut's retries repeat the same change; a new state is a new event.
    state = data.get("new_state") or data.get("state") or incoming.payload.get("timestamp", "")
    # Transactions keyed by state collapse with a sweep's listing of the same state (revolut.change_key).
    key = revolut.change_key(tx_id, state) if event.startswith("Transaction") else None
    return [NewEvent("revolut", key or f"{event}:{tx_id}:{state}", event, incoming.payload)]


SENDER = Sender("revolut", verify, parse)
