"""One running deployment for convergence runs: the four contact systems' simulators, the webhook proxy
between them and the receiver (gunicorn), and a Celery worker, on a database and Redis database given by the
caller. It can kill its worker as a platform does (SIGTERM, then SIGKILL 2 s later) and start another, tell
when everything is quiet, and run the operator's `syncengine sweep`. Used by tests/convergence and
bench/convergence.py (which may not import tests/)."""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa

from simulators import REGISTRY
from simulators.convergence.contacts import SYSTEMS, Contacts
from simulators.webhook_proxy import RunningProxy, WebhookProxy
from simulators.wiring import engine_env, subscribe
from syncengine.vendors.erpnext import custom_field_seed

ROOT = Path(__file__).resolve().parents[2]
QUEUES = ("intake", "sync", "sweeps")
KILL_GRACE = 2.0  # seconds between SIGTERM and SIGKILL, as Heroku gives a dyno
# Short leases, so work a killed worker held is re-driven within seconds, not production's half-minute (and
# an effect a killed worker had started is retried after 10 s, not 2 minutes: syncengine.idempotency).
LEASES = {"SYNCENGINE_INBOX_LEASE": "10", "SYNCENGINE_TASK_LEASE": "10", "SYNCENGINE_EFFECT_LEASE": "10"}
UNFINISHED_EVENTS = "SELECT count(*) FROM inbox_events WHERE status IN ('received', 'processing')"
UNFINISHED_TASKS = "SELECT count(*) FROM outbox WHERE state IN ('pending', 'running')"
# What keeps a stack from quiescence, for the trace of a slow one: the oldest unfinished rows and why.
WAITING = """
    SELECT 'event ' || source || ' ' || event_type, status, attempts, available_at, last_error
      FROM inbox_events WHERE status IN ('received', 'processing')
    UNION ALL
    SELECT 'task ' || task || ' ' || coalesce(subject, ''), state, attempts, available_at, last_error
      FROM outbox WHERE state IN ('pending', 'running')
    ORDER BY 4 NULLS FIRST LIMIT 5"""
SLOW_SETTLE = 30.0  # seconds of waiting for quiescence after which the trace says what is still waiting


class Process:
    """A child in its own process group (gunicorn's and Celery's children go with it), logging to a file."""

    def __init__(self, cmd: list[str], env: dict[str, str], log: Path) -> None:
        self.log = log
        with open(log, "ab") as out:
            self.popen = subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
                                          start_new_session=True)  # fmt: skip

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, grace: float = 15.0) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=10)

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def wait_for(predicate: Any, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} not met within {timeout:.0f} s")
        time.sleep(interval)


