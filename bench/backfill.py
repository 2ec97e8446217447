"""The first sync of existing data, beside the sync a user would write instead (issue 19's yardstick).

Simulators seeded with data that overlaps (bench/existing_data.py: at full scale 2,000 Invoice Ninja
clients, 2,000 ERPNext Customers of which 1,000 share an email with them, 1,000 Mautic and 500 Directus
contacts, products, and open invoices that neither side syncs here: they make the data a business has).
Then, timed:

- syncengine: the receiver, one worker (a prefork pool of 2, as `syncengine worker` runs) and the
  operator's `syncengine sweep <system> contact|product --since <long ago>` for every system, until every
  system holds every contact and product exactly once;
- the naive sync (bench/naive_sync.py) on freshly seeded identical simulators: list everything, create
  what is missing, plain `requests`.

Prints both times, objects/s, the ratio (targets: >= 0.5x on Postgres + Redis, >= 0.25x embedded), the
vendor requests per object each made (counted at the simulators; target: no more than the naive sync's
plus one read-back) and the duplicates at the end, with each part's CPU and the bound that CPU sets: the
highest ratio these cores allow were the worker and Postgres to cost nothing. `--floor` (and `--short`)
then times 1,000 no-op tasks on the same worker and prints the bound with the worker at that floor for
each task the design cannot spare. Exit 1 on any duplicate, a missing object or a request answered outside
2xx.

    python bench/backfill.py [--store postgres|embedded|both] [--scale 1.0] [--short] [--floor]

Postgres and Redis: DATABASE_URL's server (a scratch database, dropped after) and REDIS_URL's (bench.scratch),
127.0.0.1 by default. Embedded: a temporary SYNCENGINE_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import cpu, scratch  # noqa: E402
from bench.existing_data import Scale, check, missing, seed  # noqa: E402
from simulators import stack  # noqa: E402
from syncengine.counters import PREFIX, SEP  # noqa: E402
from syncengine.metrics import PUSHES  # noqa: E402

SINCE = "2000-01-01T00:00:00+00:00"  # the first sync's `--since`: everything
KINDS = ("contact", "product")
PRODUCT_SYSTEMS = ("invoiceninja", "erpnext", "directus")


@dataclass
class Outcome:
    seconds: float
    objects: int
    requests: int
    duplicates: int
    missing: int
    note: str = ""
    by_kind: Counter | None = None  # (system, method, path) -> requests
    cpu: cpu.Meter | None = None  # CPU seconds by part, over `seconds`
    least_tasks: int = 0  # the tasks the design cannot do without: each change's, each push that wrote
    task_cpu: float | None = None  # the worker's CPU seconds for one no-op task (`--floor`)

    @property
    def rate(self) -> float:
        return self.objects / self.seconds

    @property
    def per_object(self) -> float:
        return self.requests / self.objects


def _requests(sims: dict[str, Any]) -> int:
    return sum(len(sim.requests_log()) for sim in sims.values())


def _kinds_of_request(sims: dict[str, Any], skip: dict[str, int]) -> Counter:
    """(system, method, path without ids) -> count, past the first `skip[system]` requests."""
    found: Counter = Counter()
    for name, sim in sims.items():
        for entry in sim.requests_log()[skip.get(name, 0) :]:
            parts = [p for p in entry["path"].split("/") if p]
            path = "/".join(p if not any(c.isdigit() for c in p) else "<id>" for p in parts[:4])
            path += "/<name>" if len(parts) > 4 else ""  # one document, not the list: ERPNext's by name
            found[(name, entry["method"], path)] += 1
    return found


def naive(scale: Scale) -> Outcome:
    sims = stack.simulators()
    seed(sims, scale)
    servers = {name: sim.serve() for name, sim in sims.items()}
    try:
        meter = cpu.Meter({"simulators": cpu.own, "naive script": cpu.ended_children}).start()
        started = time.perf_counter()
        urls = json.dumps({name: server.url for name, server in servers.items()})
        run = subprocess.run([sys.executable, str(ROOT / "bench" / "naive_sync.py"), urls], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
        if run.returncode:
            raise SystemExit(
                run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "naive sync failed"
            )
        seconds = time.perf_counter() - started
        meter.stop()
        duplicates, missing = check(sims, scale)
        objects = scale.contacts + scale.product_count
        by_kind = _kinds_of_request(sims, {})
        return Outcome(seconds, objects, _requests(sims), duplicates, missing, by_kind=by_kind, cpu=meter)
    finally:
        for server in servers.values():
            server.stop()


# The operator's first sync, `syncengine sweep <system> <kind> --since <long ago>` for each, in one process.
SWEEP = """
import sys
from datetime import datetime
from commands.sweep_command import run
since = datetime.fromisoformat({since!r})
sys.exit(max(run(system, kind, since) for system, kind in {targets!r}))
"""


def engine(
    scale: Scale, store: str, timeout: float, layout: stack.Layout, floor: bool = False
) -> Outcome:
    sims = stack.simulators()
    seed(sims, scale)
    with scratch.deployment(sims, store, layout, prefix="bench-backfill-") as deployment:
        before = _requests(sims)
        skip = {name: len(sim.requests_log()) for name, sim in sims.items()}
        meter = cpu.Meter(_parts(deployment, store)).start()
        started = time.perf_counter()
        targets = [
            (s, k) for k in KINDS for s in stack.CONTACT_SYSTEMS if k == "contact" or s in PRODUCT_SYSTEMS
        ]
        swept = subprocess.run([sys.executable, "-c", SWEEP.format(since=SINCE, targets=targets)],
                               env=deployment.env, cwd=ROOT, capture_output=True, text=True)  # fmt: skip
        if swept.returncode:
            raise SystemExit(f"bench: the first sync's sweeps failed: {swept.stderr.strip()[-400:]}")
        stack.wait_until(_reporting(sims, scale, started), timeout, "every system to hold every object",
                         interval=0.5)  # fmt: skip
        seconds = time.perf_counter() - started
        meter.stop()
        settled = _settle(deployment, timeout)
        time.sleep(1.5)  # the workers' push counts are flushed every second
        listed = sum(int(n.replace(",", "")) for n in re.findall(r": ([\d,]+) listed", swept.stdout))
        ran, least = tasks_run(deployment)
        note = f"\n    engine: {listed} changes swept; {ran}"
        duplicates, missing = check(sims, scale)
        objects = scale.contacts + scale.product_count
        note = ("" if settled else "; the engine had not settled (echoes still queued) when counted") + note
        by_kind = _kinds_of_request(sims, skip)
        task_cpu = no_op_task_cpu(deployment, timeout) if floor else None
        return Outcome(seconds, objects, _requests(sims) - before, duplicates, missing, note, by_kind, meter,
                       least, task_cpu)  # fmt: skip


# `--floor`: tasks that do nothing, through the same worker and broker, after the first sync.
NO_OPS = 1000
NO_OP = """
import sys, time
from syncengine.broker import queued
from syncengine.celery_app import app
for _ in range({n}):
    app.send_task("celery.accumulate", args=[1], queue="sync")
