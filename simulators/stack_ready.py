"""A worker plugin of the stack (simulators.stack, through SYNCENGINE_PLUGINS): the worker says it is ready
by creating the file SYNCENGINE_READY_FILE names, so the stack need not log at INFO (one line per task) to
read Celery's "ready." line."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from celery import signals


@signals.worker_ready.connect
def _ready(**_: Any) -> None:
    marker = os.environ.get("SYNCENGINE_READY_FILE")
    if marker:
        Path(marker).touch()
