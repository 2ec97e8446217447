# base-api: v1 ready
"""Shared machinery for vendor simulators: routing, auth hook, faults, request log, webhooks, serving.

A vendor is a small subclass: set ``vendor``, register handlers with ``@route``, override the hooks
(``authenticate``, ``error_response``, ``rate_limited_response``, ``not_found_response``, ``after_request``,
``seed``, ``on_reset``, ``sign``, ``webhook_body``, ``webhook_retry_delay``, ``webhook_targets_for``) and keep
its state in ``self.db`` (handlers already run under ``self.lock``).
Every non-``/_sim/`` request goes through: log -> latency -> outage -> 429 storm -> rate limit -> error rate
-> authenticate -> handler -> lose_response or after_request. Outages answer **503** in the vendor's error
shape (the connection stays up; ``lose_response`` is the fault that drops connections, after the effect).
Extra fault keys: ``seed`` (seeds the fault RNG), ``match_method``/``match_path`` (path prefix) to confine the
request faults to some requests; ``ignore_fields`` (a test switch, no vendor fault) drops those top-level keys
from a JSON write body before the vendor sees it, as a vendor that answers a write with the values it kept.
Control surface: ``/_sim/{seed,faults,log,reset,webhooks,clock,webhook-log,
flush}``.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.cookiejar import DefaultCookiePolicy
from typing import Any
from urllib.parse import urlsplit

import requests
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server
from werkzeug.wrappers import Request, Response

log = logging.getLogger(__name__)
Handler = Callable[..., Response]
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
FAULT_KEYS = frozenset(
    {
        "error_rate",
        "fixed_status",
        "latency_ms",
        "outage",
        "rate_limit_storm",
        "rate_limit",
        "drop_webhooks",
        "lose_response",
        "seed",
        "match_method",
        "match_path",
        "ignore_fields",
    }
)


class Clock:
    """Real time plus an offset, so tests can jump past token expiry or retry windows."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset
        self._lock = threading.Lock()

    def now(self) -> float:
        with self._lock:
            return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        with self._lock:
            self.offset += seconds
        return self.now()


def _without_fields(request: Request, environ: dict[str, Any], names: set[str]) -> Request:
    """The request with those top-level keys taken out of its JSON object body (other bodies as they are)."""
    body = request.get_json(silent=True, force=True)
    if not isinstance(body, dict):
        return request
    data = json.dumps({key: value for key, value in body.items() if key not in names}).encode()
    return Request({**environ, "wsgi.input": io.BytesIO(data), "CONTENT_LENGTH": str(len(data))})


