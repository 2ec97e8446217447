"""From an inbox event to the handler registered for its (source, event type).

Handlers are plain functions registered with `@handles(source, event_type, ...)`; they run inside the
transaction that marks the event done, so a handler's own writes and 'done' commit together. Work for
other systems is deferred with `ctx.defer(...)` and published only after that commit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta

from celery import Signature, Task
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from syncengine import event_log, inbox, outbox
from syncengine.broker import queued
from syncengine.celery_app import MAX_COUNTDOWN, QUEUES, app
from syncengine.db import autocommit_engine, session_scope
from syncengine.errors import Permanent, Retryable
from syncengine.models import InboxEvent, InboxStatus
from syncengine.outbox_task import BACKOFF_BASE, backoff
from syncengine.redaction import redact
from syncengine.settings import get_settings

log = logging.getLogger(__name__)


@dataclass
class HandlerContext:
    session: Session
    event: InboxEvent
    deferred: list[Signature] = field(default_factory=list)

    def defer(self, signature: Signature) -> None:
        """Publish this task once the event's transaction has committed, never before."""
        self.deferred.append(signature)


Handler = Callable[[HandlerContext], None]
HANDLERS: dict[tuple[str, str], Handler] = {}


def handles(source: str, *event_types: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        for event_type in event_types:
            HANDLERS[(source, event_type)] = fn
        return fn

    return register


def run_or_review(
    task: Task,
    work: Callable[[], str],
    review: Callable[[str], str],
    *,
    limit: int,
    what: str | None,
    retryable: tuple[type[Exception], ...] = (Retryable,),
    permanent: tuple[type[Exception], ...] = (Permanent,),
    hopeless: Callable[[Exception], str | None] | None = None,
    gave_up: Callable[[int, Exception], str] = lambda retries, exc: f"gave up after {retries} retries: {exc}",
    base: float = BACKOFF_BASE,
    before_retry: Callable[[Exception, float], None] | None = None,
    carry: bool = True,
) -> str:
    """The one rule of bookings and OCR: what may pass later (`retryable`) is retried, up to `limit` times;
    what cannot (`permanent`, the limit reached, or a failure `hopeless` gives a reason for) is filed for a
    person to review, with its reason, and `review`'s outcome returned.

    `what` names the task's failure on its outbox row, which then fails with that reason too (`status` shows
    it, `replay` runs it again); None leaves the row to close as done (OCR: the review is the document's
    outcome). `gave_up` words the reason at the limit; `base`, `before_retry` and `carry` go to `retry_later`.
    """
    try:
        return work()
    except retryable as exc:
        reason = hopeless(exc) if hopeless is not None else None
        if reason is None and task.request.retries >= limit:
            reason = gave_up(task.request.retries, exc)
        if reason is not None:
            return _filed(what, reason, review)
        raise retry_later(task, exc, base=base, before_retry=before_retry, carry=carry) from exc
    except permanent as exc:
        log.error("%s: %s", what or task.name, exc)
        return _filed(what, str(exc), review)


def _filed(what: str | None, reason: str, review: Callable[[str], str]) -> str:
    outcome = review(reason)
    return outcome if what is None else outbox.failed(f"{what}: {reason}", outcome)


def retry_later(
    task: Task,
    exc: Exception,
    *,
    base: float = BACKOFF_BASE,
    before_retry: Callable[[Exception, float], None] | None = None,
    carry: bool = True,
) -> Exception:
    """The task's retry: after the service's Retry-After when it gave one, else the backoff from `base`;
    never longer than the broker's visibility timeout allows. `before_retry` runs first, with the delay
    (OCR gives its claim back). With `carry`, the retry carries the exception: Celery logs it, the outbox row
    keeps it as why it waits, and a task called directly raises it; without, Celery's own Retry."""
    countdown = getattr(exc, "retry_after", None) or backoff(task.request.retries + 1, base)
    countdown = min(countdown, MAX_COUNTDOWN)
    if before_retry is not None:
        before_retry(exc, countdown)
    return task.retry(countdown=countdown, max_retries=None, exc=exc if carry else None)


@app.task(name="tasks.dispatch.process", bind=True, acks_late=True)
def process(self, inbox_id: int) -> str:  # type: ignore[no-untyped-def]
    try:
        with event_log.handling(inbox_id) as entry:  # one structured line per event handled
            outcome, retry_in = run(inbox_id)
            entry.outcome = outcome
    except OperationalError as exc:
        # The store is down, or restarted under a pooled connection: the event is not finished, and acking
        # now would leave it to the redelivery sweep, a lease later. Try again soon.
        raise self.retry(countdown=backoff(self.request.retries + 1), max_retries=None, exc=exc) from exc
    if retry_in is not None:
        raise self.retry(countdown=retry_in, max_retries=None)
    return outcome


def run(inbox_id: int) -> tuple[str, float | None]:
    """Process one event; returns the outcome and, after a failure worth retrying, the delay before it."""
    settings = get_settings()
    claim_id = inbox.new_claim_id()
    lease = timedelta(seconds=settings.inbox_lease_seconds)
    with autocommit_engine().connect() as conn:
        if not inbox.claim(conn, inbox_id, claim_id, lease):
            return "skipped", None

    started = time.monotonic()
    try:
        with session_scope() as session:
            event = inbox.lock_claimed(session, inbox_id, claim_id)
            if event is None:
                return "skipped", None
            source, event_type = event.source, event.event_type
            handler = HANDLERS.get((source, event_type))
            if handler is None:
                inbox.close(event, InboxStatus.IGNORED)
                log.info("inbox %s ignored: no handler for %s %s", inbox_id, source, event_type)
                return InboxStatus.IGNORED, None
            ctx = HandlerContext(session, event)
            handler(ctx)
            staged = outbox.stage(session, ctx.deferred, inbox_id)  # committed with the handler's writes
            inbox.close(event, InboxStatus.DONE)
    except Exception as exc:
        return _record_failure(inbox_id, claim_id, exc, settings.inbox_max_attempts)
    outbox.publish(staged)
    log.info(
        "inbox %s done: %s %s in %.0f ms", inbox_id, source, event_type, (time.monotonic() - started) * 1000
    )
    return InboxStatus.DONE, None


def _record_failure(
    inbox_id: int, claim_id: str, exc: Exception, max_attempts: int
) -> tuple[str, float | None]:
    error = redact(f"{type(exc).__name__}: {exc}")
    with session_scope() as session:
        event = inbox.lock_claimed(session, inbox_id, claim_id)
        if event is None:
            return "skipped", None
        retry_in = backoff(event.attempts)
        will_retry = inbox.fail(event, error, max_attempts, retry_in)
        attempts = event.attempts
    if will_retry:
        log.warning("inbox %s attempt %s failed, retry in %.0f s: %s", inbox_id, attempts, retry_in, error)
        return "retry", retry_in
    log.error("inbox %s failed for good after %s attempts: %s", inbox_id, attempts, error)
    return InboxStatus.FAILED, None


@app.task(name="tasks.dispatch.redeliver", acks_late=True)
def redeliver(grace_seconds: float = 30.0) -> int:
    """Publish again what the broker lost or a dead worker held, inbox events and outbox tasks alike (a
    task whose worker was killed or hit its time limit); a duplicate publish is harmless."""
    settings = get_settings()
    backlog = queued(app, QUEUES)
    with session_scope() as session:
        ids = inbox.due_for_redelivery(
            session,
            lease=timedelta(seconds=settings.inbox_lease_seconds),
            grace=timedelta(seconds=grace_seconds),
            queued=backlog,
        )
    for inbox_id in ids:
        process.apply_async((inbox_id,))
    if ids:
        log.info("redelivered %s inbox events", len(ids))
    with session_scope() as session:
        again = outbox.due_again(session, app, lease=outbox.LEASE, grace=timedelta(seconds=grace_seconds),
                                 queued=backlog)  # fmt: skip
    outbox.publish(again)
    return len(ids)
