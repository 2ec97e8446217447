"""A whole deployment in which one vendor is its real server (tests/peers.py) and the others are simulators:
the receiver under gunicorn and a Celery worker on a Redis database of their own, the simulators wired as
`webhooks install` subscribes them, and the real vendor made ready exactly as an operator would: `syncengine
setup --url <receiver>` (its schema, permissions and webhook subscriptions) must succeed first.

Each test module builds its own deployment with `launch(vendor)` in a module-scoped fixture, and marks its
tests `peers(vendor)`. The real server keeps what the tests make: name things uniquely.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import redis

from simulators import REGISTRY
from simulators.wiring import engine_env, subscribe
from tests import peers
from tests.conftest import REDIS_BASE, WORK
from tests.flows.conftest import ERPNEXT_CUSTOM_FIELDS, _fresh_hub, _queues_empty
from tests.servers import claim_redis_db
from tests.support import (
    ROOT,
    SECRETS,
    Proc,
    celery_worker_cmd,
    free_port,
    gunicorn_cmd,
    wait_for_port,
    wait_until,
)

SIMULATED = ("invoiceninja", "erpnext", "mautic", "directus", "revolut")
# How long the inbox must stay quiet before a real vendor is taken to have sent everything: ERPNext's rq
# worker sends a webhook within a second of the commit; a Directus Flow at once.
QUIET_FOR = 3.0


@dataclass
class PeerDeployment:
    real: str  # the vendor played by its real server
    sims: dict[str, Any]  # the simulated vendors
    receiver: str
    worker: Proc
    env: dict[str, str]
    check_before_setup: subprocess.CompletedProcess[str]  # `setup --check` on the server as it was found
    setup_output: subprocess.CompletedProcess[str] = field(repr=False, default=None)  # type: ignore[assignment]

    def cli(self, *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
        """`syncengine <args>` as the operator runs it, with this deployment's variables."""
        return syncengine(self.env, *args, timeout=timeout)

    def settle(self, timeout: float = 90.0) -> None:
        """Wait until the simulators have sent their webhooks, the real vendor has had time to send its
        own, and the inbox and the queues have nothing left, for QUIET_FOR seconds in a row."""
        quiet_since: list[float] = []

        def quiet() -> bool:
            for sim in self.sims.values():
                sim.flush_webhooks(timeout=5)
            if not (_inbox_idle() and _queues_empty(self.env["REDIS_URL"])):
                quiet_since.clear()
                return False
            quiet_since[:] = quiet_since or [time.monotonic()]
            return time.monotonic() - quiet_since[0] >= QUIET_FOR

        wait_until(quiet, timeout=timeout, interval=0.5)


def syncengine(env: dict[str, str], *args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "commands.cli", *args], env=env, cwd=ROOT,
        capture_output=True, text=True, timeout=timeout,
    )  # fmt: skip


def _inbox_idle() -> bool:
    from sqlalchemy import func, select

    from syncengine.db import session_scope
    from syncengine.models import InboxEvent

    with session_scope() as s:
        waiting = s.execute(
            select(func.count()).where(InboxEvent.status.in_(("received", "processing")))
        ).scalar_one()
    return waiting == 0


def _simulators(real: str) -> dict[str, Any]:
    options = {"erpnext": {"custom_fields": ERPNEXT_CUSTOM_FIELDS}}
    return {name: REGISTRY[name](**options.get(name, {})) for name in SIMULATED if name != real}


@contextmanager
def launch(real: str, extra_env: dict[str, str] | None = None) -> Iterator[PeerDeployment]:
    """The deployment, with `real` set up by `syncengine setup`; fails with setup's own lines if it fails."""
    _fresh_hub()
    sims = _simulators(real)
    servers = {name: sim.serve() for name, sim in sims.items()}
    redis_url = f"{REDIS_BASE}/{claim_redis_db(REDIS_BASE)}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    env = dict(os.environ, REDIS_URL=redis_url, SYNCENGINE_PUBLIC_URL=receiver)
    env.update(engine_env({name: server.url for name, server in servers.items()}))
    env.update(peers.get(real), **(extra_env or {}))
    subscribe(sims, receiver, SECRETS)
    web = Proc(gunicorn_cmd(port, workers=2), env, WORK / f"peer-{real}-web.log")
    worker = Proc(
        celery_worker_cmd(concurrency=2, queues="intake,sync"), env, WORK / f"peer-{real}-worker.log"
    )
    try:
        wait_for_port(port)
        wait_until(lambda: "ready." in worker.output(), timeout=60)
        before = syncengine(env, "setup", "--check", "--system", real)
        deployment = PeerDeployment(real, sims, receiver, worker, env, before)
        deployment.setup_output = syncengine(env, "setup", "--system", real)
        assert deployment.setup_output.returncode == 0, (
            f"syncengine setup --system {real} failed:\n{deployment.setup_output.stdout}"
            f"{deployment.setup_output.stderr}"
        )
        yield deployment
    finally:
        web.stop()
        worker.stop()
        for server in servers.values():
            server.stop()
