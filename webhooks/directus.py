"""Directus Flows: {event, payload, key|keys, collection}, unsigned; the Flow adds our secret header.
The payload is the request input, not the stored row, and carries no event id: the body digest is one."""

from __future__ import annotations

from syncengine.inbox import NewEvent

from .sender import Incoming, Sender, body_digest, require
from .signatures import shared_secret

SECRET_HEADER = "X-Webhook-Secret"  # noqa: S105 - a header name, not a secret


def verify(headers, body, secrets, now) -> None:  # type: ignore[no-untyped-def]
    shared_secret(headers.get(SECRET_HEADER), secrets)


def parse(incoming: Incoming) -> list[NewEvent]:
    event = require(incoming.payload, "event", "event name")
    keys = incoming.payload.get("keys", incoming.payload.get("key", ""))
    event_id = f"{event}:{keys}:{body_digest(incoming.payload)}"
    return [NewEvent("directus", event_id, str(event), incoming.payload)]


SENDER = Sender("directus", verify, parse)
