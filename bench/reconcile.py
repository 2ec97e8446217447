"""Sweep cost against size (issue 6): for 1,000 / 10,000 / 100,000 records in each simulator with 1%
changed, the requests one full sweep makes and its seconds. Cost must follow the changes, not the records.

    python bench/reconcile.py [--sizes 1000,10000,100000] [--changed 0.01]

Per size: fresh simulators (Invoice Ninja clients, ERPNext Customers, Mautic contacts, Directus contacts,
Revolut transactions) seeded in bulk with three-day-old stamps, every cursor set an hour back (as after the
previous sweep), 1% edited through the vendors' APIs, then one sweep of each of those (system, kind)s with
the production connectors into a scratch Postgres database; its events go to Redis db 14 (flushed), with no
worker. Loopback only; each size is one bounded run.

`seconds` is wall time, which includes the simulators answering in this process: they filter by scanning
every record (a real vendor filters on an index), so it grows with the records too. `sweep cpu` is the
sweeping thread's own CPU time (time.thread_time: the simulators' threads are not counted): the sweep's
cost proper, with the requests, what must stay proportional to the changes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from bench.scratch import drop_database, redis_url, scratch_database  # noqa: E402

os.environ["REDIS_URL"] = redis_url()
os.environ.setdefault("LOG_LEVEL", "WARNING")


def one_size(records: int, share: float) -> dict[str, float]:
    from bench.sweep_scale import change, seeded, vendors
    from tasks import reconcile

    changed = max(1, int(records * share))
    with vendors() as found:
        ids = {key: seeded(key[0], v.sim, records) for key, v in found.items()}
        for system, kind in found:
            reconcile.set_cursor(system, kind, datetime.now(UTC) - timedelta(hours=1))
        step = records // changed
        for key, vendor in found.items():
            for i in range(changed):
                change(key[0], vendor, ids[key][i * step], i)
        before = sum(len(v.sim.requests_log()) for v in found.values())
        started, cpu = time.perf_counter(), time.thread_time()
        results = [
            reconcile.sweep(system, kind, connector=v.connector) for (system, kind), v in found.items()
        ]
        seconds, cpu = time.perf_counter() - started, time.thread_time() - cpu
        requests_made = sum(len(v.sim.requests_log()) for v in found.values()) - before
    return {
        "records": records * len(found), "changed": changed * len(found), "requests": requests_made,
        "listed": sum(r.listed for r in results), "new": sum(r.new for r in results), "seconds": seconds,
        "cpu": cpu,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--changed", type=float, default=0.01)
    parser.add_argument("--short", action="store_true", help="CI: 300 records per system")
    args = parser.parse_args()
    if args.short:
        args.sizes = "300"
    admin, db_url = scratch_database()
    os.environ["DATABASE_URL"] = db_url
    import redis

    from syncengine import migrate

    migrate.upgrade()
    rows = []
    try:
        for size in (int(s) for s in args.sizes.split(",")):
            rows.append(one_size(size, args.changed))
    finally:
        redis.Redis.from_url(os.environ["REDIS_URL"]).flushdb()
        from syncengine.db import reset_engines

        reset_engines()
        drop_database(admin, db_url)
    print("one full sweep of 5 (system, kind)s: contacts of Invoice Ninja, ERPNext, Mautic, Directus;")
    print("Revolut transactions. records and changed are totals over the five.")
    head = (
        "records",
        "changed",
        "requests",
        "listed",
        "new",
        "seconds",
        "sweep cpu",
        "cpu ms/chg",
        "req/change",
    )
    print(" ".join(f"{h:>10}" for h in head))
    for r in rows:
        cells = (f"{r['records']:,}", f"{r['changed']:,}", r["requests"], r["listed"], r["new"],
                 f"{r['seconds']:.2f}", f"{r['cpu']:.2f}", f"{1000 * r['cpu'] / r['changed']:.2f}",
                 f"{r['requests'] / r['changed']:.3f}")  # fmt: skip
        print(" ".join(f"{c:>10}" for c in cells))


if __name__ == "__main__":
    main()