class Abort(Exception):
    """Raised by handler helpers to answer early with a ready vendor-shaped response."""

    def __init__(self, response: Response) -> None:
        super().__init__(response.status)
        self.response = response


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Register a handler method; ``{name}`` matches one path segment, ``{name:path}`` the rest."""

    def mark(fn: Handler) -> Handler:
        routes = getattr(fn, "_sim_routes", [])
        routes.append((method.upper(), pattern))
        fn._sim_routes = routes  # type: ignore[attr-defined]
        return fn

    return mark


def _compile(pattern: str) -> re.Pattern[str]:
    out = []
    for part in re.split(r"(\{[^}]+\})", pattern):
        if part.startswith("{") and part.endswith("}"):
            name, _, kind = part[1:-1].partition(":")
            out.append(f"(?P<{name}>.+)" if kind == "path" else f"(?P<{name}>[^/]+)")
        else:
            out.append(re.escape(part))
    return re.compile("^" + "".join(out) + "$")


class Store(dict):
    """``collection name -> {id -> record}``; missing collections spring into existence."""

    def __init__(self) -> None:
        super().__init__()
        self._seq: dict[str, int] = {}

    def __missing__(self, key: str) -> dict[Any, dict]:
        self[key] = {}
        return self[key]

    def next_id(self, collection: str) -> int:
        self._seq[collection] = self._seq.get(collection, 0) + 1
        return self._seq[collection]


@dataclass
class Delivery:
    """One outbound webhook message to one target, possibly retried."""

    id: int
    event: str
    payload: Any
    target: dict[str, Any]
    attempt: int = 1
    not_before: float = 0.0  # time.monotonic() deadline
    meta: dict[str, Any] = field(default_factory=dict)


class _QuietHandler(WSGIRequestHandler):
    def log_request(self, *args: Any, **kwargs: Any) -> None:  # tests would drown in access logs
        pass


@dataclass
class RunningServer:
    """A simulator served on a loopback port in a daemon thread."""

    sim: Simulator
    server: BaseWSGIServer
    thread: threading.Thread

    @property
    def port(self) -> int:
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        return f"http://{self.server.host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)
        self.sim.stop_webhooks()

    def __enter__(self) -> RunningServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Simulator:
    """A WSGI app behaving like one vendor's API as documented, plus a ``/_sim/`` control surface."""

    vendor: str = "base"
    webhook_retries: int = 0  # extra attempts after the first
    webhook_retry_interval: float = 1.0  # seconds, multiplied by ``webhook_interval_scale``
    webhook_timeout: float = 5.0
    _routes: list[tuple[str, re.Pattern[str], str]] = []

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        found: list[tuple[str, re.Pattern[str], str]] = []
        seen: set[str] = set()
        for klass in cls.__mro__:
            for name, fn in vars(klass).items():
                if name in seen:
                    continue
                seen.add(name)
                for method, pattern in getattr(fn, "_sim_routes", []):
                    found.append((method, _compile(pattern), name))
        cls._routes = found

    def __init__(self, clock: Clock | None = None) -> None:
        self.clock = clock or Clock()
        self.lock = threading.RLock()
        self.webhook_interval_scale = 1.0
        self._wh_cond = threading.Condition(self.lock)
        self._wh_queue: list[Delivery] = []
        self._wh_inflight = 0
        self._wh_thread: threading.Thread | None = None
        self._wh_stop = False
        self._wh_seq = 0
        self._clear_state()

    def _clear_state(self) -> None:
        self.db = Store()
        self.faults: dict[str, Any] = {}
        self._rng = random.Random()
        self._window: tuple[float, int] = (0.0, 0)  # (window start, requests in it)
        self.log: list[dict[str, Any]] = []
        self.webhook_targets: list[dict[str, Any]] = []
        self.webhook_log: list[dict[str, Any]] = []
        self._wh_queue = []

    # ---- hooks for vendors -------------------------------------------------------------------------

    def authenticate(self, request: Request) -> Response | None:
        """Return the vendor's own auth error response, or None when the credentials are good."""
        return None

    def error_response(self, status: int, message: str) -> Response:
        """An error in the vendor's shape; vendors override."""
        return self.json({"error": message}, status=status)

    def rate_limited_response(self, retry_after: int) -> Response:
        """The vendor's 429 answer; the base adds ``Retry-After`` if the vendor did not."""
        return self.error_response(429, "Too Many Requests")

    def after_request(self, request: Request, response: Response) -> Response:
        """Last look at every API response (e.g. add rate-limit or request-id headers)."""
        return response

    def not_found_response(self, request: Request) -> Response:
        return self.error_response(404, f"No route for {request.method} {request.path}")

    def seed(self, data: Any) -> Any:
        """Default seeding: ``{collection: [records]}``; records without ``id`` get a sequential one."""
        with self.lock:
            for name, records in (data or {}).items():
                for rec in records:
                    rec.setdefault("id", self.db.next_id(name))
                    self.db[name][rec["id"]] = rec
            return {name: len(self.db[name]) for name in (data or {})}

    def sign(self, body: bytes, secret: str | None) -> dict[str, str]:
        """Headers that sign an outbound webhook body; unsigned by default."""
        return {}

    def webhook_body(self, event: str, payload: Any) -> bytes:
        return json.dumps({"event": event, "data": payload}).encode()

    def webhook_retry_delay(self, delivery: Delivery, status: int | None, error: str | None) -> float | None:
        """Seconds until the next attempt, or None to stop. Default: any failure, ``webhook_retries``x."""
        if status is not None and 200 <= status < 300:
            return None
        if delivery.attempt > self.webhook_retries:
            return None
        return self.webhook_retry_interval * self.webhook_interval_scale

    # ---- as a deployment wires it (simulators.wiring) --------------------------------------------------

    # The engine's settings for this simulator's default credentials (beside `<VENDOR>_URL`).
    engine_credentials: dict[str, str] = {}

    def provision(self) -> None:
        """What `syncengine setup` would create on a fresh vendor of this kind (nothing by default)."""

    def subscribe_engine(self, receiver: str, secret: str | None) -> None:
        """Point this simulator's webhooks at `receiver` as `webhooks install` subscribes them (none by
        default)."""

    def webhook_targets_for(self, event: str) -> list[dict[str, Any]]:
        """Targets interested in ``event``; vendors with a subscription API add their own."""
        return [t for t in self.webhook_targets if not t.get("events") or event in t["events"]]

    # ---- helpers for vendors ----------------------------------------------------------------------

    def json(self, data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
        return Response(json.dumps(data), status=status, headers=headers, mimetype="application/json")

    def empty(self, status: int = 204, headers: dict[str, str] | None = None) -> Response:
        return Response(b"", status=status, headers=headers)

    def now(self) -> float:
        return self.clock.now()

    def iso_now(self) -> str:
        """ISO 8601 UTC with milliseconds and ``Z``, as most vendors print it."""
        dt = datetime.fromtimestamp(self.clock.now(), tz=UTC)
        return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"

    def new_id(self, collection: str) -> int:
        with self.lock:
            return self.db.next_id(collection)

    @staticmethod
    def body(request: Request) -> Any:
        """The JSON body or None (vendors decide how to answer a missing/invalid one)."""
        return request.get_json(silent=True, force=True)

    # ---- WSGI entry -------------------------------------------------------------------------------

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterator[bytes]:
        request = Request(environ)
        if request.path.startswith("/_sim/") or request.path == "/_sim":
            response = self._control(request)
        else:
            response = self._serve_api(request, environ)
        return response(environ, start_response)

    def _serve_api(self, request: Request, environ: dict[str, Any]) -> Response:
        entry = self._log_request(request)
        faults = self.faults if self._fault_applies(request) else {}
        if faults.get("latency_ms"):
            time.sleep(float(faults["latency_ms"]) / 1000)
        response = self._fault_response(faults)
        if response is None:
            if faults.get("ignore_fields") and request.method in ("POST", "PUT", "PATCH"):
                request = _without_fields(request, environ, set(faults["ignore_fields"]))
            response = self.authenticate(request) or self._dispatch(request)
            lose = self._take_lose_response(faults)
            if lose is not None:
                entry.update(status=response.status_code, lost=True)
                return self._lose(environ, lose)
        response = self.after_request(request, response)
        entry["status"] = response.status_code
        return response

    def _dispatch(self, request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        allowed = False
        for method, regex, name in self._routes:
            m = regex.match(path)
            if not m:
                continue
            allowed = True
            if method != request.method and not (method == "GET" and request.method == "HEAD"):
                continue
            try:
                with self.lock:
                    return getattr(self, name)(request, **m.groupdict())
            except Abort as exc:
                return exc.response
            except Exception:  # a simulator bug still answers in the vendor's shape, and says so in the log
                log.exception("%s simulator failed on %s %s", self.vendor, request.method, request.path)
                return self.error_response(500, "Internal Server Error")
        if allowed:
            return self.error_response(405, f"Method {request.method} not allowed")
        return self.not_found_response(request)

    # ---- faults -----------------------------------------------------------------------------------

    def set_faults(self, **kw: Any) -> dict[str, Any]:
        """Merge fault settings (see module doc); unknown keys raise so typos do not pass silently."""
        unknown = set(kw) - FAULT_KEYS
        if unknown:
            raise ValueError(f"unknown fault keys: {sorted(unknown)}")
        with self.lock:
            if "seed" in kw:
                self._rng.seed(kw["seed"])
            for key in ("rate_limit_storm", "lose_response"):
                if key in kw and kw[key] is not None:
                    kw[key] = dict(kw[key])
                    kw[key].setdefault("count", 1)
            if "rate_limit" in kw:
                self._window = (0.0, 0)
            self.faults.update(kw)
            return dict(self.faults)

    def clear_faults(self) -> None:
        with self.lock:
            self.faults = {}
            self._window = (0.0, 0)

    def _fault_applies(self, request: Request) -> bool:
        f = self.faults
        if f.get("match_method") and request.method != str(f["match_method"]).upper():
            return False
        return not (f.get("match_path") and not request.path.startswith(f["match_path"]))

    def _fault_response(self, f: dict[str, Any]) -> Response | None:
        if not f:
            return None
        with self.lock:
            if f.get("outage"):
                return self.error_response(503, "Service Unavailable")
            storm = f.get("rate_limit_storm")
            if storm and storm.get("count", 0) > 0:
                storm["count"] -= 1
                return self._too_many(int(storm.get("retry_after", 1)))
            limited = self._rate_limit_check(f.get("rate_limit"))
            if limited is not None:
                return limited
            status = f.get("fixed_status")
            rate = f.get("error_rate")
            if rate is not None and self._rng.random() < float(rate):
                return self.error_response(int(status or 500), "Simulated server error")
            if status is not None and rate is None:
                return self.error_response(int(status), "Simulated error")
        return None

    def _rate_limit_check(self, cfg: dict[str, Any] | None) -> Response | None:
        if not cfg:
            return None
        limit, window = int(cfg.get("limit", 60)), float(cfg.get("window", 60))
        now = self.clock.now()
        start, used = self._window
        if now - start >= window:
            start, used = now, 0
        if used >= limit:
            self._window = (start, used)
            return self._too_many(max(1, math.ceil(start + window - now)))
        self._window = (start, used + 1)
        return None

    def rate_limit_state(self) -> tuple[int, int, float] | None:
        """``(limit, remaining, window reset unix time)`` when a ``rate_limit`` fault is set, else None."""
        with self.lock:
            cfg = self.faults.get("rate_limit")
            if not cfg:
                return None
            limit, window = int(cfg.get("limit", 60)), float(cfg.get("window", 60))
            start, used = self._window
            if self.clock.now() - start >= window:
                return limit, limit, self.clock.now() + window
            return limit, max(0, limit - used), start + window

    def _too_many(self, retry_after: int) -> Response:
        response = self.rate_limited_response(retry_after)
        if "Retry-After" not in response.headers:
            response.headers["Retry-After"] = str(retry_after)
        return response

    def _take_lose_response(self, f: dict[str, Any]) -> dict[str, Any] | None:
        with self.lock:
            lose = f.get("lose_response")
            if not lose or lose.get("count", 0) <= 0:
                return None
            lose["count"] -= 1
            return dict(lose)

    def _lose(self, environ: dict[str, Any], lose: dict[str, Any]) -> Response:
        """The effect is applied; now stall past the client's timeout, then drop the connection."""
        time.sleep(float(lose.get("delay", 0)))
        sock = environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            return Response(b"", status=200)  # the write fails; werkzeug treats it as a dropped connection
        return self.error_response(504, "Response lost")  # servers without socket access

    # ---- request log ------------------------------------------------------------------------------

    def _log_request(self, request: Request) -> dict[str, Any]:
        body = request.get_data(cache=True)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        entry = {
            "method": request.method,
            "path": request.path,
            "query": request.args.to_dict(flat=True),
            "query_string": request.query_string.decode("latin-1"),
            "headers": dict(request.headers),
            "json": parsed,
            "body": body.decode("utf-8", "replace") if parsed is None else None,
            "status": None,
            "time": self.clock.now(),
        }
        with self.lock:
            self.log.append(entry)
        return entry

    def requests_log(
        self, method: str | None = None, path: str | None = None, path_prefix: str | None = None
    ) -> list[dict[str, Any]]:
        """Received API requests (not ``/_sim/`` ones), oldest first; ``path`` matches exactly."""
        with self.lock:
            return [
                e
                for e in self.log
                if (method is None or e["method"] == method.upper())
                and (path is None or e["path"] == path)
                and (path_prefix is None or e["path"].startswith(path_prefix))
            ]

    def count(self, method: str, path_prefix: str = "/") -> int:
        return len(self.requests_log(method=method, path_prefix=path_prefix))

    def reset(self) -> None:
        """Forget data, faults, logs, webhook targets and queued deliveries; configuration stays."""
        with self.lock:
            self._clear_state()
            self.on_reset()

    def on_reset(self) -> None:
        """Hook to rebuild fixed state after ``reset()``; call it from your ``__init__`` too if needed."""

    # ---- control surface --------------------------------------------------------------------------

    def _control(self, request: Request) -> Response:
        action = request.path[len("/_sim/") :].strip("/")
        body = request.get_json(silent=True, force=True)
        try:
            if action == "seed" and request.method == "POST":
                return self.json({"seeded": self.seed(body or {})})
            if action == "faults":
                if request.method == "POST":
                    return self.json(self.set_faults(**(body or {})))
                if request.method == "DELETE":
                    self.clear_faults()
                    return self.json({})
                return self.json(self.faults)
            if action == "log" and request.method == "GET":
                a = request.args
                return self.json(self.requests_log(a.get("method"), a.get("path"), a.get("path_prefix")))
            if action == "reset" and request.method == "POST":
                self.reset()
                return self.json({"reset": True})
            if action == "webhooks":
                if request.method == "POST":
                    return self.json(self.add_webhook_target(**(body or {})))
                return self.json(self.webhook_targets)
            if action == "clock":
                if request.method == "POST" and body and "advance" in body:
                    self.clock.advance(float(body["advance"]))
                return self.json({"now": self.clock.now()})
            if action == "webhook-log" and request.method == "GET":
                with self.lock:
                    return self.json(list(self.webhook_log))
            if action == "flush" and request.method == "POST":
                return self.json({"flushed": self.flush_webhooks(float((body or {}).get("timeout", 5)))})
        except (TypeError, ValueError) as exc:
            return self.json({"error": str(exc)}, status=400)
        return self.json({"error": f"unknown control {request.method} /_sim/{action}"}, status=404)

    # ---- outbound webhooks ------------------------------------------------------------------------

    def add_webhook_target(
        self,
        url: str,
        secret: str | None = None,
        events: list[str] | None = None,
        headers: dict[str, str] | None = None,
        method: str = "POST",
        retry_scale: float | None = None,
    ) -> dict[str, Any]:
        """Configure a delivery target; only loopback URLs are accepted (simulators never call out)."""
        if urlsplit(url).hostname not in LOOPBACK_HOSTS:
            raise ValueError(f"webhook target must be a loopback URL, got {url!r}")
        target = {
            "url": url,
            "secret": secret,
            "events": list(events or []),
            "headers": dict(headers or {}),
            "method": method.upper(),
        }
        with self.lock:
            if retry_scale is not None:
                self.webhook_interval_scale = float(retry_scale)
            self.webhook_targets.append(target)
        return target

    def emit(self, event: str, payload: Any, delay: float = 0.0) -> int:
        """Queue ``event`` to every interested target (after ``delay`` seconds); returns how many."""
        snapshot = json.loads(json.dumps(payload))  # later mutations must not leak into the message
        with self.lock:
            targets = self.webhook_targets_for(event)
            for target in targets:
                if urlsplit(target["url"]).hostname not in LOOPBACK_HOSTS:
                    continue
                self._wh_seq += 1
                not_before = time.monotonic() + delay if delay else 0.0
                self._wh_queue.append(Delivery(self._wh_seq, event, snapshot, target, not_before=not_before))
            if targets:
                self._ensure_worker()
                self._wh_cond.notify_all()
            return len(targets)

    def flush_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until no delivery is queued, scheduled for retry or in flight; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._wh_cond:
            while self._wh_queue or self._wh_inflight:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._wh_cond.wait(min(remaining, 0.05))
        return True

    def stop_webhooks(self) -> None:
        with self._wh_cond:
            self._wh_stop = True
            self._wh_cond.notify_all()
        if self._wh_thread is not None:
            self._wh_thread.join(timeout=self.webhook_timeout + 1)
        self._wh_thread = None
        self._wh_stop = False

    def _ensure_worker(self) -> None:
        if self._wh_thread is None or not self._wh_thread.is_alive():
            name = f"{self.vendor}-webhooks"
            self._wh_thread = threading.Thread(target=self._wh_loop, name=name, daemon=True)
            self._wh_thread.start()

    def _wh_next(self) -> Delivery | None:
        with self._wh_cond:
            while not self._wh_stop:
                now = time.monotonic()
                ready = [d for d in self._wh_queue if d.not_before <= now]
                if ready:
                    item = min(ready, key=lambda d: (d.not_before, d.id))
                    self._wh_queue.remove(item)
                    self._wh_inflight += 1
                    return item
                wait = min((d.not_before for d in self._wh_queue), default=now + 0.5) - now
                self._wh_cond.wait(max(0.001, min(wait, 0.5)))
        return None

    def _wh_loop(self) -> None:
        # One session for the thread's deliveries, as a vendor's sender keeps its HTTP client: a new one
        # per webhook was a quarter of a simulator's CPU in a first sync (bench/backfill.py).
        with requests.Session() as session:
            session.cookies.set_policy(DefaultCookiePolicy(allowed_domains=[]))  # a sender keeps no cookies
            while (delivery := self._wh_next()) is not None:
                try:
                    self._deliver(delivery, session)
                finally:
                    with self._wh_cond:
                        self._wh_inflight -= 1
                        self._wh_cond.notify_all()

    def _deliver(self, d: Delivery, session: requests.Session) -> None:
        target = d.target
        body = self.webhook_body(d.event, d.payload)
        headers = {"Content-Type": "application/json", **target.get("headers", {})}
        headers.update(self.sign(body, target.get("secret")))
        record: dict[str, Any] = {
            "id": d.id,
            "event": d.event,
            "url": target["url"],
            "method": target.get("method", "POST"),
            "attempt": d.attempt,
            "headers": headers,
            "body": body.decode("utf-8", "replace"),
            "status": None,
            "error": None,
            "time": self.clock.now(),
        }
        with self.lock:
            drop = self._rng.random() < float(self.faults.get("drop_webhooks") or 0)
        status: int | None = None
        if drop:
            record["result"] = "dropped"
        else:
            try:
                resp = session.request(
                    record["method"], target["url"], data=body, headers=headers, timeout=self.webhook_timeout
                )
                status = record["status"] = resp.status_code
            except requests.RequestException as exc:
                record["error"] = f"{type(exc).__name__}: {exc}"
            ok = status is not None and 200 <= status < 300
            record["result"] = "delivered" if ok else "failed"
        delay = None if drop else self.webhook_retry_delay(d, status, record["error"])
        with self._wh_cond:
            if delay is not None:
                record["result"] = "retrying"
                d.attempt += 1
                d.not_before = time.monotonic() + delay
                self._wh_queue.append(d)
            self.webhook_log.append(record)

    # ---- serving ----------------------------------------------------------------------------------

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        """Serve on a (free, by default) loopback port in a daemon thread."""
        server = make_server(host, port, self, threaded=True, request_handler=_QuietHandler)
        thread = threading.Thread(
            target=server.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"sim-{self.vendor}",
            daemon=True,
        )  # short poll: quick stop()
        thread.start()
        return RunningServer(self, server, thread)
