"""A handler plugin for tests, loaded by the worker through SYNCENGINE_PLUGINS.

It registers handlers for one event type per sender and appends a line to SYNCENGINE_TEST_RECORD for
every handler run and every task the worker starts, so a test can count what really ran, across
processes. The payload can ask it to fail a number of times, or to sleep (to be killed mid-run).
"""

from __future__ import annotations

import os
import time

from celery import signals

from tasks.dispatch import HandlerContext, handles

# Event types no sync flow handles, so the real handlers and this recorder never compete.
TEST_EVENTS = {
    "invoiceninja": "create_quote",
    "revolut": "PayoutLinkCreated",
    "erpnext": "ToDo:on_update",
    "mautic": "mautic.page_on_hit",
    "directus": "test_events.items.create",
}


def _record(line: str) -> None:
    path = os.environ.get("SYNCENGINE_TEST_RECORD")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(line + "\n")


def _instructions(payload: dict) -> dict:
    for key in ("test", "data"):
        value = payload.get(key)
        if isinstance(value, dict) and "test" in value:
            return value["test"]
        if key == "test" and isinstance(value, dict):
            return value
    return {}


def record_run(ctx: HandlerContext) -> None:
    event = ctx.event
    _record(
        f"handler {event.id} {event.source} {event.event_type} attempt={event.attempts} pid={os.getpid()}"
    )
    todo = _instructions(event.payload if isinstance(event.payload, dict) else {})
    if todo.get("sleep"):
        time.sleep(float(todo["sleep"]))
    if todo.get("sleep_first") and event.attempts == 1:
        time.sleep(float(todo["sleep_first"]))
    if event.attempts <= int(todo.get("fail_times", 0)):
        raise RuntimeError(f"planned failure {event.attempts} token=sk-should-not-leak")


for _source, _event_type in TEST_EVENTS.items():
    handles(_source, _event_type)(record_run)


@signals.task_prerun.connect
def _count_tasks(task=None, args=None, **_kwargs) -> None:  # type: ignore[no-untyped-def]
    if task is not None and task.name == "tasks.dispatch.process":
        _record(f"task {args[0] if args else '?'} pid={os.getpid()}")
