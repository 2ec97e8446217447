"""A small closed-loop HTTP load generator: N concurrent clients on loopback, pre-built requests, bounded
in time and count. Runs in its own processes so the server under test is measured, not our client."""

from __future__ import annotations

import multiprocessing as mp
import selectors
import socket
import statistics
import time
from dataclasses import dataclass


@dataclass
class Result:
    requests: int
    errors: int
    seconds: float
    latencies_ms: list[float]
    statuses: dict[int, int]

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    def percentile(self, p: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        ordered = sorted(self.latencies_ms)
        return ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))]

    def summary(self) -> str:
        statuses = dict(sorted(self.statuses.items()))
        return (
            f"{self.rate:8.0f} req/s  p50 {self.percentile(50):6.2f} ms  p99 {self.percentile(99):6.2f} ms"
            f"  ({self.requests} requests, {self.errors} errors, statuses {statuses})"
        )


class _Exchange:
    """One request on its own connection (gunicorn's sync workers close after each answer)."""

    __slots__ = ("got", "raw", "sent", "sock", "started")

    def __init__(self, host: str, port: int, raw: bytes) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setblocking(False)
        self.raw, self.sent, self.got = raw, 0, bytearray()
        self.started = time.perf_counter()
        self.sock.connect_ex((host, port))

    def status_if_done(self) -> int | None:
        """The status once the whole answer is in (headers, then Content-Length bytes), else None."""
        head_end = self.got.find(b"\r\n\r\n")
        if head_end < 0:
            return None
        head = bytes(self.got[:head_end]).lower()
        at = head.find(b"content-length:")
        length = int(head[at + 15 :].split(b"\r\n", 1)[0]) if at >= 0 else 0
        if len(self.got) - head_end - 4 < length:
            return None
        return int(head.split(None, 2)[1])


def _run_process(host, port, requests, concurrency, seconds, queue) -> None:  # type: ignore[no-untyped-def]
    """A plain epoll loop: asyncio's streams cost the client more CPU than the server under test spends,
    and on a small machine that CPU is taken from the server."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    selector = selectors.DefaultSelector()
    started = time.monotonic()
    deadline = started + seconds
    pending = iter(requests)

    def start_next() -> None:
        if time.monotonic() >= deadline:
            return
        raw = next(pending, None)
        if raw is not None:
            ex = _Exchange(host, port, raw)
            selector.register(ex.sock, selectors.EVENT_WRITE, ex)

    def finish(ex: _Exchange, status: int) -> None:
        selector.unregister(ex.sock)
        ex.sock.close()
        latencies.append((time.perf_counter() - ex.started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1
        start_next()

    for _ in range(concurrency):
        start_next()
    while selector.get_map():
        for key, mask in selector.select(timeout=1.0):
            ex = key.data
            try:
                if mask & selectors.EVENT_WRITE:
                    ex.sent += ex.sock.send(ex.raw[ex.sent :])
                    if ex.sent == len(ex.raw):
                        selector.modify(ex.sock, selectors.EVENT_READ, ex)
                    continue
                chunk = ex.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                finish(ex, 0)
                continue
            if not chunk:
                finish(ex, ex.status_if_done() or 0)
                continue
            ex.got += chunk
            status = ex.status_if_done()
            if status is not None:
                finish(ex, status)
    queue.put((latencies, statuses, time.monotonic() - started))


def run(host: str, port: int, requests: list[bytes], concurrency: int = 32, seconds: float = 10.0,
        processes: int = 2) -> Result:  # fmt: skip
    """Drive the server with `concurrency` clients over `processes` processes; each request is sent once."""
    ctx = mp.get_context("fork")
    queue: mp.Queue = ctx.Queue()
    share = len(requests) // processes
    procs = [
        ctx.Process(
            target=_run_process,
            args=(
                host,
                port,
                requests[i * share : (i + 1) * share],
                concurrency // processes,
                seconds,
                queue,
            ),
        )
        for i in range(processes)
    ]
    for p in procs:
        p.start()
    parts = [queue.get(timeout=seconds + 120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    latencies = [x for part in parts for x in part[0]]
    statuses: dict[int, int] = {}
    for part in parts:
        for status, count in part[1].items():
            statuses[status] = statuses.get(status, 0) + count
    elapsed = statistics.mean(part[2] for part in parts)
    ok = sum(c for s, c in statuses.items() if 200 <= s < 300)
    return Result(ok, len(latencies) - ok, elapsed, latencies, statuses)
