"""A test plugin, loaded by the worker through SYNCENGINE_PLUGINS: SIGKILL the worker at a hook point named
in SYNCENGINE_TEST_CRASH_POINTS (comma-separated), once per point (a marker file in
SYNCENGINE_TEST_CRASH_DIR, armed only while that folder exists)."""

from __future__ import annotations

import logging
import os
import signal

from syncengine import hook_points

log = logging.getLogger(__name__)


def crash(point: str) -> None:
    folder = os.environ.get("SYNCENGINE_TEST_CRASH_DIR")
    points = os.environ.get("SYNCENGINE_TEST_CRASH_POINTS", "").split(",")
    if not folder or point not in points or not os.path.isdir(folder):
        return
    try:
        os.close(os.open(os.path.join(folder, point), os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return
    log.warning("test crash point %s: killing pid %s", point, os.getpid())
    os.kill(os.getpid(), signal.SIGKILL)


hook_points.arm(crash)
