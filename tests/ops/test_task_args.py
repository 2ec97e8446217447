"""Task arguments carry ids only (docs/architecture.md, Celery): Flower and the broker show them, so no
payload and no secret may travel in a message. Checked on every registered task's signature, and on a push as
Celery publishes it (the receiver's own message is read off the queue in test_procfile_roles)."""

from __future__ import annotations

import inspect
import json
import typing
from typing import Any

from celery import signals

ID_TYPES = (int, str, float, bool, type(None))


def test_a_published_push_carries_only_ids():
    from syncengine.celery_app import app
    from tasks.push import push

    published: list[tuple[str, Any, str]] = []

    def capture(sender: str | None = None, body: Any = None, **_kwargs: Any) -> None:
        published.append((sender or "", body, json.dumps(body)))

    signals.before_task_publish.connect(capture, weak=False)
    try:
        with app.connection_for_write() as conn:
            push.apply_async((1, "mautic"), connection=conn)
    finally:
        signals.before_task_publish.disconnect(capture)

    [(name, message, _raw)] = published
    args, kwargs, _embed = message
    assert name == "tasks.push.push" and list(args) == [1, "mautic"] and kwargs == {}


def test_every_task_takes_ids_not_payloads():
    from syncengine.celery_app import app

    app.loader.import_default_modules()
    tasks = {name: task for name, task in app.tasks.items() if name.startswith("tasks.")}
    assert "tasks.dispatch.process" in tasks and "tasks.push.push" in tasks
    for name, task in tasks.items():
        hints = typing.get_type_hints(task.run)
        for param in inspect.signature(task.run).parameters.values():
            if param.name == "self" or param.kind in (param.VAR_KEYWORD, param.VAR_POSITIONAL):
                continue
            hint = hints.get(param.name)
            allowed = typing.get_args(hint) or (hint,)
            assert hint is not None and all(t in ID_TYPES for t in allowed), (name, param.name, hint)
