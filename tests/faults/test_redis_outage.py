"""Redis (the broker) stopped for 30 s while webhooks keep arriving from every sender: each is answered 202
(stored, left for redelivery) or 503 (the sender retries), and once Redis is back every stored event is
processed exactly once. The Redis is the stack's own, killed for real and restarted empty."""

from __future__ import annotations

import itertools
import time

import pytest

from tests.faults.conftest import Stack, handler_runs, recover, statuses, unique
from tests.support import SENDERS, wait_until

OUTAGE_SECONDS = 30.0


@pytest.mark.slow  # 45 s: `pytest -m slow` (CI's second step), `-m faults` or naming this file runs it
def test_webhooks_during_a_30s_redis_outage_are_all_answered_and_none_is_lost(stack: Stack):
    tag = unique()
    warm = stack.send("directus", f"warm-{tag}")
    assert warm.status_code == 202
    wait_until(lambda: statuses(warm.json()["accepted"]) == {warm.json()["accepted"][0]: "done"}, timeout=30)

    stack.redis.kill()
    answers: list[int] = []
    accepted: list[int] = []
    retry_later: list[tuple[str, str]] = []
    deadline = time.monotonic() + OUTAGE_SECONDS
    senders = itertools.cycle(SENDERS)
    for n in range(1000):  # bounded; the deadline ends it after about 30 s
        if time.monotonic() >= deadline:
            break
        sender = next(senders)
        response = stack.send(sender, f"redis-down-{tag}-{n}")
        answers.append(response.status_code)
        if response.status_code == 202:
            accepted += response.json()["accepted"]
        elif response.status_code == 503:
            retry_later.append((sender, f"redis-down-{tag}-{n}"))
        time.sleep(0.2)
    assert len(answers) >= 10, "too few webhooks reached the receiver during the outage to prove anything"
    assert set(answers) <= {202, 503}, answers
    assert all(s == "received" for s in statuses(accepted).values())  # stored, waiting for the broker

    stack.redis.start()
    for sender, n in retry_later:  # what a sender does with a 503
        response = stack.send(sender, n)
        assert response.status_code == 202
        accepted += response.json()["accepted"]
    recover(stack, accepted)

    assert set(statuses(accepted).values()) == {"done"}
    assert set(handler_runs(accepted).values()) == {1}, handler_runs(accepted)
