"""Webhook intake throughput: the receiver beside a hello-world Flask app under the same gunicorn settings.

Both are driven in the same run, in alternating rounds, by 32 concurrent clients on loopback with valid,
signed, unique webhooks (a mix of the five senders), for a bounded time. Prints requests/s, p50 and p99
of each and the ratio. Target: intake >= 0.30x hello-world with p99 < 50 ms.

    python bench/intake.py [--seconds 8] [--rounds 2] [--workers 4] [--concurrency 32] [--threads 1] [--floor]

`--floor` times a third app in the same rounds: the same Flask under the same gunicorn doing only the two
durable writes (the INSERT and the LPUSH, bare drivers): the most any intake of this design can reach here.

Uses DATABASE_URL's server (a scratch database is created and dropped) and REDIS_URL's (bench.scratch), or
Postgres and Redis on 127.0.0.1 by default. No Celery worker runs: only intake is measured.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import redis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench import loadgen, scratch  # noqa: E402
from bench.checked import all_2xx  # noqa: E402
from simulators.samples import SECRETS, dumps, sample, sign  # noqa: E402
from simulators.stack import free_port, wait_for_port  # noqa: E402

HELLO_APP = """
from flask import Flask, jsonify
app = Flask("hello")

@app.post("/webhooks/<sender>")
@app.post("/webhooks/<sender>/<event>")
def hello(sender, event=None):
    return jsonify({"hello": "world"}), 202
"""

# The floor of what intake must do (`--floor`): the same Flask and gunicorn, the event's row INSERTed on a
# connection the process keeps and a message of a task's size LPUSHed, each with the bare driver; no
# signature, no parsing, no SQLAlchemy, no kombu. What is left between it and intake is our code and the
# libraries' layers; what is between it and hello-world, the two durable writes themselves.
FLOOR_APP = """
import hashlib, json, os, uuid
import psycopg2, redis
from flask import Flask, request
app = Flask("floor")
_broker = redis.Redis.from_url(os.environ["REDIS_URL"])
_db = []
INSERT = ("INSERT INTO inbox_events (source, event_id, event_type, payload, received_at, available_at, "
          "published_at, status, attempts) VALUES (%s, %s, 'floor', %s, now(), now(), now(), 'received', 0) "
          "ON CONFLICT (source, event_id) DO NOTHING RETURNING id")

@app.post("/webhooks/<sender>")
@app.post("/webhooks/<sender>/<event>")
def floor(sender, event=None):
    raw = request.get_data()
    if not _db:
        _db.append(psycopg2.connect(os.environ["DATABASE_URL"]))
        _db[0].autocommit = True
    with _db[0].cursor() as cur:
        cur.execute(INSERT, ("floor-" + sender, hashlib.sha256(raw).hexdigest(), raw.decode()))
        row_id = cur.fetchone()[0]
    task = {"id": str(uuid.uuid4()), "task": "tasks.dispatch.process", "args": [row_id], "pad": "x" * 900}
    _broker.lpush("floor", json.dumps(task))
    return json.dumps({"accepted": [row_id]}), 202, {"Content-Type": "application/json"}
