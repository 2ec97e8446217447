"""The app's task class: a task the outbox carries (its id is `outbox-<row>`) runs only under a claim on its
row, and closes the row when it ends, so a push, a booking or an email is done once, and is never lost.

- A second message for the same row (a re-drive, Redis's own redelivery an hour later) finds the row gone
  or claimed, and does nothing.
- While the task runs, a thread renews its lease every third of it: a killed worker stops renewing, and the
  redelivery sweep re-drives the row once the lease lapses.
- `retry()` puts the row back to pending, with the delay, before the retry message is sent; a message the
  broker does not take (Redis away) is left to the redelivery sweep, in one line, not Celery's traceback.
- The soft time limit, or the store or our Redis away, is retried with a growing delay (up to
  MAX_ATTEMPTS); a hard time limit kills the pool process, and the worker's main process retries the row
  the same way (`on_failure`). Any other exception the task does not handle fails the row for good, with
  its error.
- The task returning normally closes the row: done, or failed for good when it said so (`outbox.failed`).

Tasks sent any other way (the beat's, `replay`'s inbox events, a test calling one) run as plain tasks.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

import redis.exceptions
from billiard.exceptions import TimeLimitExceeded
from celery import Task
from celery.exceptions import Ignore, Reject, SoftTimeLimitExceeded, TaskPredicate
from sqlalchemy.exc import DisconnectionError, InterfaceError, OperationalError

from . import outbox

log = logging.getLogger(__name__)

# Attempts (claims) of one row after which a time limit or an outage of our own store fails it for good.
MAX_ATTEMPTS = 8
# What the task did not handle but may pass on a later try: its soft time limit, the store away, our Redis
# away or restarting (its locks, breakers and counters: redis-py's errors are not the builtin ones). Anything
# else it did not handle is a bug or a case it does not know (an IntegrityError): failed for good at once,
# with the error for `status`, rather than retried in silence.
TRANSIENT = (
    SoftTimeLimitExceeded,
    OperationalError,
    InterfaceError,
    DisconnectionError,
    ConnectionError,
    TimeoutError,
    redis.exceptions.ConnectionError,  # BusyLoadingError too: a restarted Redis still reading its file
    redis.exceptions.TimeoutError,
)


# Seconds at most before a task's first retry; the backoff doubles it after each.
BACKOFF_BASE = 5.0


def backoff(attempt: int, base: float = BACKOFF_BASE) -> float:
    """Exponential backoff with full jitter, `base` seconds at most for the first attempt, doubling after,
    capped below the broker's visibility timeout. The one backoff of every task's retry."""
    from .celery_app import MAX_COUNTDOWN

    return random.uniform(0, min(MAX_COUNTDOWN, base * 2 ** max(attempt - 1, 0)))


class ClaimingTask(Task):
    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        row_id = outbox.row_of(self.request.id)
        if row_id is None:
            return self.run(*args, **kwargs)  # as Celery's own __call__ would, under the worker's request
        claim = outbox.claim(row_id)
        if claim is None:
            log.info("%s[%s]: done or held by another worker, skipped", self.name, self.request.id)
            return "skipped"
        with outbox.running(claim), heartbeat(claim):
            result = self._run_claimed(claim, args, kwargs)
        if claim.failure is not None:
            claim.fail(claim.failure)
        else:
            claim.done()
        return result

    def _run_claimed(self, claim: outbox.Claim, args: Any, kwargs: Any) -> Any:
        try:
            return self.run(*args, **kwargs)
        except TaskPredicate:
            raise  # Retry: retry() has put the row back already; Ignore, Reject: the task's own say
        except Exception as exc:
            reason = f"{type(exc).__name__}: {exc}"
            if isinstance(exc, TRANSIENT) and claim.attempts < MAX_ATTEMPTS:
                raise self.retry(exc=exc, countdown=backoff(claim.attempts), max_retries=None) from exc
            log.error("%s[%s] failed for good (attempt %s): %s", self.name, self.request.id, claim.attempts,
                      reason)  # fmt: skip
            claim.fail(reason)
            raise

    def retry(self, args: Any = None, kwargs: Any = None, exc: Exception | None = None, throw: bool = True,
              eta: datetime | None = None, countdown: float | None = None, max_retries: int | None = None,
              **options: Any) -> Any:  # fmt: skip
        """Celery's retry, with the row back to pending (its delay and the reason) before the message goes
        out, so the retry's worker can claim it at once."""
        claim = outbox.current()
        if claim is None or self.request.called_directly:
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        delay = countdown if countdown is not None else self.default_retry_delay
        if eta is not None:
            delay = (eta if eta.tzinfo else eta.replace(tzinfo=UTC)).timestamp() - time.time()
        claim.wait(max(float(delay or 0), 0.0), f"{type(exc).__name__}: {exc}" if exc else None)
        try:
            return super().retry(args, kwargs, exc, throw, eta, countdown, max_retries, **options)
        except Reject as rejected:  # Celery's answer to a retry the broker did not take (Redis away)
            outbox.mark_unpublished([claim.row_id])
            log.warning("%s[%s]: its retry was not sent (the broker: %s); it waits pending, and the "
                        "redelivery sweep sends it", self.name, self.request.id,
                        type(rejected.reason).__name__)  # fmt: skip
            raise Ignore() from None

    def on_failure(self, exc: Exception, task_id: str, args: Any, kwargs: Any, einfo: Any) -> None:
        """The hard time limit, in the worker's main process (the pool process is killed): the row is
        retried with a delay, or fails for good once it used up its attempts."""
        row_id = outbox.row_of(task_id)
        if not isinstance(exc, TimeLimitExceeded) or row_id is None:
            return
        reason = f"hard time limit ({exc}) exceeded"
        delay = outbox.release_after_time_limit(row_id, reason, MAX_ATTEMPTS, backoff)
        if delay is None:
            log.error("%s[%s] failed for good: %s", self.name, task_id, reason)
            return
        log.warning("%s[%s]: %s; retried in %.0f s", self.name, task_id, reason, delay)
        try:
            self.apply_async(args, kwargs, task_id=task_id, countdown=delay)
        except Exception as err:  # the broker is down: the redelivery sweep sends it a lease later
            log.warning("%s[%s] not sent again: %s", self.name, task_id, type(err).__name__)


@contextmanager
def heartbeat(claim: outbox.Claim) -> Iterator[None]:
    """Renew the claim's lease every third of it while the task runs, from a thread of its own."""
    stop = threading.Event()
    every = outbox.LEASE.total_seconds() / 3

    def beat() -> None:
        while not stop.wait(every):
            try:
                if not claim.renew():
                    return
            except Exception as exc:  # the store is away: the next beat tries again
                log.warning("outbox row %s: lease not renewed: %s", claim.row_id, type(exc).__name__)

    thread = threading.Thread(target=beat, name=f"outbox-lease-{claim.row_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
