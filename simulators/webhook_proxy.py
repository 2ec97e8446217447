"""A loopback proxy between the simulators' webhooks and the receiver that makes delivery as bad as it gets:
each delivery may be passed on, dropped, duplicated, delayed (later ones overtake it: reordered) or held
until a test releases it. Point the simulators at it (`wiring.subscribe(sims, proxy.url, ...)`); it forwards
the method, path, query, headers and body bytes unchanged, so every signature still verifies.

Faults come from a `policy` (a `Chaos` drawn from `random.Random(seed)`, or any function of the delivery), or
by hand: `hold_next(...)` holds the next delivery that matches, `release(...)` lets it go. A delivery passed
on answers the sender with the receiver's own answer (its retries still work); one dropped, held or delayed
answers 202 at once, as a network that lost or queued it after the sender was done. What the proxy forwards
later is retried on a connection error or a 5xx, as the sender would have, a few times.
"""

from __future__ import annotations

import heapq
import itertools
import random
import re
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import requests
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from simulators.base import _QuietHandler

PASS, DROP, DUPLICATE, DELAY, HOLD = "pass", "drop", "duplicate", "delay", "hold"
# Not forwarded: the connection's own headers, which the forwarding request sets for itself.
HOP_BY_HOP = frozenset({"host", "content-length", "connection", "transfer-encoding", "keep-alive"})
LATER_TRIES = 4  # a delayed, held or duplicated copy meeting a 5xx or no connection, as a sender retries
LATER_RETRY_SECONDS = 0.5


@dataclass
class Delivery:
    """One webhook request as the sender made it."""

    id: int
    method: str
    path: str  # with its query string
    headers: dict[str, str]
    body: bytes
    arrived: float  # time.monotonic()

    @property
    def sender(self) -> str:
        """The vendor, from the receiver's path (`/webhooks/<sender>[/<event>]`)."""
        parts = self.path.split("?")[0].strip("/").split("/")
        return parts[1] if len(parts) > 1 and parts[0] == "webhooks" else parts[0]

    def text(self) -> str:
        return self.body.decode("utf-8", "replace")


@dataclass(frozen=True)
class Action:
    kind: str = PASS
    delay: float = 0.0  # DELAY: seconds; DUPLICATE: seconds until the second copy


@dataclass
class Chaos:
    """A seeded policy: each delivery is dropped, duplicated, delayed by up to `max_delay` seconds (so later
    ones overtake it), held until `release()` (late: after everything else) or passed, with these
    probabilities, drawn in arrival order from `Random(seed)`."""

    seed: int | str | None = None
    drop: float = 0.0
    duplicate: float = 0.0
    delay: float = 0.0
    hold: float = 0.0
    max_delay: float = 4.0
    rng: random.Random = field(init=False)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def __call__(self, delivery: Delivery) -> Action:
        roll = self.rng.random()
        pause = self.rng.uniform(0.2, self.max_delay)  # drawn every time: one draw count per delivery
        if roll < self.drop:
            return Action(DROP)
        if roll < self.drop + self.duplicate:
            return Action(DUPLICATE, pause)
        if roll < self.drop + self.duplicate + self.delay:
            return Action(DELAY, pause)
        if roll < self.drop + self.duplicate + self.delay + self.hold:
            return Action(HOLD)
        return Action(PASS)


Policy = Callable[[Delivery], Action]
Match = Callable[[Delivery], bool]


def matching(sender: str | None = None, pattern: str | None = None) -> Match:
    """Deliveries from `sender` whose path or body matches the regular expression `pattern`."""
    found = re.compile(pattern) if pattern else None

    def match(delivery: Delivery) -> bool:
        if sender is not None and delivery.sender != sender:
            return False
        return found is None or bool(found.search(delivery.path) or found.search(delivery.text()))

    return match


@dataclass
class Hold:
    """A hand-made hold: waits for the next delivery that matches, keeps it until `release()`."""

    match: Match
    action: str = HOLD
    caught: list[Delivery] = field(default_factory=list)
    event: threading.Event = field(default_factory=threading.Event)

    def wait(self, timeout: float = 30.0) -> Delivery:
        if not self.event.wait(timeout):
            raise TimeoutError("no matching webhook delivery arrived at the proxy")
        return self.caught[0]


