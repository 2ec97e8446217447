"""The broker down at intake: the sender still gets 202 in time, and the event is processed once the
broker is back, through the redelivery sweep. Uses a Redis server of its own, stopped for real."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.conftest import WORK, record_lines
from tests.servers import PrivateRedis
from tests.support import (
    Proc,
    celery_worker_cmd,
    dumps,
    free_port,
    gunicorn_cmd,
    sample,
    sign,
    wait_for_port,
    wait_until,
)


@pytest.fixture()
def own_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.kill()


def test_broker_down_answers_202_and_redelivery_processes_after_restart(own_redis, store):
    env = dict(os.environ, REDIS_URL=own_redis.url)
    port = free_port()
    web = Proc(gunicorn_cmd(port, workers=1), env, WORK / "outage-web.log")
    worker = Proc(celery_worker_cmd(concurrency=1), env, WORK / "outage-worker.log")
    try:
        wait_for_port(port)
        wait_until(lambda: "ready." in worker.output(), timeout=60)
        own_redis.kill()

        path, payload = sample("directus", f"outage-{time.time_ns()}")
        body = dumps(payload)
        started = time.monotonic()
        response = requests.post(
            f"http://127.0.0.1:{port}{path}", data=body, headers=sign("directus", body), timeout=10
        )
        elapsed = time.monotonic() - started
        assert response.status_code == 202
        assert elapsed < 2.0, f"took {elapsed:.2f} s with the broker down"
        (inbox_id,) = response.json()["accepted"]

        def left_for_redelivery() -> bool:
            # The receiver answers first and publishes after: the failed publish is recorded just after.
            with session_scope() as s:
                row = s.get(InboxEvent, inbox_id)
                return row.status == "received" and row.published_at is None

        wait_until(left_for_redelivery, timeout=10)

        own_redis.start()  # an empty Redis: the published message, had there been one, is gone too
        redeliver = subprocess.run(
            [sys.executable, "-c", "from tasks.dispatch import redeliver; print(redeliver(grace_seconds=0))"],
            env=env, cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60,
        )  # fmt: skip
        assert redeliver.returncode == 0, redeliver.stderr
        assert int(redeliver.stdout.strip().splitlines()[-1]) >= 1

        def done() -> bool:
            with session_scope() as s:
                return s.get(InboxEvent, inbox_id).status == "done"

        wait_until(done, timeout=60)
        assert len(record_lines("handler", inbox_id)) == 1
    finally:
        web.stop()
        worker.stop()
