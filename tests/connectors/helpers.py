"""What every connector test needs: a recorded `sleep`, an effect and a breaker of the test's own, threads
released together (storms, races) and the simulator's request counts."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

from syncengine.breaker import Breaker, BreakerPolicy, RedisBreakerStore
from syncengine.idempotency import Effect
from syncengine.shared_state import get_redis


class Sleeps(list):
    """The connector's `sleep`: records each wait; really waits only when asked to."""

    def __init__(self, real: bool = False) -> None:
        super().__init__()
        self.real = real

    def __call__(self, seconds: float) -> None:
        self.append(seconds)
        if self.real:
            time.sleep(seconds)


def effect(system: str, operation: str, request: Any = None) -> Effect:
    """An effect under a key no other test uses."""
    return Effect(f"{operation}:{system}:{uuid.uuid4().hex}", system, operation, request)


def breaker(system: str, policy: BreakerPolicy | None = None, name: str | None = None) -> Breaker:
    """A breaker on the shared Redis under a name of this test only (same name = shared state)."""
    name = name or f"{system}-test-{uuid.uuid4().hex}"
    return Breaker(name, RedisBreakerStore(get_redis()), policy or BreakerPolicy())


def run_together(calls: list[Callable[[], Any]]) -> list[Any]:
    """Run each call in its own thread, released at the same moment; results or raised errors."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = calls[i]()
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=10)
    return results


def run_concurrently(n: int, call: Callable[[], Any]) -> list[str]:
    """`call` in n threads released together; each outcome is "ok" or the exception's class name."""
    return [type(r).__name__ if isinstance(r, Exception) else "ok" for r in run_together([call] * n)]


def count(sim: Any, method: str, path_prefix: str = "/") -> int:
    """Requests the simulator received (ERPNext's own `count` is shadowed by its `/…/count` route)."""
    return len(sim.requests_log(method=method, path_prefix=path_prefix))


def requests_sent(monkeypatch: Any, conn: Any, name: Callable[[str], str] = lambda path: path) -> list:
    """The (method, `name(path)`) of every request `conn` sends from now on, on a simulator or a real server
    alike (the simulator's own log cannot count a peer's)."""
    sent: list[tuple[str, str]] = []
    request = conn.request

    def counted(method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        sent.append((method, name(path)))
        return request(method, path, *args, **kwargs)

    monkeypatch.setattr(conn, "request", counted)
    return sent
