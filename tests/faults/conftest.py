"""The fault suite's deployment: every vendor simulator, the receiver under gunicorn, Celery worker processes
and a Redis server of its own (so stopping it never disturbs the shared one), on a database of its own on the
session's Postgres (the suite's records and links must not meet the flow tests' fresh simulators' ids).

Everything here is real: faults are injected by killing servers and processes, or through the simulators'
`/_sim/` controls. Tests wait on conditions with bounded timeouts, never on fixed sleeps.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from celery import Celery
from sqlalchemy import select

from simulators.wiring import engine_env, subscribe
from syncengine.db import session_scope
from syncengine.models import InboxEvent
from tests.conftest import ADMIN_URL, WORK
from tests.flows.conftest import Deployment, _simulators
from tests.servers import PrivateRedis, with_database
from tests.support import (
    SECRETS,
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

HERE = Path(__file__).resolve().parent
# The breaker's cool-down in this deployment: the accelerated clock of the 500-storm test (30 s -> 3 s).
BREAKER_COOLDOWN = 3.0
WORKER_PROCESSES = 3
RECORD = WORK / "faults-record.log"  # the recording plugin's log of handler runs, for this suite only


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/faults is the fault suite: `pytest -m faults` runs it alone."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.faults)


class PrivatePostgres:
    """A throwaway Postgres cluster (initdb + pg_ctl) on a free port, owned by the `postgres` user when we
    are root (initdb refuses root). Stopping it never touches the shared server on 5432."""

    def __init__(self) -> None:
        bins = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"))
        if not bins:
            pytest.skip("no Postgres server binaries under /usr/lib/postgresql")
        self.bin = bins[-1].parent
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="syncengine-faults-pg-"))
        self.data = self.dir / "data"
        os.chmod(self.dir, 0o777)  # noqa: S103 - a private temp dir the postgres user must write into
        self._run([str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust", "-U", "postgres",
                   "--no-sync", "-E", "UTF8"])  # fmt: skip
        self.start()

    def _run(self, cmd: list[str]) -> None:
        if os.geteuid() == 0:
            cmd = ["runuser", "-u", "postgres", "--", *cmd]
        subprocess.run(cmd, check=True, capture_output=True, timeout=120)

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def start(self) -> None:
        opts = f"-p {self.port} -c listen_addresses=127.0.0.1 -k {self.dir} -c fsync=off"
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-o", opts, "-l",
                   str(self.dir / "pg.log"), "-w", "start"])  # fmt: skip

    def stop(self) -> None:
        self._run([str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"])

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


@dataclass
class Stack(Deployment):
    """The flow deployment plus its private Redis and any extra worker processes a test starts."""

    redis: PrivateRedis | None = None
    extra: list[Proc] = field(default_factory=list)

    def post(self, path: str, body: bytes, headers: dict[str, str], timeout: float = 15) -> requests.Response:
        return requests.post(self.receiver + path, data=body, headers=headers, timeout=timeout)

    def send(self, sender: str, n: int | str, test: dict | None = None) -> requests.Response:
        """A signed event of the recording plugin's type (tests/plugins/recording.py)."""
        path, payload = sample(sender, n, test)
        body = dumps(payload)
        return self.post(path, body, sign(sender, body))

    def celery(self) -> Celery:
        return Celery(broker=self.env["REDIS_URL"], set_as_current=False)

    def redeliver(self) -> None:
        """What the beat's inbox-redelivery entry does, without its 30 s grace: sent through the broker
        and run by a worker."""
        with self.celery() as app:
            app.send_task("tasks.dispatch.redeliver", kwargs={"grace_seconds": 0}, queue="sweeps")

    def start_worker(self, concurrency: int, name: str) -> Proc:
        cmd = [*celery_worker_cmd(concurrency=concurrency, queues="intake,sync,sweeps"), "-n", f"{name}@%h"]
        proc = Proc(cmd, self.env, WORK / f"faults-{name}.log")
        self.extra.append(proc)
        wait_until(lambda: "ready." in proc.output(), timeout=90)
        return proc

    def logs(self) -> str:
        return "\n".join(p.read_text(errors="replace") for p in WORK.glob("faults-*.log"))


def statuses(ids: Iterable[int]) -> dict[int, str]:
    with session_scope() as s:
        rows = s.execute(select(InboxEvent.id, InboxEvent.status).where(InboxEvent.id.in_(list(ids)))).all()
    return dict(rows)  # type: ignore[arg-type]


