"""Directus Flows: {event, payload, key|keys, collection}, unsigned; the Flow adds our secret header.
The payload is the request input, not the stored row, and carries no event id: the body digest is one
(with the delivery's arrival for updates, whose bodies repeat), except for deletes, which are keyed per
deleted key (syncengine.vendors.directus.deleted_key)."""

from __future__ import annotations

import re

from syncengine.inbox import NewEvent
from syncengine.vendors.directus import SCOPES, UPLOADS, deleted_key

from .sender import Incoming, Sender, UnknownEvent, body_digest, require
from .signatures import shared_secret

SECRET_HEADER = "X-Webhook-Secret"  # noqa: S105 - a header name, not a secret
# What our Flows trigger on: `<collection>.items.create|update|delete` for any collection a Flow names (a
# Directus collection name: letters, digits, _ or -), and file uploads.
ITEM_EVENT = re.compile(rf"[A-Za-z0-9_-]{{1,64}}\.(?:{'|'.join(map(re.escape, SCOPES))})")


def known(event: object) -> str:
    if isinstance(event, str) and (event in UPLOADS or ITEM_EVENT.fullmatch(event)):
        return event
    raise UnknownEvent("directus", event, in_path=False)


def verify(headers, body, secrets, now) -> None:  # type: ignore[no-untyped-def]
    shared_secret(headers.get(SECRET_HEADER), secrets)


def parse(incoming: Incoming) -> list[NewEvent]:
    event = known(require(incoming.payload, "event", "event name"))
    keys = incoming.payload.get("keys", incoming.payload.get("key", ""))
    if str(event).endswith(".items.delete") and isinstance(keys, list) and keys:
        # One event per deleted key, keyed as the activity sweep keys it, so a delete seen both ways (or
        # in one batch and one by one) is stored once.
        collection = str(event).split(".", 1)[0]
        return [
            NewEvent("directus", deleted_key(collection, key), str(event),
                     {**incoming.payload, "payload": [key], "keys": [key]})
            for key in keys
        ]  # fmt: skip
    event_id = f"{event}:{keys}:{body_digest(incoming.payload)}"
    if str(event).endswith(".items.update"):
        # The body is the request input, not a version: a value set back (A, then B from elsewhere, then A)
        # digests as the first A did. So each delivery is its own event (Directus never retries one), and
        # the handler's read-back makes a repeated delivery a no-op.
        event_id += f":{incoming.now:.6f}"
    return [NewEvent("directus", event_id, str(event), incoming.payload)]


SENDER = Sender("directus", verify, parse)
