"""Soak: mixed webhooks at a fixed rate near the measured capacity for a bounded time, one fault per minute.

New clients arrive as signed Invoice Ninja `create_client` webhooks (flow F1 to ERPNext, Mautic, Directus)
and as contacts created in Mautic (its webhook, to Invoice Ninja, ERPNext, Directus). The rate is 70% of the
capacity measured in a short calibration. Every minute one fault is injected, in turn: Redis restarted
(persisted, as a production Redis restarts), ERPNext answering 500 for 20 s, a 429 storm at Mautic, a
worker pool process SIGKILLed, Mautic dropping 10% of its webhooks for 30 s (a contact sweep follows, as the
beat would run it). The driver also plays the beat's inbox redelivery every 5 s.

Prints events accepted, processed, duplicated effects (must be 0), lost (must be 0), p99 webhook-to-effect
latency, and the worker's and receiver's RSS at start and end (growth target < 10%).

    python bench/soak.py [--minutes 10]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.flows import client_body  # noqa: E402
from bench.scratch import (  # noqa: E402
    drop_database,
    redis_server_binary,
    scratch_database,
)
from simulators import stack  # noqa: E402
from simulators.stack import free_port, wait_for_port  # noqa: E402

FAULTS = ("redis restart", "erpnext 500s", "mautic 429 storm", "worker SIGKILL", "mautic drops 10%")


class Redis:
    """A Redis of the soak's own, persisted (appendonly) so a restart keeps what a production one keeps."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = tempfile.mkdtemp(prefix="soak-redis-")
        self.proc: subprocess.Popen | None = None
        self.start()

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [redis_server_binary(), "--bind", "127.0.0.1", "--port", str(self.port), "--dir", self.dir,
             "--appendonly", "yes", "--appendfsync", "everysec", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        wait_for_port(self.port)

    def restart(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)  # a clean shutdown flushes the append-only file
        self.proc.wait(timeout=30)
        self.start()

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        shutil.rmtree(self.dir, ignore_errors=True)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and all its children (gunicorn's workers, Celery's pool)."""
    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0
    for p in procs:
        with contextlib.suppress(psutil.NoSuchProcess):
            total += p.memory_info().rss
    return total / 2**20


class Tracker:
    """When each change was sent, and when it was first seen in all three of its target systems."""

    def __init__(self, sims: dict) -> None:
        self.sims = sims
        self.sent: dict[str, tuple[str, float]] = {}  # email -> (origin, perf_counter)
        self.landed: dict[str, float] = {}
        self.lock = threading.Lock()
        self.stop = threading.Event()

    def add(self, email: str, origin: str, at: float | None = None) -> None:
        with self.lock:
            self.sent[email] = (origin, time.perf_counter() if at is None else at)

    def counts(self) -> dict[str, dict[str, int]]:
        """system -> email -> number of objects carrying it."""
        out: dict[str, dict[str, int]] = {}
        clients = list(self.sims["invoiceninja"].db["clients"].values())
        rows = {
            "invoiceninja": [(c.get("email") or "") for r in clients for c in r.get("contacts", [])],
            "erpnext": [d.get("email_id") or "" for d in list(self.sims["erpnext"].db["Customer"].values())],
            "directus": [i.get("email") or "" for i in list(self.sims["directus"].db["contacts"].values())],
            "mautic": [c.get("fields", {}).get("email") or ""
                       for c in list(self.sims["mautic"].db["leads"].values())],
        }  # fmt: skip
        for system, emails in rows.items():
            seen: dict[str, int] = {}
            for email in emails:
                seen[email.lower()] = seen.get(email.lower(), 0) + 1
            out[system] = seen
        return out

    def poll(self) -> None:
        targets = {"invoiceninja": ("erpnext", "mautic", "directus"),
                   "mautic": ("invoiceninja", "erpnext", "directus")}  # fmt: skip
        while not self.stop.is_set():
            counts = self.counts()
            now = time.perf_counter()
            with self.lock:
                pending = [(e, o) for e, (o, _) in self.sent.items() if e not in self.landed]
            for email, origin in pending:
                if all(counts[s].get(email) for s in targets[origin]):
                    self.landed[email] = now
            self.stop.wait(0.5)


def failed_for_good() -> dict[str, int]:
    """What the engine gave up on during the soak: a fault it should have ridden out (a Redis restart,
    500s, 429s) must leave nothing for a person to replay, even where the effect landed by another way."""
    from syncengine import inbox, outbox
    from syncengine.db import read_scope
    from syncengine.models import InboxStatus, TaskState

    with read_scope() as session:  # the counts /metrics reports
        return {"inbox": inbox.counts_by_status(session)[InboxStatus.FAILED],
                "outbox": outbox.counts_by_state(session)[TaskState.FAILED]}  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--short", action="store_true", help="CI: 15 s of soak, one fault (a Redis restart)")
    parser.add_argument("--log", type=Path, help="keep the engine's output (receiver, worker) in this file")
    args = parser.parse_args()
    settle = 300.0  # seconds after the soak for every change to land
    if args.short:
        args.minutes, settle = 0.25, 150.0  # CI gives the whole run 240 s: this says what is missing first
    sys.stdout.reconfigure(line_buffering=True)  # a run that stalls shows how far it got, even when killed

    admin, db_url = scratch_database()
    broker = Redis()
    redis_url = f"redis://127.0.0.1:{broker.port}/0"
    home = Path(tempfile.mkdtemp(prefix="bench-soak-"))
    sims = stack.simulators()
    try:  # the receiver and a worker of 2 processes, as bench/flows.py runs them
        deployment = stack.start(sims, home=home, database_url=db_url, redis_url=redis_url,
                                 layout=stack.Layout(extra_env={"SYNCENGINE_INBOX_LEASE": "20"},
                                                     loglevel="INFO" if args.log else "WARNING",
                                                     log=args.log))  # fmt: skip
    except BaseException:
        broker.stop()
        drop_database(admin, db_url)
        raise
    os.environ.update(deployment.env)  # the driver plays the beat (redelivery, sweeps) in this process
    servers, web, workers = deployment.servers, deployment.web, deployment.workers
    from tasks.dispatch import redeliver
    from tasks.reconcile import sweep

    url = f"{deployment.receiver}/webhooks/invoiceninja/create_client"
    headers = {"Content-Type": "application/json", "X-Webhook-Secret": deployment.secrets["invoiceninja"]}
    mautic_url = servers["mautic"].url + "/api/contacts/new"
    run = uuid.uuid4().hex[:6]
    tracker = Tracker(sims)
    statuses: dict[int, int] = {}
    accepted = 0
    counter = [0]
    refused = [0]  # Mautic API creates refused by its 429 storm (the driver is a Mautic user too)
    unexpected: list[str] = []

    def send_client() -> None:
        nonlocal accepted
        counter[0] += 1
        n = f"{run}-{counter[0]}"
        tracker.add(f"bench-{n}@example.test", "invoiceninja")
        try:
            status = requests.post(url, data=client_body(n), headers=headers, timeout=30).status_code
        except requests.RequestException:
            status = 0
        statuses[status] = statuses.get(status, 0) + 1
        accepted += status in (200, 202)

    def send_mautic() -> None:
        nonlocal accepted
        counter[0] += 1
        email = f"soak-{run}-{counter[0]}@example.test"
        body = {"email": email, "firstname": "Soak", "lastname": str(counter[0])}
        sent_at = time.perf_counter()
        auth = ("admin", "sim-mautic-pass")
        status = requests.post(mautic_url, json=body, auth=auth, timeout=30).status_code
        if status not in (200, 201, 429):  # only its storm may refuse; anything else is the bench's bug
            unexpected.append(f"POST {mautic_url} answered {status}")
        if status in (200, 201):  # a create Mautic refused (its 429 storm) is no change to sync
            tracker.add(email, "mautic", sent_at)
            accepted += 1
        else:
            refused[0] += 1

    beat_stop = threading.Event()

    def beat() -> None:
        while not beat_stop.wait(5):
            try:
                redeliver(grace_seconds=10)
            except Exception as exc:  # the broker may be restarting; the next pass retries
                print(f"  redelivery pass failed: {type(exc).__name__}")

    poller = threading.Thread(target=tracker.poll, daemon=True)
    beat_thread = threading.Thread(target=beat, daemon=True)
    try:
        time.sleep(3)
        poller.start()
        beat_thread.start()
        # Calibration: a burst, and how fast it lands.
        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda _: send_client(), range(30)))
        deadline = time.monotonic() + 120
        while len(tracker.landed) < 30 and time.monotonic() < deadline:
            time.sleep(0.2)
        capacity = len(tracker.landed) / (time.perf_counter() - started)
        rate = max(0.5, 0.7 * capacity)
        print(f"capacity {capacity:.1f} changes/s measured; soaking at {rate:.1f}/s for {args.minutes} min")
        rss_start = (sum(rss_mb(w.pid) for w in workers), rss_mb(web.pid))

        soak_started = time.monotonic()
        end = soak_started + args.minutes * 60
        fault_at = soak_started + 10
        minute = 0
        pending_fix: list[tuple[float, str]] = []
        next_send = time.monotonic()
        with ThreadPoolExecutor(max_workers=8) as pool:
            while time.monotonic() < end:  # bounded by --minutes
                now = time.monotonic()
                if now >= fault_at:
                    fault = FAULTS[minute % len(FAULTS)]
                    print(f"  minute {minute}: {fault}")
                    if fault == "redis restart":
                        broker.restart()
                    elif fault == "erpnext 500s":
                        sims["erpnext"].set_faults(fixed_status=500)
                        pending_fix.append((now + 20, "erpnext"))
                    elif fault == "mautic 429 storm":
                        sims["mautic"].set_faults(rate_limit_storm={"count": 30, "retry_after": 2})
                    elif fault == "worker SIGKILL":
                        children = psutil.Process(workers[0].pid).children(recursive=True)
                        if children:
                            os.kill(children[0].pid, signal.SIGKILL)
                    else:
                        sims["mautic"].set_faults(drop_webhooks=0.1)
                        pending_fix.append((now + 30, "mautic-drop"))
                    minute += 1
                    fault_at = soak_started + 10 + minute * 60
                for due, what in list(pending_fix):
                    if now >= due:
                        pending_fix.remove((due, what))
                        if what == "erpnext":
                            sims["erpnext"].clear_faults()
                        else:
                            sims["mautic"].clear_faults()
                            pool.submit(sweep, "mautic", "contact")  # the beat's contact sweep
                if now >= next_send:
                    pool.submit(send_mautic if counter[0] % 3 == 0 else send_client)
                    next_send += 1 / rate
                time.sleep(min(0.05, max(0.0, next_send - time.monotonic())))
        for _, what in pending_fix:
            sims["erpnext" if what == "erpnext" else "mautic"].clear_faults()
        for sim in sims.values():
            sim.clear_faults()
        sweep("mautic", "contact")
        waited = time.monotonic()
        deadline = waited + settle
        while len(tracker.landed) < len(tracker.sent) and time.monotonic() < deadline:
            time.sleep(1)
            if time.monotonic() - waited >= 30:  # a stall says so while it waits, not only at its end
                waited = time.monotonic()
                with tracker.lock:
                    left = [e for e in tracker.sent if e not in tracker.landed]
                print(f"  ... still waiting for {len(left)} changes, e.g. {left[0] if left else '-'}")
        time.sleep(5)  # anything still in flight (an echo, a retried push) would land now
        rss_end = (sum(rss_mb(w.pid) for w in workers), rss_mb(web.pid))
        failed = failed_for_good()
    finally:
        beat_stop.set()
        tracker.stop.set()
        deployment.stop()
        broker.stop()
        drop_database(admin, db_url)
        shutil.rmtree(home, ignore_errors=True)

    counts = tracker.counts()
    origins = {e: o for e, (o, _) in tracker.sent.items()}
    duplicated = sum(max(0, counts[s].get(e, 0) - 1) for e in origins for s in counts)
    lost = [e for e in origins if e not in tracker.landed]
    latencies = sorted(tracker.landed[e] - tracker.sent[e][1] for e in tracker.landed)
    p99 = latencies[min(len(latencies) - 1, int(0.99 * len(latencies)))] if latencies else float("nan")
    growth = [(end_ - start_) / start_ * 100 if start_ else float("nan")
              for start_, end_ in zip(rss_start, rss_end, strict=True)]  # fmt: skip
    print(
        f"events accepted      {accepted}   (receiver answers {dict(sorted(statuses.items()))}; "
        f"{refused[0]} Mautic creates refused by its 429 storm, not counted)"
    )
    print(f"events processed     {len(tracker.landed)}")
    print(f"duplicated effects   {duplicated}   (must be 0)")
    print(f"lost                 {len(lost)}   (must be 0){'  e.g. ' + lost[0] if lost else ''}")
    print(
        f"failed for good      {sum(failed.values())}   (must be 0: inbox events {failed['inbox']}, "
        f"outbox tasks {failed['outbox']}; each a push or an event left for a person to replay)"
    )
    print(f"p99 webhook->effect  {p99 * 1000:.0f} ms   (p50 {latencies[len(latencies) // 2] * 1000:.0f} ms)")
    print(f"workers RSS          {rss_start[0]:.0f} MB -> {rss_end[0]:.0f} MB ({growth[0]:+.1f}%)")
    print(
        f"receiver RSS         {rss_start[1]:.0f} MB -> {rss_end[1]:.0f} MB ({growth[1]:+.1f}%)"
        "  (target < 10%)"
    )
    refusals = {status: n for status, n in statuses.items() if status not in (200, 202)}
    if refusals:
        unexpected.append(f"POST {url} answered {refusals} (status: count)")
    for line in unexpected[:1]:
        print(f"bench: {line}", file=sys.stderr)
    return 1 if unexpected or duplicated or lost or sum(failed.values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