class Stack:
    def __init__(self, database_url: str, redis_url: str, workdir: Path,
                 base_env: dict[str, str] | None = None, concurrency: int = 2) -> None:  # fmt: skip
        self.database_url, self.redis_url, self.workdir = database_url, redis_url, workdir
        self.base_env = dict(os.environ if base_env is None else base_env)
        self.concurrency = concurrency
        self.sims: dict[str, Any] = {}
        self.servers: dict[str, Any] = {}
        self.proxy: WebhookProxy | None = None
        self.running_proxy: RunningProxy | None = None
        self.web: Process | None = None
        self.worker: Process | None = None
        self.kills = 0
        self._worker_lock = threading.Lock()
        url = sa.make_url(database_url.replace("postgres://", "postgresql://", 1))
        self._db = sa.create_engine(url.set(drivername="postgresql+psycopg2"), pool_size=2)
        self._redis = redis.Redis.from_url(redis_url)

    def start(self) -> Stack:
        self.sims = {
            "invoiceninja": REGISTRY["invoiceninja"](),
            "erpnext": REGISTRY["erpnext"](custom_fields=custom_field_seed()),
            "mautic": REGISTRY["mautic"](),
            "directus": REGISTRY["directus"](),
        }
        self.servers = {name: sim.serve() for name, sim in self.sims.items()}
        hooks = {name: secrets.token_hex(12) for name in SYSTEMS}
        port = _free_port()
        receiver = f"http://127.0.0.1:{port}"
        self.proxy = WebhookProxy(receiver)
        self.running_proxy = self.proxy.serve()
        subscribe(self.sims, self.running_proxy.url, hooks)
        self.env = {
            **self.base_env, **LEASES, "DATABASE_URL": self.database_url, "REDIS_URL": self.redis_url,
            **engine_env({name: server.url for name, server in self.servers.items()}),
            **{f"{name.upper()}_WEBHOOK_SECRET": secret for name, secret in hooks.items()},
        }  # fmt: skip
        for name in ("REVOLUT_URL", "OPENAI_BASE_URL"):
            self.env.pop(name, None)
        self.web = Process([sys.executable, "-m", "gunicorn", "webhooks.app:create_app()", "--bind",
                            f"127.0.0.1:{port}", "--workers", "2", "--log-level", "warning"],
                           self.env, self.workdir / "convergence-web.log")  # fmt: skip
        self.start_worker()
        wait_for(lambda: _answers(port), 30, what="the receiver answering")
        return self

    def start_worker(self) -> None:
        cmd = [sys.executable, "-m", "celery", "-A", "syncengine.celery_app", "worker",
               "-Q", ",".join(QUEUES), "--concurrency", str(self.concurrency), "--loglevel", "INFO",
               "--without-gossip", "--without-mingle", "-n", f"conv{self.kills}@%h"]  # fmt: skip
        log = self.workdir / f"convergence-worker-{self.kills}.log"
        self.worker = Process(cmd, self.env, log)
        wait_for(lambda: "ready." in self.worker.output(), 90, what="the worker starting")

    def kill_worker(self) -> None:
        """SIGTERM the whole worker, SIGKILL it 2 s later whatever it is doing, and start another."""
        with self._worker_lock:
            assert self.worker is not None
            self.worker.signal(signal.SIGTERM)
            time.sleep(KILL_GRACE)
            self.worker.signal(signal.SIGKILL)
            self.worker.popen.wait(timeout=30)
            self.kills += 1
            self.start_worker()

    def stop(self) -> None:
        for proc in (self.web, self.worker):
            if proc is not None:
                proc.stop()
        if self.running_proxy is not None:
            self.running_proxy.stop()
        for server in self.servers.values():
            server.stop()
        self._db.dispose()

    def contacts(self) -> Contacts:
        return Contacts(self.sims, {name: server.url for name, server in self.servers.items()})

    def redeliver(self, grace: float = 0.0) -> None:
        """What the beat's redelivery entry does: events and pushes a killed worker held, published again.
        Only while the queues are empty: redelivery cannot tell a message lost from one queued behind a
        backlog longer than the lease, and would publish the whole backlog again."""
        from celery import Celery

        if any(self._redis.llen(q) for q in QUEUES):
            return
        with Celery(broker=self.redis_url, set_as_current=False) as app:
            app.send_task("tasks.dispatch.redeliver", kwargs={"grace_seconds": grace}, queue="sweeps")

    def pending(self) -> dict[str, int]:
        """What is still to do: inbox events and outbox tasks not finished, messages queued."""
        with self._db.connect() as conn:
            inbox = conn.execute(sa.text(UNFINISHED_EVENTS)).scalar_one()
            outbox = conn.execute(sa.text(UNFINISHED_TASKS)).scalar_one()
        queued = sum(self._redis.llen(q) for q in QUEUES)
        return {"inbox": inbox, "outbox": outbox, "queued": queued}

    def quiet(self) -> bool:
        if not all(sim.flush_webhooks(timeout=5) for sim in self.sims.values()):
            return False
        assert self.proxy is not None
        return self.proxy.idle() and not any(self.pending().values())

    def settle(self, timeout: float = 180.0) -> list[str]:
        """Wait until nothing is left to do, publishing again what a killed worker held, as the beat would;
        twice, as a push may have caused an echo meanwhile. Returns what was still waiting after
        SLOW_SETTLE seconds, if it took that long."""
        last, started, slow = [0.0], time.monotonic(), []

        def done() -> bool:
            if self.quiet():
                return True
            if not slow and time.monotonic() - started > SLOW_SETTLE:
                slow.extend(self.waiting())
            if time.monotonic() - last[0] > 3:
                last[0] = time.monotonic()
                self.redeliver()
            return False

        try:
            for _ in range(2):
                wait_for(done, timeout, interval=0.5, what="quiescence")
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}: {self.pending()}; {self.waiting()}") from None
        return slow

    def waiting(self) -> list[str]:
        with self._db.connect() as conn:
            rows = conn.execute(sa.text(WAITING)).all()
        return [f"{what} {state} attempts={n} at={at:%H:%M:%S} {str(error or '')[:120]}".rstrip()
                if at else f"{what} {state} attempts={n}" for what, state, n, at, error in rows]  # fmt: skip

    def sweep(self) -> str:
        """`syncengine sweep`: every kind of every configured system, as an operator runs it."""
        done = subprocess.run([sys.executable, "-m", "syncengine", "sweep"], env=self.env, cwd=ROOT,
                              capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
        if done.returncode != 0:
            raise RuntimeError(f"syncengine sweep exited {done.returncode}: {done.stderr[-2000:]}")
        return done.stdout

    def vendor_reads(self) -> int:
        """GET requests the simulators answered (the vendors' reads), for the benchmark's cost figure."""
        return sum(len(sim.requests_log(method="GET")) for sim in self.sims.values())


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _answers(port: int) -> bool:
    import socket

    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False
