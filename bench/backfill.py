"""The first sync of existing data, beside the sync a user would write instead (issue 19's yardstick).

Simulators seeded with data that overlaps (at full scale: 2,000 Invoice Ninja clients; 2,000 ERPNext
Customers, 1,000 of them with an Invoice Ninja client's email; 1,000 Mautic contacts; 500 Directus
contacts; 200 products in Invoice Ninja and 200 ERPNext Items, 100 of them the same SKUs; and 500 open
invoices in Invoice Ninja, which neither side syncs here: they make the data a business has, and a contact
sweep reads past them). Then, timed:

- syncengine: the receiver, one worker (a prefork pool of 2, as `syncengine worker` runs) and the
  operator's `syncengine sweep <system> contact|product --since <long ago>` for every system, until every
  system holds every contact and product exactly once;
- the naive sync (bench/naive_sync.py) on freshly seeded identical simulators: list everything, create
  what is missing, plain `requests`.

Prints both times, objects/s, the ratio (targets: >= 0.5x on Postgres + Redis, >= 0.25x embedded), the
vendor requests per object each made (counted at the simulators; target: no more than the naive sync's
plus one read-back) and the duplicates at the end. Exit 1 on any duplicate, a missing object or a request
answered outside 2xx.

    python bench/backfill.py [--store postgres|embedded|both] [--scale 1.0] [--short]

Postgres and Redis: DATABASE_URL's server (a scratch database, dropped after) and REDIS_URL's (bench.scratch),
127.0.0.1 by default. Embedded: a temporary SYNCENGINE_HOME.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scratch  # noqa: E402
from simulators import stack  # noqa: E402
from syncengine.counters import PREFIX, SEP  # noqa: E402
from syncengine.metrics import PUSHES  # noqa: E402
from syncengine.vendors.erpnext import ITEM_DEFAULTS  # noqa: E402

OLD = datetime.now(UTC) - timedelta(days=30)  # the existing data: a month old, before any cursor
SINCE = "2000-01-01T00:00:00+00:00"  # the first sync's `--since`: everything
KINDS = ("contact", "product")
PRODUCT_SYSTEMS = ("invoiceninja", "erpnext", "directus")


@dataclass(frozen=True)
class Scale:
    clients: int = 2000  # Invoice Ninja
    customers: int = 2000  # ERPNext; half share an email with Invoice Ninja
    leads: int = 1000  # Mautic
    directus: int = 500
    products: int = 200  # Invoice Ninja, and as many ERPNext Items (half the same SKUs)
    invoices: int = 500  # open, in Invoice Ninja

    def times(self, factor: float) -> Scale:
        return Scale(*(max(2, round(v * factor)) for v in vars(self).values()))

    @property
    def contacts(self) -> int:
        return self.clients + self.customers - self.customers // 2 + self.leads + self.directus

    @property
    def product_count(self) -> int:
        return self.products + self.products - self.products // 2


def seed(sims: dict[str, Any], scale: Scale) -> None:
    """The existing data, imported through each simulator's seed control (no webhooks, old stamps)."""
    erp_at, unix = OLD.strftime("%Y-%m-%d %H:%M:%S.%f"), int(OLD.timestamp())
    iso, iso_ms = OLD.strftime("%Y-%m-%d %H:%M:%S"), OLD.strftime("%Y-%m-%dT%H:%M:%S.000Z")
    shared = scale.customers // 2
    clients = sims["invoiceninja"].seed({
        "clients": [{"name": f"Client {i}", "created_at": unix, "updated_at": unix,
                     "contacts": [{"first_name": "In", "last_name": str(i), "email": f"in-{i}@example.test"}]}
                    for i in range(scale.clients)],
        "products": [{"product_key": f"SKU-{i}", "notes": f"Product {i}", "price": 10 + i, "created_at": unix,
                      "updated_at": unix} for i in range(scale.products)],
    })["clients"]  # fmt: skip
    sims["invoiceninja"].seed({"invoices": [
        {"client_id": clients[i % len(clients)], "mark_sent": True, "created_at": unix, "updated_at": unix,
         "line_items": [{"product_key": f"SKU-{i % scale.products}", "cost": 10 + i, "quantity": 1}]}
        for i in range(scale.invoices)
    ]})  # fmt: skip
    email = [
        f"in-{i}@example.test" if i < shared else f"erp-{i}@example.test" for i in range(scale.customers)
    ]
    sims["erpnext"].seed({
        "Customer": [{"customer_name": f"Customer {i}", "customer_type": "Company", "email_id": email[i],
                      "creation": erp_at, "modified": erp_at} for i in range(scale.customers)],
        "Item": [{**ITEM_DEFAULTS, "item_code": f"SKU-{i + scale.products // 2}", "item_name": f"Item {i}",
                  "standard_rate": 20 + i, "creation": erp_at, "modified": erp_at}
                 for i in range(scale.products)],
    })  # fmt: skip
    sims["mautic"].seed({"contacts": [
        {"email": f"mautic-{i}@example.test", "firstname": "Lead", "lastname": str(i), "date_added": iso,
         "date_modified": iso} for i in range(scale.leads)
    ]})  # fmt: skip
    sims["directus"].seed({"items": {"contacts": [
        {"email": f"dx-{i}@example.test", "name": f"Hub {i}", "date_created": iso_ms}
        for i in range(scale.directus)
    ]}})  # fmt: skip


