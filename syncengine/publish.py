"""Publishing tasks from the receiver's hot path.

The message is Celery's own (protocol 2, built by `app.amqp.as_task_v2`), published on a kombu producer
kept per process and thread: Celery's `send_task` re-resolves routes, queues and exchanges on every call,
which was half of the receiver's CPU per webhook. `publish_events` is how the receiver and the sweeps hand
inbox events over, leaving them for the redelivery sweep when the broker is down.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from typing import Any

from celery import Celery
from kombu.utils.uuid import uuid
from sqlalchemy.exc import SQLAlchemyError

from . import inbox
from .db import get_engine

log = logging.getLogger(__name__)

# One quick retry at most: a broker that is down must not hold the worker.
PUBLISH_RETRY = {"max_retries": 1, "interval_start": 0.1, "interval_step": 0.2, "interval_max": 0.3}


class TaskPublisher:
    def __init__(self, app: Celery, task: str, queue: str) -> None:
        self.app = app
        self.task = task
        self.queue = queue
        self._local = threading.local()

    def publish(self, *args: Any) -> str:
        task_id = uuid()
        message = self.app.amqp.as_task_v2(
            task_id, self.task, args=list(args), kwargs={}, argsrepr=repr(list(args)), kwargsrepr="{}",
            ignore_result=True,
        )  # fmt: skip
        try:
            self._producer().publish(
                message.body, exchange="", routing_key=self.queue, serializer="json", headers=message.headers,
                retry=True, retry_policy=PUBLISH_RETRY, **message.properties,
            )  # fmt: skip
        except Exception:
            self.reset()
            raise
        return task_id

    def _producer(self) -> Any:
        producer = getattr(self._local, "producer", None)
        if producer is None:
            connection = self.app.connection_for_write()
            producer = self._local.producer = connection.Producer()
            self._local.connection = connection
        return producer

    def reset(self) -> None:
        """Forget the connection (after a failure, or in a forked child) so the next publish reconnects."""
        connection = getattr(self._local, "connection", None)
        self._local.producer = self._local.connection = None
        if connection is not None:
            # A dead connection may fail to close; it is dropped either way.
            with contextlib.suppress(Exception):
                connection.release()


def publish_events(publisher: TaskPublisher, ids: list[int], what: str = "events") -> None:
    """Hand each new inbox event to the broker. If it is down, the rest are marked unpublished so the
    redelivery sweep's next pass sends them; if even that mark fails, their lease will."""
    for position, inbox_id in enumerate(ids):
        try:
            publisher.publish(inbox_id)
        except Exception as exc:
            left = ids[position:]
            log.warning("broker unavailable, %s %s left for redelivery: %s", len(left), what,
                        type(exc).__name__)  # fmt: skip
            try:
                with get_engine().begin() as conn:
                    inbox.mark_unpublished(conn, left)
            except SQLAlchemyError:
                log.warning("could not mark %s %s unpublished; their lease will redeliver them",
                            len(left), what)  # fmt: skip
            return
