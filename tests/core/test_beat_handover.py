"""A beat that dies and one that takes over (issue 6): redbeat on the real Redis, the real schedule from
beat_schedule.py, an injected clock. Beat A is killed (its lock never released) just before the Revolut
token refresh is due, beat B waits for the lock to lapse and takes over, and is killed in turn; beat C
finishes the run. Over two hours and a quarter of injected time no schedule runs twice within its
interval, and the token refresh is never more than 40 minutes (its lifetime) from the previous one.

The clock is injected through the Celery app's `now` (what Celery's schedules and redbeat read); the
lock's expiry is Redis's own, in real time, so the test's lock lasts one second and the handover gap is
added to the injected clock as the production lock timeout. What beat sends is recorded at `send_task`,
where it would reach the broker."""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest
import redis
from celery import Celery
from celery.schedules import schedule as every
from redbeat.schedulers import RedBeatScheduler, acquire_distributed_beat_lock

from beat_schedule import BEAT_SCHEDULE
from syncengine.celery_app import app as production_app

TICK = 10.0  # seconds: beat_max_loop_interval, how often a running beat looks at its schedule
START = datetime(2026, 1, 5, 3, 0, tzinfo=UTC)
TOKEN_LIFETIME = timedelta(minutes=40)


class Clock:
    def __init__(self, at: datetime) -> None:
        self.at = at

    def now(self) -> datetime:
        return self.at


class Recording(RedBeatScheduler):
    """redbeat as it is, with what it would publish written down at the injected time."""

    sent: list[tuple[str, datetime]]

    def send_task(self, name: str, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        raise AssertionError("entries are sent through apply_async below")

    def apply_async(self, entry: Any, producer: Any = None, advance: bool = True, **kwargs: Any) -> None:
        entry = self.reserve(entry) if advance else entry  # what Scheduler.apply_async does first
        self.sent.append((entry.name, self.app.now()))


@pytest.fixture()
def beat_app() -> Iterator[tuple[Celery, Clock]]:
    prefix = f"test-handover-{uuid.uuid4().hex[:8]}:"
    url = os.environ["REDIS_URL"]
    app = Celery("handover", set_as_current=False)
    app.conf.update(dict(production_app.conf.changes))  # the production settings, BEAT_SCHEDULE included
    app.conf.update(redbeat_key_prefix=prefix, redbeat_lock_timeout=1)
    assert app.conf.beat_schedule is BEAT_SCHEDULE and app.conf.beat_max_loop_interval == TICK
    clock = Clock(START)
    app.now = clock.now  # type: ignore[method-assign]
    app.set_current()  # Celery's schedules read the current app's `now`
    try:
        yield app, clock
    finally:
        production_app.set_current()
        client = redis.Redis.from_url(url)
        for key in client.scan_iter(f"{prefix}*"):
            client.delete(key)


def start_beat(app: Celery, sent: list[tuple[str, datetime]]) -> Recording:
    """What `celery beat -S redbeat.RedBeatScheduler` does at start: load the schedule into Redis (keeping
    each entry's last run) and take the lock, waiting while another beat holds it."""
    scheduler = Recording(app=app)
    scheduler.sent = sent

    class Service:
        pass

    service = Service()
    service.scheduler = scheduler  # type: ignore[attr-defined]
    acquire_distributed_beat_lock(sender=service)
    return scheduler


def run_until(scheduler: Recording, clock: Clock, until: datetime) -> None:
    while clock.at < until:
        scheduler.tick()
        clock.at += timedelta(seconds=TICK)


def wait_for_lock_to_lapse(app: Celery) -> None:
    """A killed beat never releases its lock: the next one waits for Redis to expire it."""
    client = redis.Redis.from_url(os.environ["REDIS_URL"])
    key = f"{app.conf.redbeat_key_prefix}:lock"
    deadline = time.monotonic() + 10
    while client.exists(key) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not client.exists(key)


def test_a_killed_beat_hands_over_without_running_anything_twice_or_letting_the_token_lapse(beat_app):
    app, clock = beat_app
    handover = timedelta(seconds=production_app.conf.redbeat_lock_timeout + TICK)
    assert handover < timedelta(minutes=5)  # well under the token refresh's 5-minute margin
    sent: list[tuple[str, datetime]] = []

    beat_a = start_beat(app, sent)
    run_until(beat_a, clock, START + timedelta(minutes=34, seconds=58))  # killed just before the refresh
    del beat_a
    wait_for_lock_to_lapse(app)
    clock.at += handover

    beat_b = start_beat(app, sent)
    run_until(beat_b, clock, START + timedelta(minutes=70, seconds=3))  # killed right after a tick
    del beat_b
    wait_for_lock_to_lapse(app)
    clock.at += handover

    beat_c = start_beat(app, sent)
    run_until(beat_c, clock, START + timedelta(minutes=135))

    runs: dict[str, list[datetime]] = {name: [] for name in BEAT_SCHEDULE}
    for name, at in sent:
        runs[name].append(at)
    for name, entry in BEAT_SCHEDULE.items():
        times = runs[name]
        assert times, f"{name} never ran"
        if isinstance(entry["schedule"], float | int | every):
            interval = timedelta(seconds=float(getattr(entry["schedule"], "seconds", entry["schedule"])))
            gaps = [b - a for a, b in pairwise(times)]
            assert all(gap >= interval for gap in gaps), (name, gaps)  # never twice within its interval
            assert max(gaps, default=interval) <= interval + handover + timedelta(seconds=TICK), name
    refreshes = [START, *runs["revolut-token-refresh"]]
    assert max(b - a for a, b in pairwise(refreshes)) < TOKEN_LIFETIME
    assert len(runs["revolut-token-refresh"]) >= 3  # at 0, ~36 and ~71 minutes: across both handovers
    # The daily report: the run every new schedule gets at once, then 03:30 exactly once.
    assert [at for at in runs["drift-report"] if at > START] == [START.replace(minute=30)]