# Where each (system, kind) keeps its objects in the simulator, and the key (email, SKU) it holds them by.
HELD = {
    ("invoiceninja", "contact"): ("clients", lambda c: ((c.get("contacts") or [{}])[0]).get("email")),
    ("erpnext", "contact"): ("Customer", lambda d: d.get("email_id")),
    ("mautic", "contact"): ("leads", lambda c: c.get("fields", {}).get("email")),
    ("directus", "contact"): ("contacts", lambda i: i.get("email")),
    ("invoiceninja", "product"): ("products", lambda p: p.get("product_key")),
    ("erpnext", "product"): ("Item", lambda d: d.get("item_code")),
    ("directus", "product"): ("products", lambda i: i.get("sku")),
}


def holdings(sims: dict[str, Any]) -> dict[tuple[str, str], Counter]:
    """(system, kind) -> how many objects each key has there: a count above 1 is a duplicate."""
    found = {}
    for (system, kind), (table, key) in HELD.items():
        rows = list(sims[system].db.get(table, {}).values())
        found[(system, kind)] = Counter(str(key(row) or "").lower() for row in rows)
    return found


@dataclass
class Outcome:
    seconds: float
    objects: int
    requests: int
    duplicates: int
    missing: int
    note: str = ""
    by_kind: Counter | None = None  # (system, method, path) -> requests

    @property
    def rate(self) -> float:
        return self.objects / self.seconds

    @property
    def per_object(self) -> float:
        return self.requests / self.objects


def _expected(scale: Scale) -> dict[str, int]:
    return {"contact": scale.contacts, "product": scale.product_count}


def check(sims: dict[str, Any], scale: Scale) -> tuple[int, int]:
    """(duplicates, missing) over every system and kind."""
    found = holdings(sims)
    duplicates = sum(n - 1 for held in found.values() for n in held.values() if n > 1)
    missing = sum(max(0, _expected(scale)[kind] - len(held)) for (_, kind), held in found.items())
    return duplicates, missing


def _complete(sims: dict[str, Any], scale: Scale) -> bool:
    found = holdings(sims)
    return all(len(held) >= _expected(scale)[kind] for (_, kind), held in found.items())


def _requests(sims: dict[str, Any]) -> int:
    return sum(len(sim.requests_log()) for sim in sims.values())


def _kinds_of_request(sims: dict[str, Any], skip: dict[str, int]) -> Counter:
    """(system, method, path without ids) -> count, past the first `skip[system]` requests."""
    found: Counter = Counter()
    for name, sim in sims.items():
        for entry in sim.requests_log()[skip.get(name, 0) :]:
            parts = [p for p in entry["path"].split("/") if p]
            path = "/".join(p if not any(c.isdigit() for c in p) else "<id>" for p in parts[:4])
            found[(name, entry["method"], path)] += 1
    return found


def naive(scale: Scale) -> Outcome:
    sims = stack.simulators()
    seed(sims, scale)
    servers = {name: sim.serve() for name, sim in sims.items()}
    try:
        started = time.perf_counter()
        urls = json.dumps({name: server.url for name, server in servers.items()})
        run = subprocess.run([sys.executable, str(ROOT / "bench" / "naive_sync.py"), urls], cwd=ROOT,
                             capture_output=True, text=True)  # fmt: skip
        if run.returncode:
            raise SystemExit(
                run.stderr.strip().splitlines()[-1] if run.stderr.strip() else "naive sync failed"
            )
        seconds = time.perf_counter() - started
        duplicates, missing = check(sims, scale)
        objects = scale.contacts + scale.product_count
        return Outcome(
            seconds, objects, _requests(sims), duplicates, missing, by_kind=_kinds_of_request(sims, {})
        )
    finally:
        for server in servers.values():
            server.stop()


# The operator's first sync, `syncengine sweep <system> <kind> --since <long ago>` for each, in one process.
SWEEP = """
import sys
from datetime import datetime
from syncengine.sweep_command import run
since = datetime.fromisoformat({since!r})
sys.exit(max(run(system, kind, since) for system, kind in {targets!r}))
"""


