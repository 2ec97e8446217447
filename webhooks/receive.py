"""verify → store → enqueue → answer (docs/architecture.md, The path of one event). The only write here is
the inbox INSERT."""

from __future__ import annotations

import json
import logging
import re
import time
from typing import Any

from flask import Response, request
from sqlalchemy.exc import DataError, SQLAlchemyError
from werkzeug.exceptions import RequestEntityTooLarge

from syncengine import inbox, signing_secrets
from syncengine.celery_app import app as celery_app
from syncengine.db import get_engine, kept_scope, with_reconnect
from syncengine.publish import TaskPublisher, publish_events
from syncengine.settings import get_settings

from .echoes import Probe, echo_of, settle
from .sender import BadPayload, Incoming, Sender, body_digest
from .signatures import InvalidSignature

log = logging.getLogger(__name__)
VENDOR_MADE_SECRETS = frozenset({"revolut"})  # senders whose signing secret the vendor makes (see install)

_publisher = TaskPublisher(celery_app, "tasks.dispatch.process", queue="intake")
# How long, after its answer, the receiver waits for a create of ours to store the link its echo needs.
ECHO_WAIT_SECONDS = 2.0


_dumps = json.JSONEncoder(separators=(",", ":"), sort_keys=True, ensure_ascii=True).encode


def answer(body: dict[str, Any], status: int) -> Response:
    """A JSON answer, as `jsonify` writes it (compact, keys sorted, a final newline), without the app's
    JSON provider and request context lookups: 3 % of the receiver's CPU per webhook."""
    return Response(_dumps(body) + "\n", status, mimetype="application/json")


def error(status: int, message: str, **headers: str) -> Response:
    response = answer({"error": message}, status)
    response.headers.update(headers)
    return response


# A \uD800-\uDFFF escape: valid JSON, but alone it is no character, and no UTF-8 store (nor our digests)
# can encode it.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def parse_json(raw: bytes) -> dict[str, Any]:
    try:
        payload = json.loads(raw, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:  # UnicodeDecodeError is a ValueError
        raise BadPayload(f"body is not valid JSON: {str(exc)[:120]}") from exc
    if not isinstance(payload, dict):
        raise BadPayload("body must be a JSON object")
    if _SURROGATE_ESCAPE.search(raw):  # rare: only then pay for the full check
        try:
            json.dumps(payload, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError as exc:
            raise BadPayload("body holds a lone UTF-16 surrogate (\\ud800-\\udfff), not text") from exc
    return payload


def _is_json(mimetype: str) -> bool:
    return mimetype == "application/json" or (
        mimetype.startswith("application/") and mimetype.endswith("+json")
    )


def _made_by_vendor(sender: str) -> tuple:
    """The signing secret the vendor made for our subscription (Revolut), as `webhooks install` stored it."""
    return signing_secrets.stored(sender) if sender in VENDOR_MADE_SECRETS else ()


def receive(sender: Sender, path_event: str | None) -> Response:
    if not _is_json(request.mimetype):
        return error(415, "content type must be application/json")
    limit = get_settings().max_body_bytes
    try:
        # Werkzeug stops a streamed (chunked) body at MAX_CONTENT_LENGTH = limit + 1 without saying so:
        # one byte past the limit is how we know the body was too large.
        raw = request.get_data(cache=False)
    except RequestEntityTooLarge:
        raw = None
    if raw is None or len(raw) > limit:
        return error(413, f"body larger than {limit} bytes")

    try:
        secrets = (*get_settings().services[sender.name].webhook_secrets, *_made_by_vendor(sender.name))
    except SQLAlchemyError as exc:  # the secret is in the store, which is down: the sender retries
        log.error("store unavailable, asking %s to retry: %s", sender.name, type(exc).__name__)
        return error(503, "store unavailable, retry later", **{"Retry-After": "30"})
    try:
        sender.verify(request.headers, raw, secrets, time.time())
    except InvalidSignature as exc:
        log.warning("webhook from %s rejected: %s", sender.name, exc)
        return error(401, "signature verification failed")

    try:
        events = sender.parse(Incoming(request.headers, raw, parse_json(raw), path_event, time.time()))
        events = [_bounded(ev) for ev in events]
    except BadPayload as exc:
        return error(exc.status, str(exc))

    probe = echo_of(events[0]) if len(events) == 1 else None
    try:
        ids, echoes = with_reconnect(lambda: _store(events, probe))
    except DataError as exc:
        log.warning("webhook from %s not storable: %s", sender.name, type(exc.orig).__name__)
        return error(400, "payload holds values the store cannot keep (NUL characters?)")
    except SQLAlchemyError as exc:
        log.error("store unavailable, asking %s to retry: %s", sender.name, type(exc).__name__)
        return error(503, "store unavailable, retry later", **{"Retry-After": "30"})

    if not ids and not echoes:
        return answer({"duplicate": True}, 200)
    response = answer({"accepted": ids + echoes}, 202)
    if not ids:
        return response  # our own write coming back: stored done, nothing to hand to a worker
    # The row is on disk, which is all the 202 promises: hand it to the broker once the sender has its
    # answer, so a slow or absent broker never holds the sender's request.
    response.call_on_close(lambda: publish_unless_echo(ids, probe))
    return response


def _store(events: list[inbox.NewEvent], probe: Probe | None) -> tuple[list[int], list[int]]:
    """(the new events a task must handle, those stored done: our own writes coming back)."""
    if probe is not None:
        with _echo_connection() as conn:
            row_id, echoed = inbox.store_checked(conn, events[0], probe.echo)
        return ([], [row_id]) if echoed and row_id is not None else ([row_id] if row_id else [], [])
    if len(events) == 1:
        # One INSERT is atomic on its own: autocommit spares the BEGIN and COMMIT round trips.
        with kept_scope() as conn:
            return inbox.store(conn, events), []
    with get_engine().begin() as conn:
        return inbox.store(conn, events), []


def _echo_connection() -> Any:
    """On Postgres each echo statement is one, atomic on its own; SQLite's two share a transaction."""
    if get_engine().dialect.name == "postgresql":
        return kept_scope()
    return get_engine().begin()


def _close_echo(row_id: int, echo: inbox.Echo) -> bool:
    def close() -> bool:
        with _echo_connection() as conn:
            return inbox.close_as_echo(conn, row_id, echo)

    return with_reconnect(close)


def publish_unless_echo(ids: list[int], probe: Probe | None) -> None:
    """After the answer: an event that may be the echo of a create still being stored is closed once that
    create has stored its link, when it is the echo; anything else is handed to the broker."""
    if probe is not None and len(ids) == 1:
        try:
            if settle(ids[0], probe, _close_echo, ECHO_WAIT_SECONDS):
                return
        except Exception as exc:  # the store or Redis away: the worker decides, as before
            log.warning("echo check of inbox %s skipped: %s", ids[0], type(exc).__name__)
    publish(ids)


def _bounded(event: inbox.NewEvent) -> inbox.NewEvent:
    if len(event.event_type) > 128:
        raise BadPayload("event type longer than 128 characters")
    if "\x00" in event.event_id or "\x00" in event.event_type:
        raise BadPayload("event id or type contains a NUL character")
    if len(event.event_id) > 255:
        event = inbox.NewEvent(
            event.source, "sha256:" + body_digest(event.event_id.encode()), event.event_type, event.payload
        )
    return event


def publish(ids: list[int]) -> None:
    """Hand each new event to the broker; if it is down, the row stays 'received' for the redelivery sweep."""
    publish_events(_publisher, ids)
