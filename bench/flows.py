"""Steady state of a sync flow: how long a new client takes to reach every system, at idle and in a burst,
beside the same change made by a plain script.

A new client in Invoice Ninja (a signed `create_client` webhook into the receiver) must reach ERPNext,
Mautic and Directus; their echo webhooks come back and must write nothing. On one worker of 2 processes (as
`syncengine worker` runs), on Postgres + Redis and on the embedded default, prints:

- at idle (one change at a time): webhook -> last effect p50 (targets: <= 1 s on Postgres + Redis, <= 2 s
  embedded), beside the naive sync's latency for the same change (three creates with plain `requests`);
- a burst of 150 new clients at once: events/s and p50/p99 (target p99 <= 10 s);
- vendor requests per event, and duplicates (exit 1 on any, or on a client that never lands).

    python bench/flows.py [--store postgres|embedded|both] [--events 150] [--idle 10] [--short]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import scratch  # noqa: E402
from bench.checked import ok  # noqa: E402
from bench.existing_data import holdings  # noqa: E402
from simulators import stack  # noqa: E402

TARGETS = ("erpnext", "mautic", "directus")
IDLE_P50 = {"postgres": 1.0, "embedded": 2.0}
BURST_P99 = 10.0


def client_body(n: str) -> bytes:
    email = f"bench-{n}@example.test"
    return json.dumps({
        "id": f"b{n}", "name": f"Bench {n}", "updated_at": int(time.time()),
        "contacts": [{"id": f"c{n}", "first_name": "Bench", "last_name": n, "email": email}],
    }).encode()  # fmt: skip


def emails_in(sims: dict[str, Any]) -> dict[str, Counter]:
    """target system -> how many contacts carry each email there."""
    found = holdings(sims)
    return {system: found[(system, "contact")] for system in TARGETS}


@dataclass
class Sender:
    deployment: stack.Stack
    sent: dict[str, float]
    done: dict[str, float]

    def send(self, n: str) -> None:
        url = f"{self.deployment.receiver}/webhooks/invoiceninja/create_client"
        headers = {"Content-Type": "application/json",
                   "X-Webhook-Secret": self.deployment.secrets["invoiceninja"]}  # fmt: skip
        self.sent[n] = time.perf_counter()
        ok(requests.post(url, data=client_body(n), headers=headers, timeout=10))

    def watch(self, ids: list[str], timeout: float) -> None:
        """Note when each client is first seen in all three target systems."""
        deadline = time.monotonic() + timeout
        while any(n not in self.done for n in ids) and time.monotonic() < deadline:
            found = emails_in(self.deployment.sims)
            now = time.perf_counter()
            for n in ids:
                email = f"bench-{n}@example.test"
                if n in self.sent and n not in self.done and all(found[s][email] for s in TARGETS):
                    self.done[n] = now
            time.sleep(0.02)


def idle(sender: Sender, count: int) -> list[float]:
    """One change at a time, each sent once the previous landed and a pause passed: seconds to last effect."""
    ids = [f"idle-{uuid.uuid4().hex[:8]}" for _ in range(count)]
    for n in ids:
        sender.send(n)
        sender.watch([n], timeout=60)
        time.sleep(1.0)  # quiet again (echoes handled)
    return sorted(sender.done[n] - sender.sent[n] for n in ids if n in sender.done)


def burst(sender: Sender, count: int) -> tuple[float, list[float], int]:
    """`count` changes at once: (events/s, sorted latencies, how many landed)."""
    run = uuid.uuid4().hex[:6]
    ids = [f"{run}-{i}" for i in range(count)]
    watcher = threading.Thread(target=sender.watch, args=(ids, 600))
    watcher.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(sender.send, ids))
    watcher.join()
    landed = [n for n in ids if n in sender.done]
    if not landed:
        return 0.0, [], 0
    elapsed = max(sender.done[n] for n in landed) - min(sender.sent[n] for n in ids)
    return len(landed) / elapsed, sorted(sender.done[n] - sender.sent[n] for n in landed), len(landed)


def naive_latency(servers: dict[str, Any], count: int) -> list[float]:
    """The same change made by a plain script: the client created in the three other systems, in turn."""
    from bench.naive_sync import SYSTEMS

    clients = {name: SYSTEMS[name][0](servers[name].url, SYSTEMS[name][1]) for name in TARGETS}
    seconds = []
    for i in range(count):
        row = {"name": f"Naive {i}", "email": f"naive-{uuid.uuid4().hex[:8]}@example.test"}
        started = time.perf_counter()
        for client in clients.values():
            client.create_contact(row)
        seconds.append(time.perf_counter() - started)
    return sorted(seconds)


def pct(values: list[float], p: float) -> float:
    return values[min(len(values) - 1, int(p / 100 * len(values)))] if values else float("nan")


def run(store: str, events: int, idle_count: int, layout: stack.Layout) -> bool:
    with scratch.deployment(stack.simulators(), store, layout, prefix="bench-flows-") as deployment:
        time.sleep(2)
        naive = naive_latency(deployment.servers, idle_count)
        sender = Sender(deployment, {}, {})
        before = sum(len(sim.requests_log()) for sim in deployment.sims.values())
        quiet = idle(sender, idle_count)
        rate, latencies, landed = burst(sender, events)
        time.sleep(3)  # the burst's echoes, which must write nothing
        requests_made = sum(len(sim.requests_log()) for sim in deployment.sims.values()) - before
        found = emails_in(deployment.sims)
    duplicates = sum(n - 1 for held in found.values() for n in held.values() if n > 1)
    processes = layout.processes(embedded=store == "embedded")
    print(f"\n{store}, {layout.workers} worker(s) of {processes} processes")
    print(f"  idle: webhook -> last effect p50 {statistics.median(quiet):.2f} s over {len(quiet)} changes "
          f"(target <= {IDLE_P50[store]:.0f} s); naive sync of the same change p50 "
          f"{statistics.median(naive) * 1000:.0f} ms")  # fmt: skip
    print(f"  burst of {events}: {landed} landed, {rate:.1f} events/s, p50 {pct(latencies, 50):.1f} s, "
          f"p99 {pct(latencies, 99):.1f} s (target <= {BURST_P99:.0f} s)")  # fmt: skip
    print(f"  vendor requests per event {requests_made / (len(quiet) + events):.2f} (naive: 3), "
          f"duplicates {duplicates}")  # fmt: skip
    return duplicates == 0 and landed == events and len(quiet) == idle_count


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--store", choices=("postgres", "embedded", "both"), default="both")
    parser.add_argument("--events", type=int, default=150, help="the burst's new clients")
    parser.add_argument("--idle", type=int, default=10, help="changes sent one at a time")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="the worker's pool processes (default: as `syncengine worker` chooses)")
    parser.add_argument("--log", type=Path, default=None, help="keep the engine's output in this file")
    parser.add_argument(
        "--short", action="store_true", help="CI: Postgres + Redis, 3 changes at idle, 10 at once"
    )
    args = parser.parse_args()
    if args.short:
        args.store, args.events, args.idle = "postgres", 10, 3
    layout = stack.Layout(concurrency=args.concurrency, log=args.log)
    stores = ["postgres", "embedded"] if args.store == "both" else [args.store]
    good = [run(store, args.events, args.idle, layout) for store in stores]
    return 0 if all(good) else 1


if __name__ == "__main__":
    raise SystemExit(main())