def engine(scale: Scale, store: str, timeout: float, layout: stack.Layout) -> Outcome:
    sims = stack.simulators()
    seed(sims, scale)
    home = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    database_url = redis_url = admin = None
    if store == "postgres":
        admin, database_url = scratch.scratch_database()
        redis_url = scratch.redis_url()
        redis.Redis.from_url(redis_url).flushdb()
    deployment = stack.start(sims, home=home, database_url=database_url, redis_url=redis_url, layout=layout)
    try:
        before = _requests(sims)
        skip = {name: len(sim.requests_log()) for name, sim in sims.items()}
        started = time.perf_counter()
        targets = [
            (s, k) for k in KINDS for s in stack.CONTACT_SYSTEMS if k == "contact" or s in PRODUCT_SYSTEMS
        ]
        swept = subprocess.run([sys.executable, "-c", SWEEP.format(since=SINCE, targets=targets)],
                               env=deployment.env, cwd=ROOT, capture_output=True, text=True)  # fmt: skip
        if swept.returncode:
            raise SystemExit(f"bench: the first sync's sweeps failed: {swept.stderr.strip()[-400:]}")
        stack.wait_until(lambda: _complete(sims, scale), timeout, "every system to hold every object",
                         interval=0.5)  # fmt: skip
        seconds = time.perf_counter() - started
        settled = _settle(deployment, timeout)
        time.sleep(1.5)  # the workers' push counts are flushed every second
        listed = sum(int(n.replace(",", "")) for n in re.findall(r": ([\d,]+) listed", swept.stdout))
        note = f"\n    engine: {listed} changes swept; {tasks_run(deployment)}"
        duplicates, missing = check(sims, scale)
        objects = scale.contacts + scale.product_count
        note = ("" if settled else "; the engine had not settled (echoes still queued) when counted") + note
        by_kind = _kinds_of_request(sims, skip)
        return Outcome(seconds, objects, _requests(sims) - before, duplicates, missing, note, by_kind)
    finally:
        deployment.stop()
        shutil.rmtree(home, ignore_errors=True)
        if admin and database_url:
            scratch.drop_database(admin, database_url)
        if redis_url:
            redis.Redis.from_url(redis_url).flushdb()


def _store(deployment: stack.Stack, name: str = "syncengine") -> Any:
    from sqlalchemy import create_engine

    url = deployment.env.get("DATABASE_URL", "").replace("postgresql://", "postgresql+psycopg2://", 1)
    return create_engine(url or f"sqlite:///{deployment.env['SYNCENGINE_HOME']}/{name}.sqlite3")


def tasks_run(deployment: stack.Stack) -> str:
    """What the engine did for the first sync: inbox events (each a dispatch task) and pushes by outcome."""
    from sqlalchemy import text

    db = _store(deployment)
    with db.connect() as conn:
        events = conn.execute(text("SELECT count(*) FROM inbox_events")).scalar_one()
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
    return f"{events} inbox events (dispatch tasks), {sum(by_outcome.values())} pushes {dict(by_outcome)}"


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
    print(f"\n{store}, {layout.workers} worker(s) of {layout.concurrency} processes: {ours.objects} objects "
          "(contacts and products) every system must hold once")  # fmt: skip
    for name, o in (("naive sync", plain), ("syncengine", ours)):
        print(f"  {name:<11} {o.seconds:8.1f} s {o.rate:8.1f} objects/s {o.per_object:6.2f} requests/object"
              f"  duplicates {o.duplicates}, missing {o.missing}{o.note}")  # fmt: skip
    if detail:
        for name, o in (("naive sync", plain), ("syncengine", ours)):
            top = ", ".join(
                f"{s} {m} {p} {n / o.objects:.2f}"
                for (s, m, p), n in (o.by_kind or Counter()).most_common(14)
            )
            print(f"    {name} requests per object: {top}")
    ratio = ours.rate / plain.rate
    print(f"  ratio {ratio:.3f}x (target >= {target}x); requests/object {ours.per_object:.2f} "
          f"against naive + 1 read-back = {plain.per_object + 1:.2f}")  # fmt: skip
    return ours.duplicates == 0 and ours.missing == 0 and plain.missing == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("postgres", "embedded", "both"), default="both")
    parser.add_argument(
        "--scale", type=float, default=1.0, help="share of the full data set (1.0: 2,000 clients…)"
    )
    parser.add_argument("--short", action="store_true", help="CI: 1%% of the data, Postgres + Redis only")
    parser.add_argument("--timeout", type=float, default=3600.0, help="seconds the engine may take")
    parser.add_argument("--workers", type=int, default=1, help="Celery workers")
    parser.add_argument("--concurrency", type=int, default=2, help="each worker's pool processes")
    parser.add_argument("--log", type=Path, default=None, help="keep the engine's output in this file")
    parser.add_argument("--requests", action="store_true", help="requests per object by endpoint, both sides")
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
        ours = engine(scale, store, args.timeout, layout)
        good = report(store, layout, ours, plain, args.requests) and good
    return 0 if good else 1


if __name__ == "__main__":
    raise SystemExit(main())
