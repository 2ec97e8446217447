"""Counts each push's outcome (tasks.push.push) in the shared counters, from Celery's own signal, so
the push task itself stays untouched and the figure is summed across every worker process and machine.
Counted in memory and flushed every second (as the receiver counts webhooks), not written per push: on
the embedded default each write was a transaction of its own."""

from __future__ import annotations

from typing import Any

from celery import signals

from .counters import BufferedCounts
from .metrics import PUSHES

PUSH_TASK = "tasks.push.push"
_pushes = BufferedCounts(PUSHES)


def push_outcome(state: str | None, retval: Any) -> str:
    """The push's own answer (created, updated, unchanged, failed…) on success, else the task state."""
    if state == "SUCCESS" and isinstance(retval, str):
        return retval.replace(" ", "_")
    return (state or "unknown").lower()


@signals.task_postrun.connect
def _count_push(
    task: Any = None, args: Any = None, kwargs: Any = None, retval: Any = None, state: str | None = None,
    **_extra: Any,
) -> None:  # fmt: skip
    if task is None or task.name != PUSH_TASK:
        return
    args, kwargs = list(args or ()), dict(kwargs or {})
    system = kwargs.get("system") or (args[1] if len(args) > 1 else "unknown")
    _pushes.incr(str(system), push_outcome(state, retval))


def count_push(system: str, outcome: str) -> None:
    """A push made outside its own task (a follower of tasks.push_batch), counted as its task would be."""
    _pushes.incr(system, push_outcome("SUCCESS", outcome))