"""


def gunicorn(app: str, port: int, workers: int, env: dict, cwd: Path, threads: int = 1) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "gunicorn", app, "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
           "--log-level", "warning", "--backlog", "2048"]  # fmt: skip
    if threads > 1:
        cmd += ["--worker-class", "gthread", "--threads", str(threads)]
    proc = subprocess.Popen(cmd, env=env, cwd=cwd)
    wait_for_port(port, timeout=30)
    time.sleep(1.0)  # let every worker boot
    return proc


def build_requests(port: int, count: int) -> list[bytes]:
    senders = list(SECRETS)
    run = uuid.uuid4().hex[:6]
    built = []
    for i in range(count):
        sender = senders[i % len(senders)]
        path, payload = sample(sender, f"bench-{run}-{i}")
        body = dumps(payload)
        head = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Length: {len(body)}"]
        head += [f"{k}: {v}" for k, v in sign(sender, body).items()]
        built.append(("\r\n".join(head) + "\r\n\r\n").encode() + body)
    return built


def measure(app: str, cwd: Path, env: dict, args: argparse.Namespace) -> loadgen.Result:
    port = free_port()
    server = gunicorn(app, port, args.workers, env, cwd, args.threads)
    try:
        requests = build_requests(port, int(args.seconds * 5000) + 200)
        warm = loadgen.run("127.0.0.1", port, requests[:200], concurrency=8, seconds=1)
        measured = loadgen.run("127.0.0.1", port, requests[200:], args.concurrency, args.seconds)
        for result in (warm, measured):
            all_2xx(result.statuses, f"POST /webhooks/<sender> on {app}")
        return measured
    finally:
        server.terminate()
        server.wait(timeout=30)


def merge(results: list[loadgen.Result]) -> loadgen.Result:
    statuses: dict[int, int] = {}
    for r in results:
        for status, count in r.statuses.items():
            statuses[status] = statuses.get(status, 0) + count
    return loadgen.Result(
        sum(r.requests for r in results), sum(r.errors for r in results), sum(r.seconds for r in results),
        [x for r in results for x in r.latencies_ms], statuses,
    )  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--threads", type=int, default=1, help="> 1: gthread workers with this many threads")
    parser.add_argument("--short", action="store_true", help="CI: one round of 1 s, 2 workers, the floor too")
    parser.add_argument("--floor", action="store_true",
                        help="also time the two durable writes alone (bare drivers, same Flask)")  # fmt: skip
    args = parser.parse_args()
    if args.short:  # the floor too, so that its app cannot rot either
        args.seconds, args.rounds, args.workers, args.floor = 1.0, 1, 2, True

    admin, db_url = scratch.scratch_database()
    redis_url = scratch.redis_url()
    env = dict(os.environ, DATABASE_URL=db_url, REDIS_URL=redis_url, LOG_LEVEL="WARNING",
               **{f"{k.upper()}_WEBHOOK_SECRET": v for k, v in SECRETS.items()})  # fmt: skip
    subprocess.run([sys.executable, "-m", "syncengine", "db", "upgrade"], env=env, cwd=ROOT, check=True,
                   capture_output=True)  # fmt: skip
    hello_dir = Path(tempfile.mkdtemp())
    (hello_dir / "hello_app.py").write_text(HELLO_APP)
    apps = {"hello-world": ("hello_app:app", hello_dir), "intake": ("webhooks.app:create_app()", ROOT)}
    if args.floor:
        (hello_dir / "floor_app.py").write_text(FLOOR_APP)
        apps["floor"] = ("floor_app:app", hello_dir)
    rounds: dict[str, list[loadgen.Result]] = {name: [] for name in apps}
    try:
        for _ in range(args.rounds):
            for name, (app, cwd) in apps.items():
                rounds[name].append(measure(app, cwd, env, args))
    finally:
        scratch.drop_database(admin, db_url)
        redis.Redis.from_url(redis_url).flushdb()

    kind = f"gthread workers ({args.threads} threads)" if args.threads > 1 else "sync workers"
    print(f"gunicorn {kind}: {args.workers}, clients: {args.concurrency}, "
          f"{args.rounds} rounds of {args.seconds:.0f} s each, {os.cpu_count()} cores")  # fmt: skip
    results = {name: merge(parts) for name, parts in rounds.items()}
    for name, result in results.items():
        print(f"{name:<12} {result.summary()}")
    ratio = results["intake"].rate / results["hello-world"].rate
    per_round = [i.rate / h.rate for h, i in zip(rounds["hello-world"], rounds["intake"], strict=True)]
    for n, (h, i) in enumerate(zip(rounds["hello-world"], rounds["intake"], strict=True), 1):
        floor = f", floor {rounds['floor'][n - 1].rate:4.0f} req/s" if args.floor else ""
        print(f"  round {n}: hello-world {h.rate:5.0f} req/s, intake {i.rate:4.0f} req/s (p99 "
              f"{i.percentile(99):.1f} ms){floor}")  # fmt: skip
    p99 = results["intake"].percentile(99)
    print(f"ratio intake/hello-world: {ratio:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in per_round)}; "
          f"target >= 0.30x); intake p99 {p99:.1f} ms (target < 50 ms)")  # fmt: skip
    if args.floor:
        floor, hello = results["floor"].rate, results["hello-world"].rate
        each = [f.rate / h.rate for h, f in zip(rounds["hello-world"], rounds["floor"], strict=True)]
        print(f"floor/hello-world: {floor / hello:.2f}x (rounds: {', '.join(f'{r:.2f}' for r in each)}); "
              f"intake is {results['intake'].rate / floor:.2f}x the two durable writes alone")  # fmt: skip


if __name__ == "__main__":
    main()
