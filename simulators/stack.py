"""A whole deployment over the simulators in one call: the vendor simulators served on loopback, wired to a
receiver under gunicorn as `webhooks install` would (simulators.wiring), and Celery workers, on Postgres +
Redis or on the embedded default (one SQLite file, a SQLite broker in `home`). The benchmarks run it; the
stack is the production processes, started with the commands `syncengine serve` and `worker` exec."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from simulators import REGISTRY
from simulators.wiring import engine_env, simulator_env, subscribe

ROOT = Path(__file__).resolve().parents[1]
CONTACT_SYSTEMS = ("invoiceninja", "erpnext", "mautic", "directus")
# The custom field `setup` gives ERPNext (our marker on Customers and Sales Invoices).
ERPNEXT_CUSTOM_FIELDS = {"Customer": ["custom_syncengine_id"], "Sales Invoice": ["custom_syncengine_id"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.1) -> Any:
    """Poll until `predicate` is truthy; past `timeout`, end the run with one line naming `what`."""
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        if time.monotonic() > deadline:
            raise SystemExit(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)
    return value


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    def listening() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(listening, timeout, f"port {port} to listen")


def simulators(vendors: tuple[str, ...] = CONTACT_SYSTEMS) -> dict[str, Any]:
    """Fresh simulators, ERPNext with the custom fields `setup` adds."""
    options = {"erpnext": {"custom_fields": ERPNEXT_CUSTOM_FIELDS}}
    return {name: REGISTRY[name](**options.get(name, {})) for name in vendors}


@dataclass
class Stack:
    sims: dict[str, Any]
    servers: dict[str, Any]
    env: dict[str, str]
    receiver: str
    secrets: dict[str, str]  # sender -> the webhook secret the receiver expects
    procs: list[subprocess.Popen] = field(default_factory=list)  # the receiver, then the workers
    log: Path | None = None  # where the engine's output goes (Layout.log)

    @property
    def web(self) -> subprocess.Popen:
        return self.procs[0]

    @property
    def workers(self) -> list[subprocess.Popen]:
        return self.procs[1:]

    def output(self) -> str:
        """The receiver's and the workers' output so far; empty when it is discarded."""
        return self.log.read_text(errors="replace") if self.log and self.log.exists() else ""

    def stop(self) -> None:
        """Everything started here, engine first (a warm shutdown may wait on a task: then it is killed)."""
        for proc in self.procs:
            proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        for server in self.servers.values():
            server.stop()


@dataclass
class Layout:
    """How many of each process, as `syncengine serve` and `syncengine worker` would run them."""

    web_workers: int = 2
    workers: int = 1
    concurrency: int | None = None  # each worker's pool processes; None: `syncengine worker`'s default
    pool: str = "prefork"
    queues: str = "intake,sync"
    loglevel: str = "WARNING"
    log: Path | None = None  # the engine's output; discarded when None
    extra_env: dict[str, str] = field(default_factory=dict)

    def processes(self, *, embedded: bool) -> int:
        """Each worker's pool processes: as set, else as `syncengine worker` chooses for the store."""
        from commands.processes import default_concurrency

        return self.concurrency or default_concurrency(embedded)