class WebhookProxy:
    """The WSGI app: `serve()` it, give its URL to the simulators as the receiver's."""

    def __init__(self, upstream: str, policy: Policy | None = None, timeout: float = 10.0) -> None:
        self.upstream = upstream.rstrip("/")
        self.policy = policy
        self.timeout = timeout
        self.log: list[dict[str, Any]] = []  # one entry per delivery: what was done with it, and when
        self._lock = threading.Condition()
        self._ids = itertools.count(1)
        self._hands: list[Hold] = []  # hand-made holds and drops waiting for their delivery, oldest first
        self._held: dict[int, Delivery] = {}  # held until released
        self._timers: list[tuple[float, int, Delivery]] = []  # (due, tie-break, delivery) heap
        self._busy = 0  # deliveries being forwarded now
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="proxy-forward")
        self._stop = False
        self._timer_thread = threading.Thread(target=self._run_timers, name="proxy-timers", daemon=True)
        self._timer_thread.start()
        self.session = requests.Session()

    def hold_next(self, match: Match | None = None) -> Hold:
        """Hold the next delivery that matches (any, without `match`) until `release(hold)`."""
        hold = Hold(match or (lambda d: True))
        with self._lock:
            self._hands.append(hold)
        return hold

    def drop_next(self, match: Match | None = None) -> Hold:
        """Lose the next delivery that matches."""
        hold = Hold(match or (lambda d: True), action=DROP)
        with self._lock:
            self._hands.append(hold)
        return hold

    def release(self, hold: Hold | Delivery | None = None) -> int:
        """Forward what a hold caught (a delivery, or everything held without an argument); returns how
        many. A hold that caught nothing yet is cancelled."""
        with self._lock:
            if isinstance(hold, Hold):
                if hold in self._hands:
                    self._hands.remove(hold)
                ids = [d.id for d in hold.caught]
            elif isinstance(hold, Delivery):
                ids = [hold.id]
            else:
                ids = list(self._held)
            released = [self._held.pop(i) for i in ids if i in self._held]
            self._busy += len(released)
        for delivery in released:
            self._note(delivery, "released")
            self._pool.submit(self._forward_later, delivery)
        return len(released)

    def held(self) -> list[Delivery]:
        with self._lock:
            return list(self._held.values())

    def idle(self) -> bool:
        """Nothing scheduled or being forwarded (held deliveries wait for a release, so they do not count)."""
        with self._lock:
            return not self._timers and not self._busy

    def flush(self, timeout: float = 30.0) -> bool:
        """Wait until idle; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._timers or self._busy:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._lock.wait(min(remaining, 0.1))
        return True

    def counts(self) -> dict[str, int]:
        """How many deliveries took each action (pass, drop, duplicate, delay, hold)."""
        with self._lock:
            out: dict[str, int] = {}
            for entry in self.log:
                out[entry["action"]] = out.get(entry["action"], 0) + 1
            return out

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        query = request.query_string.decode("latin-1")
        delivery = Delivery(
            next(self._ids), request.method, request.path + (f"?{query}" if query else ""),
            {k: v for k, v in request.headers.items() if k.lower() not in HOP_BY_HOP},
            request.get_data(cache=False), time.monotonic(),
        )  # fmt: skip
        return self._take(delivery)(environ, start_response)

    def _take(self, delivery: Delivery) -> Response:
        action = self._decide(delivery)
        with self._lock:
            self.log.append({"id": delivery.id, "sender": delivery.sender, "path": delivery.path,
                             "action": action.kind, "delay": action.delay, "at": time.time(),
                             "events": []})  # fmt: skip
            if action.kind == HOLD:
                self._held[delivery.id] = delivery
            elif action.kind in (DELAY, DUPLICATE):
                self._schedule(delivery, action.delay)
        if action.kind in (DROP, HOLD, DELAY):
            return Response(b'{"proxy": "%s"}' % action.kind.encode(), 202, mimetype="application/json")
        return self._forward_now(delivery)

    def _decide(self, delivery: Delivery) -> Action:
        with self._lock:
            for hand in self._hands:
                if hand.match(delivery):
                    self._hands.remove(hand)
                    hand.caught.append(delivery)
                    hand.event.set()
                    return Action(hand.action)
        return self.policy(delivery) if self.policy is not None else Action(PASS)

    def _schedule(self, delivery: Delivery, delay: float) -> None:
        heapq.heappush(self._timers, (time.monotonic() + delay, delivery.id, delivery))
        self._lock.notify_all()

    def _forward_now(self, delivery: Delivery) -> Response:
        with self._lock:
            self._busy += 1
        try:
            answer = self._send(delivery)
        except requests.RequestException as exc:
            self._note(delivery, f"error {type(exc).__name__}")
            return Response(b"proxy: receiver unreachable", 502)
        finally:
            self._done()
        self._note(delivery, answer.status_code)
        # requests has already decoded the body: its encoding header no longer applies
        skip = HOP_BY_HOP | {"content-encoding"}
        headers = {k: v for k, v in answer.headers.items() if k.lower() not in skip}
        return Response(answer.content, answer.status_code, headers=headers)

    def _forward_later(self, delivery: Delivery) -> None:
        try:
            for attempt in range(1, LATER_TRIES + 1):
                try:
                    status = self._send(delivery).status_code
                except requests.RequestException as exc:
                    status, result = None, f"error {type(exc).__name__}"
                else:
                    result = status
                self._note(delivery, result)
                if status is not None and status < 500:
                    return
                if attempt < LATER_TRIES:
                    time.sleep(LATER_RETRY_SECONDS * attempt)
        finally:
            self._done()

    def _send(self, delivery: Delivery) -> requests.Response:
        return self.session.request(
            delivery.method, self.upstream + delivery.path, data=delivery.body, headers=delivery.headers,
            timeout=self.timeout, allow_redirects=False,
        )  # fmt: skip

    def _done(self) -> None:
        with self._lock:
            self._busy -= 1
            self._lock.notify_all()

    def _note(self, delivery: Delivery, result: Any) -> None:
        with self._lock:
            for entry in reversed(self.log):
                if entry["id"] == delivery.id:
                    entry["events"].append((round(time.time(), 3), result))
                    break

    def _run_timers(self) -> None:
        with self._lock:
            while not self._stop:
                now = time.monotonic()
                if self._timers and self._timers[0][0] <= now:
                    _, _, delivery = heapq.heappop(self._timers)
                    self._busy += 1
                    self._pool.submit(self._forward_later, delivery)
                    continue
                wait = self._timers[0][0] - now if self._timers else 0.5
                self._lock.wait(max(0.005, min(wait, 0.5)))

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningProxy:
        server = make_server(host, port, self, threaded=True, request_handler=_QuietHandler)
        thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                  name="webhook-proxy", daemon=True)  # fmt: skip
        thread.start()
        return RunningProxy(self, server, thread)

    def close(self) -> None:
        with self._lock:
            self._stop = True
            self._lock.notify_all()
        self._pool.shutdown(wait=False, cancel_futures=True)


@dataclass
class RunningProxy:
    proxy: WebhookProxy
    server: Any
    thread: threading.Thread

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.server.server_port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.proxy.close()