def handler_runs(ids: Iterable[int]) -> dict[int, int]:
    """How many times the recording handler ran for each inbox id (across every worker process)."""
    lines = RECORD.read_text().splitlines() if RECORD.exists() else []
    runs: dict[int, int] = {}
    for line in lines:
        kind, _, rest = line.partition(" ")
        if kind == "handler":
            inbox_id = int(rest.split(" ", 1)[0])
            runs[inbox_id] = runs.get(inbox_id, 0) + 1
    return {i: runs.get(i, 0) for i in ids}


def recover(stack: Stack, ids: list[int], timeout: float = 90) -> None:
    """Run the redelivery sweep until every event is done, as the beat would each minute."""

    def finished() -> bool:
        if all(s == "done" for s in statuses(ids).values()) and len(statuses(ids)) == len(ids):
            return True
        try:
            stack.redeliver()
        except Exception:  # the broker may still be coming back: the next round retries
            return False
        return False

    wait_until(finished, timeout=timeout, interval=2.0)


def stack_env(redis_url: str, servers: dict[str, Any]) -> dict[str, str]:
    return dict(
        os.environ,
        REDIS_URL=redis_url,
        **engine_env({name: server.url for name, server in servers.items()}),
        SYNCENGINE_BREAKER_COOLDOWN=str(BREAKER_COOLDOWN),
        SYNCENGINE_SWEEP_EVERY="3600",
    )  # fmt: skip


@pytest.fixture(scope="package")
def faults_db(store: str) -> Iterator[str]:
    """A database for this package, migrated; this process and every process it starts use it meanwhile."""
    with own_database("syncengine_faults") as url:
        yield url


@contextlib.contextmanager
def own_database(prefix: str) -> Iterator[str]:
    """A fresh database on the session's Postgres, migrated, that this process (and every process it starts
    meanwhile) uses until the block ends; then the one used before, and the new one is dropped."""
    import psycopg2

    from syncengine import migrate
    from syncengine.db import reset_engines
    from syncengine.settings import get_settings

    name = f"{prefix}_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    saved = {k: os.environ[k] for k in ("DATABASE_URL", "SYNCENGINE_TEST_RECORD")}
    os.environ.update(DATABASE_URL=with_database(ADMIN_URL, name), SYNCENGINE_TEST_RECORD=str(RECORD))
    get_settings.cache_clear()
    reset_engines()
    try:
        migrate.upgrade()
        yield os.environ["DATABASE_URL"]
    finally:
        os.environ.update(saved)
        get_settings.cache_clear()
        reset_engines()
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="package")
def stack(faults_db: str) -> Iterator[Stack]:
    for old in WORK.glob("faults-*.log"):
        old.unlink()
    private = PrivateRedis()
    sims = _simulators()
    servers = {name: sim.serve() for name, sim in sims.items()}
    env = stack_env(private.url, servers)
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    subscribe(sims, receiver, SECRETS)
    web = Proc(gunicorn_cmd(port, workers=2), env, WORK / "faults-web.log")
    cmd = [*celery_worker_cmd(concurrency=WORKER_PROCESSES, queues="intake,sync,sweeps"), "-n", "main@%h"]
    worker = Proc(cmd, env, WORK / "faults-worker.log")
    built = Stack(sims, servers, receiver, worker, env, redis=private)
    try:
        wait_for_port(port)
        wait_until(lambda: "ready." in worker.output(), timeout=90)
        yield built
    finally:
        for proc in [web, worker, *built.extra]:
            proc.stop()
        for server in servers.values():
            server.stop()
        private.kill()


def unique() -> str:
    return f"{time.time_ns():x}"


def client_body(tag: str, updated_at: int = 1732000000) -> tuple[str, bytes]:
    """(email, body) of an Invoice Ninja client webhook: flow F1 pushes it to ERPNext, Mautic, Directus."""
    email = f"{tag}@example.test"
    body = dumps(
        {
            "id": f"c-{tag}",
            "name": f"Client {tag}",
            "updated_at": updated_at,
            "contacts": [{"id": f"ct-{tag}", "first_name": "Fault", "last_name": tag, "email": email}],
        }
    )
    return email, body


def post_client(stack: Stack, body: bytes, event: str = "create_client") -> requests.Response:
    return stack.post(f"/webhooks/invoiceninja/{event}", body, sign("invoiceninja", body))


def retire(ids: Iterable[int]) -> None:
    """Clean-up after a test that leaves events retrying on purpose (hostile bodies, planned failures):
    close them as failed so later tests' `settle()` is not held by their backoff."""
    from sqlalchemy import update

    with session_scope() as s:
        s.execute(update(InboxEvent).where(InboxEvent.id.in_(list(ids)), InboxEvent.status != "done")
                  .values(status="failed"))  # fmt: skip
