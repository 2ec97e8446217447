"""Redis restarted (killed, and back empty: no persistence) with 10 tasks in flight on 10 worker processes
and 50 more queued behind them: all 60 events complete, and no handler runs twice. The broker's copy of
every message is gone; the inbox on disk is what brings them back (the redelivery sweep)."""

from __future__ import annotations

from tests.faults.conftest import WORKER_PROCESSES, Stack, handler_runs, recover, statuses, unique
from tests.support import SENDERS, wait_until


def test_redis_restart_with_50_queued_and_10_in_flight_completes_all_60_once(stack: Stack):
    extra = stack.start_worker(concurrency=10 - WORKER_PROCESSES, name="restart")
    try:
        tag = unique()
        in_flight: list[int] = []
        for n in range(10):  # each holds its worker process long enough to be in flight at the restart
            response = stack.send(SENDERS[n % len(SENDERS)], f"inflight-{tag}-{n}", test={"sleep": 4})
            assert response.status_code == 202
            in_flight += response.json()["accepted"]
        wait_until(lambda: all(handler_runs(in_flight).values()), timeout=60, interval=0.1)

        queued: list[int] = []
        for n in range(50):
            response = stack.send(SENDERS[n % len(SENDERS)], f"queued-{tag}-{n}")
            assert response.status_code == 202
            queued += response.json()["accepted"]
        # Every worker process is busy: the 50 wait in Redis (or in a worker's prefetch, unacked).
        assert sum(handler_runs(queued).values()) == 0
        assert all(s == "processing" for s in statuses(in_flight).values())

        assert stack.redis.client().llen("intake") > 0  # the broker holds the queued ones

        stack.redis.kill()
        stack.redis.start()
        assert stack.redis.client().llen("intake") == 0  # the queue, the unacked messages: all gone

        everything = in_flight + queued
        recover(stack, everything, timeout=120)
        assert set(statuses(everything).values()) == {"done"}
        runs = handler_runs(everything)
        assert set(runs.values()) == {1}, {i: c for i, c in runs.items() if c != 1}
    finally:
        extra.stop()
        stack.extra.remove(extra)
