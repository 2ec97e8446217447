"""celery beat with redbeat on the real Redis: the schedule from beat_schedule.py reaches the worker."""

from __future__ import annotations

import os
import sys

import redis

from beat_schedule import BEAT_SCHEDULE
from tests.conftest import WORK
from tests.support import Proc, wait_until


def test_beat_schedules_the_redelivery_sweep_through_redbeat(worker):
    env = dict(os.environ, SYNCENGINE_REDELIVERY_EVERY="2")
    beat = Proc([sys.executable, "-m", "syncengine", "beat"], env, WORK / "beat.log")
    try:
        client = redis.Redis.from_url(os.environ["REDIS_URL"])
        wait_until(lambda: client.exists("syncengine:redbeat:inbox-redelivery"), timeout=30)
        assert "redbeat.schedulers.RedBeatScheduler" in beat.output()
        # redbeat writes the schedule before it takes the lock: wait for it rather than race it.
        wait_until(lambda: client.exists("syncengine:redbeat::lock"), timeout=30)
        wait_until(lambda: "Task tasks.dispatch.redeliver[" in worker.output(), timeout=30)
    finally:
        beat.stop()
    assert "inbox-redelivery" in BEAT_SCHEDULE


def test_every_schedule_names_a_registered_task():
    from syncengine.celery_app import app

    app.loader.import_default_modules()
    for name, entry in BEAT_SCHEDULE.items():
        assert entry["task"] in app.tasks, name


def test_every_sweep_has_a_schedule_and_every_schedule_a_sweep():
    from tasks.sweep_sources import SOURCES

    swept = {tuple(e["args"]) for e in BEAT_SCHEDULE.values() if e["task"] == "tasks.reconcile.sweep"}
    assert swept == set(SOURCES)
