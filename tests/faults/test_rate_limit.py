"""Revolut in a 429 storm (every request refused with Retry-After: 2 for a while) while incoming payments
arrive, on worker processes configured for Revolut (consent done through the real OAuth callback): the
workers hold back for the Retry-After, all of them (the pause is shared in Redis), never send more than
Revolut's 60 requests a minute (the simulator enforces the documented limit and never had to refuse us
outside the storm), and every payment event is processed once the storm passes."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import WORK
from tests.connectors.test_tokens import certificate, connect, key, key_pem, revolut  # noqa: F401 - fixtures
from tests.faults.conftest import Stack, statuses
from tests.servers import PrivateRedis
from tests.support import (
    Proc,
    celery_worker_cmd,
    dumps,
    free_port,
    gunicorn_cmd,
    sign,
    wait_for_port,
    wait_until,
)

PAYMENTS = 12
STORM_SECONDS = 6.0
RETRY_AFTER = 2
PROCESSES = 3


@pytest.fixture()
def revolut_workers(stack: Stack, revolut) -> Iterator[tuple[str, object]]:  # noqa: F811
    """Receiver and 3 worker processes with Revolut configured, on a Redis of their own."""
    assert connect(revolut).status_code == 200  # tokens stored, encrypted, for the workers to use
    broker = PrivateRedis()
    env = dict(stack.env, REDIS_URL=broker.url,
               **{k: v for k, v in os.environ.items() if k.startswith("REVOLUT_")})  # fmt: skip
    port = free_port()
    web = Proc(gunicorn_cmd(port, workers=1), env, WORK / "faults-revolut-web.log")
    worker = Proc(celery_worker_cmd(concurrency=PROCESSES, queues="intake,sync"), env,
                  WORK / "faults-revolut-worker.log")  # fmt: skip
    try:
        wait_for_port(port)
        wait_until(lambda: "ready." in worker.output(), timeout=90)
        yield f"http://127.0.0.1:{port}", revolut
    finally:
        web.stop()
        worker.stop()
        broker.kill()


def max_in_window(times: list[float], window: float = 60.0) -> int:
    ordered = sorted(times)
    counts = (sum(1 for t in ordered[i:] if t < start + window) for i, start in enumerate(ordered))
    return max(counts, default=0)


def test_a_429_storm_is_waited_out_within_the_limit_and_everything_is_delivered(revolut_workers):
    receiver, rev = revolut_workers
    sim = rev.sim
    txs = [sim.receive_payment(10.0 + n, reference=f"storm-{n}", payer="Payer Ltd") for n in range(PAYMENTS)]
    sim.set_faults(rate_limit_storm={"count": 10_000, "retry_after": RETRY_AFTER})
    storm_started = sim.now()
    accepted: list[int] = []
    for tx in txs:
        # A state change without its TransactionCreated: the worker must read the transaction from Revolut.
        change = {"id": tx["id"], "old_state": "pending", "new_state": "completed"}
        body = dumps({"event": "TransactionStateChanged", "timestamp": tx["created_at"], "data": change})
        response = requests.post(f"{receiver}/webhooks/revolut", data=body, headers=sign("revolut", body),
                                 timeout=10)  # fmt: skip
        assert response.status_code == 202
        accepted += response.json()["accepted"]
    wait_until(lambda: any(e["status"] == 429 for e in sim.requests_log()), timeout=30)
    deadline = time.monotonic() + STORM_SECONDS
    while time.monotonic() < deadline:  # bounded: the storm lasts STORM_SECONDS
        time.sleep(0.2)
    sim.set_faults(rate_limit_storm={"count": 0})
    storm_ended = sim.now()

    wait_until(lambda: set(statuses(accepted).values()) == {"done"}, timeout=120, interval=0.5)
    log = sim.requests_log()
    refused = [e for e in log if e["status"] == 429]
    assert refused, "the storm refused nothing: the test would prove nothing"
    # Honouring Retry-After: each pause stops every process, so per pause at most one request per process
    # can meet the storm (a client retrying on its own backoff would send many more).
    assert len(refused) <= PROCESSES * (STORM_SECONDS / RETRY_AFTER + 2), len(refused)
    assert all(storm_started <= e["time"] <= storm_ended + 1 for e in refused)  # none from the 60/min limit
    assert max_in_window([e["time"] for e in log]) <= 60
    for tx in txs:
        reads = [e for e in log if e["path"].endswith(f"/transaction/{tx['id']}") and e["status"] == 200]
        assert reads, tx["id"]
