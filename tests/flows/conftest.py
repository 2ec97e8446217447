"""A whole deployment for the flow tests: every vendor simulator, the receiver under gunicorn and a Celery
worker, on a Redis database of their own, with each simulator's webhooks pointed at the receiver exactly as
`webhooks install` would subscribe them (Invoice Ninja: one URL per event with our secret header; ERPNext:
signed per document event; Mautic: signed batches; Directus: a Flow with our secret header). It is started
by the stack the demo and the benchmarks run (simulators.stack), on the session's store."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from simulators import REGISTRY, stack
from syncengine.vendors.erpnext import custom_field_seed
from tests.conftest import REDIS_BASE, WORK
from tests.servers import claim_redis_db
from tests.support import SECRETS, Child, wait_until

ERPNEXT_CUSTOM_FIELDS = custom_field_seed()

# Crash recovery (test_payment_crash): a short effect lease, and the points where a pool process kills
# itself once, armed only while CRASH_DIR exists (the test creates it; its markers say which fired).
EFFECT_LEASE_SECONDS = 3
CRASH_DIR = WORK / "crash-points"
CRASH_POINTS = (
    "invoiceninja.create_payment.called",
    "erpnext.payment_entry.called",
    "mautic.send_receipt.called",
)


@dataclass
class Deployment:
    sims: dict[str, Any]  # vendor -> simulator instance
    servers: dict[str, Any]  # vendor -> RunningServer
    receiver: str
    worker: Child
    env: dict[str, str]

    def settle(self, timeout: float = 60.0) -> None:
        """Wait until the inbox has nothing left to do and the simulators have sent their webhooks."""
        from sqlalchemy import func, select

        from syncengine.db import session_scope
        from syncengine.models import InboxEvent

        def quiet() -> bool:
            for sim in self.sims.values():
                sim.flush_webhooks(timeout=5)
            with session_scope() as s:
                waiting = s.execute(
                    select(func.count()).where(InboxEvent.status.in_(("received", "processing")))
                ).scalar_one()
            return waiting == 0 and _queues_empty(self.env["REDIS_URL"])

        wait_until(quiet, timeout=timeout, interval=0.5)
        wait_until(quiet, timeout=timeout, interval=0.5)  # twice: a push may have caused an echo meanwhile


def _queues_empty(url: str) -> bool:
    client = redis.Redis.from_url(url)
    return all(client.llen(q) == 0 for q in ("intake", "sync")) and not client.keys("unacked*")


def _simulators() -> dict[str, Any]:
    return {
        "invoiceninja": REGISTRY["invoiceninja"](),
        "erpnext": REGISTRY["erpnext"](custom_fields=ERPNEXT_CUSTOM_FIELDS),
        "mautic": REGISTRY["mautic"](),
        "directus": REGISTRY["directus"](),
        "revolut": REGISTRY["revolut"](),
    }


# What the hub knows of the vendors' objects, and how far it has read them. A deployment's simulators start
# empty, so these must too: pytest builds the package's deployment again whenever tests from elsewhere run
# between flow files (`pytest tests/flows/a.py tests/x.py tests/flows/b.py`), and links or cursors left
# from the first one would point at objects the new simulators never had.
HUB_STATE = (
    "outbox", "inbox_events", "documents", "links", "records", "idempotency_keys", "sync_cursors",
    "tombstones",
)  # fmt: skip


def _fresh_hub() -> None:
    from syncengine.db import get_engine
    from syncengine.models import Base

    with get_engine().begin() as conn:
        for table in reversed(Base.metadata.sorted_tables):  # children before parents
            if table.name in HUB_STATE:
                conn.execute(table.delete())


@pytest.fixture(scope="package")
def deployment(store: str) -> Iterator[Deployment]:
    _fresh_hub()
    redis_url = f"{REDIS_BASE}/{claim_redis_db(REDIS_BASE)}"
    redis.Redis.from_url(redis_url).flushdb()
    extra_env = {"LOG_LEVEL": os.environ["LOG_LEVEL"], "SYNCENGINE_EFFECT_LEASE": str(EFFECT_LEASE_SECONDS),
                 "SYNCENGINE_TEST_CRASH_DIR": str(CRASH_DIR),
                 "SYNCENGINE_TEST_CRASH_POINTS": ",".join(CRASH_POINTS)}  # fmt: skip
    log = WORK / "flows-engine.log"  # the receiver's and the worker's output
    layout = stack.Layout(web_workers=2, concurrency=2, queues="intake,sync", loglevel="INFO", log=log,
                          extra_env=extra_env)  # fmt: skip
    started = stack.start(_simulators(), home=Path(os.environ["SYNCENGINE_HOME"]), database_url=store,
                          redis_url=redis_url, layout=layout, webhook_secrets=SECRETS)  # fmt: skip
    try:
        worker = Child(started.workers[0], log)
        yield Deployment(started.sims, started.servers, started.receiver, worker, started.env)
    finally:
        started.stop()
