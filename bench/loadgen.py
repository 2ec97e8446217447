"""A small closed-loop HTTP load generator: N concurrent clients on loopback, pre-built requests, bounded
in time and count. Runs in its own processes so the server under test is measured, not our client."""

from __future__ import annotations

import asyncio
import multiprocessing as mp
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


async def _one(host: str, port: int, raw: bytes) -> int:
    reader, writer = await asyncio.open_connection(host, port)
    try:
        writer.write(raw)
        await writer.drain()
        status_line = await reader.readline()
        length = 0
        while (line := await reader.readline()) not in (b"\r\n", b""):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)  # a sender is done once it has the whole answer
        return int(status_line.split()[1])
    finally:
        writer.close()


async def _client(host, port, requests, deadline, latencies, statuses, counter) -> None:  # type: ignore[no-untyped-def]
    while time.monotonic() < deadline and counter[0] < len(requests):
        raw = requests[counter[0]]
        counter[0] += 1
        started = time.perf_counter()
        try:
            status = await _one(host, port, raw)
        except OSError:
            status = 0
        latencies.append((time.perf_counter() - started) * 1000)
        statuses[status] = statuses.get(status, 0) + 1


def _run_process(host, port, requests, concurrency, seconds, queue) -> None:  # type: ignore[no-untyped-def]
    async def main() -> None:
        latencies: list[float] = []
        statuses: dict[int, int] = {}
        counter = [0]
        deadline = time.monotonic() + seconds
        started = time.monotonic()
        state = (latencies, statuses, counter)
        await asyncio.gather(*(_client(host, port, requests, deadline, *state) for _ in range(concurrency)))
        queue.put((latencies, statuses, time.monotonic() - started))

    asyncio.run(main())


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