def engine_environment(
    urls: dict[str, str], webhook_secrets: dict[str, str], *, home: Path,
    database_url: str | None = None, redis_url: str | None = None,
) -> dict[str, str]:  # fmt: skip
    """The engine's settings for these simulators; without database and Redis URLs, the embedded default."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    env.update(SYNCENGINE_HOME=str(home), LOG_LEVEL="WARNING", PYTHONPATH=str(ROOT), **engine_env(urls),
               **{f"{name.upper()}_WEBHOOK_SECRET": s for name, s in webhook_secrets.items()})  # fmt: skip
    if database_url:
        env["DATABASE_URL"] = database_url
    if redis_url:
        env["REDIS_URL"] = redis_url
    if "openai" in urls:  # not a `<NAME>_URL` like the others
        env.update(simulator_env("openai", urls["openai"]))
    return env


def start(
    sims: dict[str, Any], *, home: Path, database_url: str | None = None, redis_url: str | None = None,
    layout: Layout | None = None, webhook_secrets: dict[str, str] | None = None,
    subscribed: Iterable[str] | None = None,
) -> Stack:  # fmt: skip
    """Serve `sims`, migrate the store, start the receiver and the workers, subscribe the simulators'
    webhooks to the receiver, and return once the receiver answers and every worker is ready.

    The tests give the secrets their signed samples use (random ones otherwise), and `subscribed` names the
    simulators whose webhooks go to the receiver when not all of them should."""
    layout = layout or Layout()
    home.mkdir(parents=True, exist_ok=True)
    servers = {name: sim.serve() for name, sim in sims.items()}
    webhook_secrets = webhook_secrets or {name: secrets.token_urlsafe(16) for name in (*sims, "revolut")}
    env = engine_environment({n: s.url for n, s in servers.items()}, webhook_secrets, home=home,
                             database_url=database_url, redis_url=redis_url)  # fmt: skip
    env.update(layout.extra_env)
    port = free_port()
    stack = Stack(sims, servers, env, f"http://127.0.0.1:{port}", webhook_secrets, log=layout.log)
    try:
        migrated = subprocess.run([sys.executable, "-m", "syncengine", "db", "upgrade"], env=env, cwd=ROOT,
                                  capture_output=True, text=True)  # fmt: skip
        if migrated.returncode:
            raise SystemExit(f"syncengine db upgrade failed: {migrated.stderr.strip().splitlines()[-1:]}")
        wired = sims if subscribed is None else {name: sims[name] for name in subscribed}
        subscribe(wired, stack.receiver, webhook_secrets)
        _launch(stack, port, layout)
    except BaseException:
        stack.stop()
        raise
    return stack


def web_command(port: int, workers: int = 2) -> list[str]:
    """The receiver under gunicorn on loopback, as `syncengine serve` runs it."""
    return [sys.executable, "-m", "gunicorn", "webhooks.app:create_app()", "--bind", f"127.0.0.1:{port}",
            "--workers", str(workers), "--log-level", "warning"]  # fmt: skip


def worker_command(
    queues: str, concurrency: int = 2, *, name: str | None = None, pool: str = "prefork",
    loglevel: str = "INFO",
) -> list[str]:  # fmt: skip
    """A Celery worker on `queues`, as `syncengine worker` runs it."""
    return [sys.executable, "-m", "celery", "-A", "syncengine.celery_app", "worker", "-Q", queues,
            *(("-n", name) if name else ()), "--pool", pool, "--concurrency", str(concurrency),
            "--loglevel", loglevel, "--without-gossip", "--without-mingle"]  # fmt: skip


def _launch(stack: Stack, port: int, layout: Layout) -> None:
    log = open(layout.log or os.devnull, "ab")  # noqa: SIM115 - the children hold it; closed with them
    web = web_command(port, layout.web_workers)
    stack.procs.append(subprocess.Popen(web, env=stack.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
    ready = []
    for i in range(layout.workers):
        marker = stack.env["SYNCENGINE_HOME"] + f"/worker{i}.ready"
        Path(marker).unlink(missing_ok=True)
        concurrency = layout.processes(embedded="REDIS_URL" not in stack.env)
        cmd = worker_command(layout.queues, concurrency, name=f"stack{i}@%h", pool=layout.pool,
                             loglevel=layout.loglevel)  # fmt: skip
        plugins = ",".join(filter(None, (stack.env.get("SYNCENGINE_PLUGINS"), "simulators.stack_ready")))
        env = dict(stack.env, SYNCENGINE_READY_FILE=marker, SYNCENGINE_PLUGINS=plugins)
        stack.procs.append(subprocess.Popen(cmd, env=env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT))
        ready.append(Path(marker))
    wait_until(lambda: _answers(stack.receiver + "/healthz"), 60, "the receiver to answer")
    wait_until(lambda: all(p.exists() for p in ready), 90, "the workers to be ready", interval=0.2)
    for proc in stack.procs:
        if proc.poll() is not None:
            raise SystemExit(f"{' '.join(proc.args[1:4])} exited with {proc.returncode} at start")


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=1).ok
    except requests.RequestException:
        return False