deadline = time.monotonic() + {timeout}
while queued(app, ["sync"]):
    if time.monotonic() > deadline:
        sys.exit("no-op tasks still queued")
    time.sleep(0.05)
"""


def no_op_task_cpu(deployment: stack.Stack, timeout: float) -> float:
    """The worker's CPU seconds for one task that does nothing (Celery's `celery.accumulate`): taken from
    the broker, run under our task class, acknowledged, its events sent for Flower."""
    worker = lambda: sum(cpu.tree(w.pid) for w in deployment.workers)  # noqa: E731
    before = worker()
    sent = subprocess.run([sys.executable, "-c", NO_OP.format(n=NO_OPS, timeout=timeout)], env=deployment.env,
                          cwd=ROOT, capture_output=True, text=True)  # fmt: skip
    if sent.returncode:
        raise SystemExit(f"bench: the no-op tasks failed: {sent.stderr.strip()[-400:]}")
    time.sleep(0.5)  # the last ones taken, still running
    return (worker() - before) / NO_OPS


def _reporting(sims: dict[str, Any], scale: Scale, started: float, every: float = 30.0) -> Any:
    """The check that every system holds every object, saying every `every` seconds what is still missing
    where: a run that stalls (an object lost) says so while it waits, not in silence until its timeout."""
    said = started

    def check_done() -> bool:
        nonlocal said
        left = missing(sims, scale)
        if not left:
            return True
        if time.perf_counter() - said >= every:
            said = time.perf_counter()
            where = ", ".join(f"{n} in {system} {kind}s" for (system, kind), n in left.items())
            print(f"  ... {said - started:.0f} s: still missing {where}", flush=True)
        return False

    return check_done


def _parts(deployment: stack.Stack, store: str) -> dict[str, Any]:
    """The deployment's processes, each part's CPU read the same way (bench.cpu)."""
    parts = {
        "simulators": cpu.own,  # their threads, and the bench's own checks
        "receiver": lambda: cpu.tree(deployment.web.pid),
        "worker": lambda: sum(cpu.tree(w.pid) for w in deployment.workers),
        "sweep command": cpu.ended_children,
    }
    redis_port = f":{urlsplit(deployment.env.get('REDIS_URL', '')).port or 6379}"
    if store == "postgres":  # shared servers: keep the machine quiet, or other work counts too
        parts["postgres"] = lambda: cpu.servers("postgres")
        parts["redis"] = lambda: cpu.servers("redis-server", redis_port)
    return parts


def _store(deployment: stack.Stack, name: str = "syncengine") -> Any:
    from sqlalchemy import create_engine

    url = deployment.env.get("DATABASE_URL", "").replace("postgresql://", "postgresql+psycopg2://", 1)
    return create_engine(url or f"sqlite:///{deployment.env['SYNCENGINE_HOME']}/{name}.sqlite3")


def tasks_run(deployment: stack.Stack) -> tuple[str, int]:
    """What the engine did for the first sync: inbox events (each a dispatch task) and pushes by outcome;
    and the tasks among them no design of ours can spare: a change's, and a push's that wrote or compared
    (a push found taken by its batch's leader is not one)."""
    from sqlalchemy import text

    db = _store(deployment)
    with db.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM inbox_events")).scalar_one()
        # Our own writes coming back, known by the receiver and stored done: no task ran for them.
        echoed = conn.execute(
            text("SELECT count(*) FROM inbox_events WHERE status = 'done' AND attempts = 0")
        ).scalar_one()
    db.dispose()
    if deployment.env.get("REDIS_URL"):
        found = redis.Redis.from_url(deployment.env["REDIS_URL"]).hgetall(PREFIX + PUSHES)
        pushes = {k.decode(): int(v) for k, v in found.items()}
    else:
        state = _store(deployment, "state")
        with state.connect() as conn:
            rows = conn.execute(
                text("SELECT labels, value FROM metric_counters WHERE name = :n"), {"n": PUSHES}
            )
            pushes = {labels: value for labels, value in rows}
        state.dispose()
    by_outcome: Counter = Counter()
    for labels, n in pushes.items():
        by_outcome[labels.split(SEP)[-1]] += n
    line = (f"{events} inbox events ({events - echoed} dispatch tasks, {echoed} echoes known at intake), "
            f"{sum(by_outcome.values())} pushes {dict(by_outcome)}")  # fmt: skip
    return line, events - echoed + sum(n for outcome, n in by_outcome.items() if outcome != "skipped")


def _settle(deployment: stack.Stack, timeout: float) -> bool:
    """Wait for the echoes of our writes to be handled (the requests they cost count too)."""
    from sqlalchemy import text

    db = _store(deployment)
    busy = text("SELECT (SELECT count(*) FROM inbox_events WHERE status IN ('received', 'processing'))"
                " + (SELECT count(*) FROM outbox WHERE state != 'failed')")  # fmt: skip

    def quiet() -> bool:
        for sim in deployment.sims.values():
            sim.flush_webhooks(timeout=5)
        with db.connect() as conn:
            return conn.execute(busy).scalar_one() == 0

    try:
        stack.wait_until(quiet, timeout, "the engine to settle", interval=0.5)
        return bool(stack.wait_until(quiet, timeout, "the engine to settle", interval=0.5))
    except SystemExit:
        return False
    finally:
        db.dispose()


def report(store: str, layout: stack.Layout, ours: Outcome, plain: Outcome, detail: bool) -> bool:
    target = 0.5 if store == "postgres" else 0.25
    processes = layout.processes(embedded=store == "embedded")
    print(f"\n{store}, {layout.workers} worker(s) of {processes} processes: {ours.objects} objects "
          "(contacts and products) every system must hold once")  # fmt: skip
    for name, o in (("naive sync", plain), ("syncengine", ours)):
        print(f"  {name:<11} {o.seconds:8.1f} s {o.rate:8.1f} objects/s {o.per_object:6.2f} requests/object"
              f"  duplicates {o.duplicates}, missing {o.missing}{o.note}")  # fmt: skip
    for name, o in (("naive sync", plain), ("syncengine", ours)):
        if o.cpu is not None:
            print(f"    {name} CPU: {o.cpu.line(o.seconds, o.objects)}")
    if detail:
        for name, o in (("naive sync", plain), ("syncengine", ours)):
            top = ", ".join(
                f"{s} {m} {p} {n / o.objects:.2f}"
                for (s, m, p), n in (o.by_kind or Counter()).most_common(14)
                if n / o.objects >= 0.005  # a listing's few pages: no figure to print
            )
            print(f"    {name} requests per object: {top}")
    ratio = ours.rate / plain.rate
    print(f"  ratio {ratio:.3f}x (target >= {target}x); requests/object {ours.per_object:.2f} "
          f"against naive + 1 read-back = {plain.per_object + 1:.2f}")  # fmt: skip
    if ours.cpu is not None and cpu.available():
        print(f"  {bound(ours.cpu.spent, plain.seconds)}")
        if ours.task_cpu is not None:
            print(f"  {bound_at_floor(ours, plain.seconds)}")
    return ours.duplicates == 0 and ours.missing == 0 and plain.missing == 0


# The parts whose work is the engine's own choice: the bound below counts them as free.
ENGINE_SIDE = ("worker", "postgres")


def least_seconds(spent: dict[str, float], worker: float = 0.0) -> tuple[float, int, float]:
    """(the CPU-seconds of every part but the engine's side, the cores, the least wall time that CPU and
    `worker` CPU-seconds more take on these cores, all busy)."""
    rest = sum(cpu for name, cpu in spent.items() if name not in ENGINE_SIDE)
    cores = os.cpu_count() or 1
    return rest, cores, (rest + worker) / cores


def bound(spent: dict[str, float], naive_seconds: float) -> str:
    """The highest ratio this machine allows whatever the worker does: were the worker and the store's
    server to cost nothing, the rest (the simulators serving our requests and sending the webhooks our
    writes make, the receiver, Redis, the sweep command) still needs its CPU on these cores, all busy."""
    rest, cores, seconds = least_seconds(spent)
    return (f"bound: with the worker and Postgres at 0 CPU, the rest's {rest:.1f} CPU-s on "
            f"{cores} cores take >= {seconds:.1f} s: ratio <= {naive_seconds / seconds:.2f}x")  # fmt: skip


def bound_at_floor(ours: Outcome, naive_seconds: float) -> str:
    """As `bound`, with the worker at the least this design asks of it: a no-op task's CPU for each task no
    design of ours can spare (a change's, a push's that wrote), and Postgres still free."""
    assert ours.cpu is not None and ours.task_cpu is not None
    worker = ours.task_cpu * ours.least_tasks
    _, _, seconds = least_seconds(ours.cpu.spent, worker)
    return (f"floor: a no-op task costs the worker {1000 * ours.task_cpu:.1f} ms; "
            f"{ours.least_tasks / ours.objects:.1f} tasks an object at the least (a change's, a push's "
            f"that wrote): {worker:.1f} CPU-s more, >= {seconds:.1f} s: ratio <= "
            f"{naive_seconds / seconds:.2f}x")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("postgres", "embedded", "both"), default="both")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="share of the full data set (1.0: 2,000 clients…)"
    )
    parser.add_argument("--short", action="store_true", help="CI: 1%% of the data, Postgres + Redis only")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the engine may take")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="each worker's pool processes (default: as `syncengine worker` chooses)")
    parser.add_argument("--log", type=Path, default=None, help="keep the engine's output in this file")
    parser.add_argument("--requests", action="store_true", help="requests per object by endpoint, both sides")
    parser.add_argument("--floor", action="store_true", help="then time no-op tasks on the same worker")
    args = parser.parse_args()
    layout = stack.Layout(workers=args.workers, concurrency=args.concurrency, log=args.log)
    scale = Scale().times(0.01 if args.short else args.scale)
    stores = (
        ["postgres"] if args.short else ["postgres", "embedded"] if args.store == "both" else [args.store]
    )
    print(
        f"{os.cpu_count()} cores shared with other work: compare ratios measured in the same run, not times"
    )
    good = True
    for store in stores:
        plain = naive(scale)
        ours = engine(scale, store, args.timeout, layout, args.floor or args.short)
        good = report(store, layout, ours, plain, args.requests) and good
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())
