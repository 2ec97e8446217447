"""How fast every system agrees again after a burst of changes whose webhooks misbehave.

A burst of random creates, edits and deletes of contacts in Invoice Ninja, ERPNext, Mautic and Directus (as
users make them, through each simulator's API; simulators.convergence), with 10 % of the webhooks dropped and
10 % delayed by up to 4 s so that later ones overtake them (simulators.webhook_proxy). Then: quiescence, and
a `syncengine sweep` whenever some person still differs, at most `--sweeps` times. Prints the time from the
end of the burst until every system agrees, the sweeps that took, the vendor reads (GET requests the
simulators answered) per change, and the people still divergent at the end: it exits 1 unless that is 0.

    python bench/convergence.py [--changes 1000] [--short]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.scratch import drop_database, redis_url, scratch_database  # noqa: E402
from simulators.convergence.batch import Batch, Faults  # noqa: E402
from simulators.convergence.scenario import plan  # noqa: E402
from simulators.convergence.stack import Stack  # noqa: E402

# A 1,000-change burst leaves a backlog of several thousand tasks for one worker of 2 processes to drain.
SETTLE_TIMEOUT = 1200.0
PEOPLE = 2  # per seed, each created once
STEPS = 8  # edits or deletes per seed after the creates; --short: 3 (a seed's steps take about 2 s each)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=1000)
    parser.add_argument("--short", action="store_true", help="50 changes: runs in well under a minute")
    parser.add_argument("--drop", type=float, default=0.10, help="share of webhooks lost")
    parser.add_argument("--reorder", type=float, default=0.10, help="share of webhooks delayed (reordered)")
    parser.add_argument("--sweeps", type=int, default=3, help="at most this many sweeps until agreement")
    parser.add_argument(
        "--keep",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the receiver's and worker's logs in DIR (for a divergent end)",
    )
    args = parser.parse_args()
    changes, steps = (50, 3) if args.short else (args.changes, STEPS)
    seeds: list[int] = []
    while sum(len(plan(seed, PEOPLE, steps)) for seed in seeds) < changes:  # a plan ends once all are deleted
        seeds.append(len(seeds) + 1)
    faults = Faults(drop=args.drop, duplicate=0.0, delay=args.reorder, hold=0.0, first_kill=None)

    admin, db_url = scratch_database()
    bench_redis = redis_url()
    redis.Redis.from_url(bench_redis).flushdb()
    from syncengine import migrate

    migrate.upgrade(db_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    env = {**os.environ, "LOG_LEVEL": "WARNING", "SYNCENGINE_SECRET_KEY": os.environ.get(
        "SYNCENGINE_SECRET_KEY", "bench-fernet-key-not-real")}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-convergence-") as temporary:
        work = args.keep or Path(temporary)
        work.mkdir(parents=True, exist_ok=True)
        stack = Stack(db_url, bench_redis, work, base_env=env).start()
        try:
            return measure(Batch(stack, seeds, faults, people=PEOPLE, steps=steps), args.sweeps)
        finally:
            stack.stop()
            drop_database(admin, db_url)


def measure(batch: Batch, max_sweeps: int) -> int:
    stack, seeds = batch.stack, batch.seeds
    started = time.monotonic()
    batch.steps()
    burst_end = time.monotonic()
    batch.settle(SETTLE_TIMEOUT, when="after the burst")
    quiet = time.monotonic()
    reads_sync = stack.vendor_reads()
    sweeps = 0
    while (divergent := batch.divergent()) and sweeps < max_sweeps:
        batch.sweep()
        batch.settle(SETTLE_TIMEOUT, when="after a sweep")
        sweeps += 1
    agreed = time.monotonic()
    reads_sweeps = stack.vendor_reads() - reads_sync
    counts = stack.proxy.counts() if stack.proxy else {}
    n = batch.changes
    print(f"{n} changes in {len(seeds)} seeds over {burst_end - started:.1f} s; webhooks through the proxy: "
          f"{sum(counts.values())} ({counts.get('drop', 0)} dropped, {counts.get('delay', 0)} delayed past "
          f"later ones); worker concurrency {stack.concurrency}")  # fmt: skip
    print(f"quiescence       {quiet - burst_end:8.1f} s after the burst (the backlog drained)")
    if divergent:
        print(f"agreement        none     {agreed - burst_end:.1f} s after the burst and {sweeps} sweep(s)")
    else:
        print(f"agreement        {agreed - burst_end:8.1f} s after the burst ({sweeps} sweep(s))")
    print(f"vendor reads     {reads_sync / n:8.2f} per change while syncing (read-backs, lookups, "
          f"conditional pushes); {reads_sweeps / n:.2f} per change in the sweeps")  # fmt: skip
    print(f"divergent        {divergent:8d} people at the end (must be 0)")
    for trouble in batch.trouble:
        print(f"trouble: {trouble}")
    if divergent:
        for outcome in batch.outcomes().values():
            if outcome.problems:
                print(outcome.report())  # the seed's trace: its writes and each webhook's fate
    return 1 if divergent else 0


if __name__ == "__main__":
    sys.exit(main())
