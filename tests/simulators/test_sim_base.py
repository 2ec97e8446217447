"""The shared simulator machinery: routing, control surface, faults, request log, webhooks, serving."""

from __future__ import annotations

import time

import pytest
import requests
from werkzeug.wrappers import Request, Response

import simulators
from simulators.base import Clock, Delivery, Simulator, route


class Toy(Simulator):
    """A two-route vendor with header auth, enough to exercise the base."""

    vendor = "toy"
    webhook_retries = 2
    webhook_retry_interval = 10.0

    def authenticate(self, request: Request) -> Response | None:
        return None if request.headers.get("X-Key") == "k" else self.error_response(401, "bad key")

    def sign(self, body: bytes, secret: str | None) -> dict[str, str]:
        return {"X-Sig": f"{secret}:{len(body)}"}

    @route("GET", "/things/{thing_id}")
    def get_thing(self, request: Request, thing_id: str) -> Response:
        return self.json({"id": thing_id})

    @route("POST", "/things")
    def create_thing(self, request: Request) -> Response:
        thing = {"id": self.new_id("things"), **(self.body(request) or {})}
        self.db["things"][thing["id"]] = thing
        self.emit("thing.created", thing)
        return self.json(thing, status=201)


K = {"X-Key": "k"}


@pytest.fixture()
def toy(serve):
    sim = Toy()
    return sim, serve(sim).url


def test_routing_auth_and_errors(toy):
    _sim, url = toy
    assert requests.get(f"{url}/things/7", headers=K, timeout=5).json() == {"id": "7"}
    assert requests.get(f"{url}/things/7", timeout=5).status_code == 401
    assert requests.delete(f"{url}/things/7", headers=K, timeout=5).status_code == 405
    assert requests.get(f"{url}/nothing", headers=K, timeout=5).status_code == 404
    assert requests.get(f"{url}/_sim/log", timeout=5).status_code == 200  # control surface needs no auth


def test_request_log_filters_and_count(toy):
    sim, url = toy
    requests.post(f"{url}/things?x=1", json={"name": "a"}, headers=K, timeout=5)
    requests.get(f"{url}/things/1", headers=K, timeout=5)
    log = requests.get(f"{url}/_sim/log", params={"method": "POST", "path": "/things"}, timeout=5).json()
    assert len(log) == 1
    entry = log[0]
    assert entry["json"] == {"name": "a"} and entry["query"] == {"x": "1"} and entry["status"] == 201
    assert entry["headers"]["X-Key"] == "k" and entry["time"] > 0
    assert sim.count("GET", "/things") == 1 and sim.count("POST") == 1
    assert len(sim.requests_log(path_prefix="/things")) == 2


def test_reset_clears_data_faults_log_and_targets(toy, hook_receiver):
    sim, url = toy
    requests.post(f"{url}/things", json={}, headers=K, timeout=5)
    sim.set_faults(outage=True)
    sim.add_webhook_target(hook_receiver.url)
    assert requests.post(f"{url}/_sim/reset", timeout=5).json() == {"reset": True}
    assert sim.db["things"] == {} and sim.faults == {} and sim.webhook_targets == [] and sim.log == []


def test_rate_limit_storm_answers_429_with_retry_after(toy):
    _sim, url = toy
    requests.post(f"{url}/_sim/faults", json={"rate_limit_storm": {"count": 2, "retry_after": 7}}, timeout=5)
    for _ in range(2):
        r = requests.get(f"{url}/things/1", headers=K, timeout=5)
        assert r.status_code == 429 and r.headers["Retry-After"] == "7"
    assert requests.get(f"{url}/things/1", headers=K, timeout=5).status_code == 200


def test_rate_limit_window_follows_the_clock(toy):
    sim, url = toy
    sim.set_faults(rate_limit={"limit": 3, "window": 60})
    codes = [requests.get(f"{url}/things/1", headers=K, timeout=5).status_code for _ in range(4)]
    assert codes == [200, 200, 200, 429]
    r = requests.get(f"{url}/things/1", headers=K, timeout=5)
    assert 1 <= int(r.headers["Retry-After"]) <= 60
    requests.post(f"{url}/_sim/clock", json={"advance": 61}, timeout=5)
    assert requests.get(f"{url}/things/1", headers=K, timeout=5).status_code == 200


def test_error_rate_is_seedable_and_fixed_status_applies(toy):
    sim, url = toy
    sim.set_faults(error_rate=0.5, seed=42)
    codes = [requests.get(f"{url}/things/1", headers=K, timeout=5).status_code for _ in range(40)]
    assert 5 < codes.count(500) < 35 and set(codes) == {200, 500}
    sim.clear_faults()
    sim.set_faults(fixed_status=502, match_path="/things/2")
    assert requests.get(f"{url}/things/1", headers=K, timeout=5).status_code == 200
    assert requests.get(f"{url}/things/2", headers=K, timeout=5).status_code == 502
    requests.delete(f"{url}/_sim/faults", timeout=5)
    assert requests.get(f"{url}/things/2", headers=K, timeout=5).status_code == 200


def test_outage_answers_503_and_latency_delays(toy):
    sim, url = toy
    sim.set_faults(outage=True)
    assert requests.get(f"{url}/things/1", headers=K, timeout=5).status_code == 503
    sim.clear_faults()
    sim.set_faults(latency_ms=150)
    started = time.monotonic()
    requests.get(f"{url}/things/1", headers=K, timeout=5)
    assert time.monotonic() - started >= 0.15


def test_unknown_fault_key_is_rejected(toy):
    _sim, url = toy
    assert requests.post(f"{url}/_sim/faults", json={"eror_rate": 1}, timeout=5).status_code == 400


def test_lose_response_applies_the_request_then_drops_the_connection(toy):
    sim, url = toy
    sim.set_faults(lose_response={"count": 1})
    with pytest.raises(requests.ConnectionError):
        requests.post(f"{url}/things", json={"n": 1}, headers=K, timeout=5)
    assert len(sim.db["things"]) == 1  # the effect happened
    assert sim.requests_log("POST")[0]["lost"] is True
    assert requests.post(f"{url}/things", json={"n": 2}, headers=K, timeout=5).status_code == 201


def test_lose_response_with_delay_outlasts_the_client_timeout(toy):
    sim, url = toy
    sim.set_faults(lose_response={"count": 1, "delay": 0.6})
    with pytest.raises(requests.Timeout):
        requests.post(f"{url}/things", json={}, headers=K, timeout=0.2)
    assert len(sim.db["things"]) == 1


def test_webhook_delivery_signed_and_logged(toy, hook_receiver):
    sim, url = toy
    requests.post(
        f"{url}/_sim/webhooks",
        json={"url": hook_receiver.url + "/in", "secret": "s3", "events": ["thing.created"]},
        timeout=5,
    )
    requests.post(f"{url}/things", json={"name": "a"}, headers=K, timeout=5)
    assert sim.flush_webhooks(5)
    [got] = hook_receiver.received
    assert got["path"] == "/in" and got["json"] == {"event": "thing.created", "data": {"id": 1, "name": "a"}}
    assert got["headers"]["X-Sig"] == f"s3:{len(got['body'])}"
    log = requests.get(f"{url}/_sim/webhook-log", timeout=5).json()
    assert [(e["result"], e["status"], e["attempt"]) for e in log] == [("delivered", 200, 1)]


def test_webhook_event_filter_and_loopback_only(toy, hook_receiver):
    sim, url = toy
    sim.add_webhook_target(hook_receiver.url, events=["other"])
    sim.emit("thing.created", {})
    assert sim.flush_webhooks(2) and hook_receiver.received == []
    r = requests.post(f"{url}/_sim/webhooks", json={"url": "https://example.com/hook"}, timeout=5)
    assert r.status_code == 400


def test_webhook_retries_use_the_scaled_interval(toy, hook_receiver):
    sim, _url = toy
    hook_receiver.statuses = [500, 500, 200]
    sim.add_webhook_target(hook_receiver.url, retry_scale=0.005)  # 10 s interval -> 50 ms
    sim.emit("thing.created", {"id": 1})
    assert sim.flush_webhooks(5)
    assert [e["result"] for e in sim.webhook_log] == ["retrying", "retrying", "delivered"]
    assert len(hook_receiver.received) == 3


def test_webhook_retries_stop_after_the_vendor_limit(toy, hook_receiver):
    sim, _url = toy
    hook_receiver.statuses = [503]
    sim.add_webhook_target(hook_receiver.url, retry_scale=0.001)
    sim.emit("thing.created", {"id": 1})
    assert sim.flush_webhooks(5)
    assert [e["attempt"] for e in sim.webhook_log] == [1, 2, 3]
    assert sim.webhook_log[-1]["result"] == "failed"


def test_drop_webhooks_fraction(toy, hook_receiver):
    sim, _url = toy
    sim.set_faults(drop_webhooks=0.5, seed=7)
    sim.add_webhook_target(hook_receiver.url)
    for i in range(40):
        sim.emit("thing.created", {"i": i})
    assert sim.flush_webhooks(10)
    dropped = [e for e in sim.webhook_log if e["result"] == "dropped"]
    assert 5 < len(dropped) < 35
    assert len(hook_receiver.received) == 40 - len(dropped)


def test_connection_error_is_recorded(toy):
    sim, _url = toy
    sim.add_webhook_target("http://127.0.0.1:9/closed", retry_scale=0.001)  # discard port: no listener
    sim.emit("thing.created", {})
    assert sim.flush_webhooks(10)
    assert sim.webhook_log[0]["error"] and sim.webhook_log[-1]["result"] == "failed"


def test_delayed_emit_waits(toy, hook_receiver):
    sim, _url = toy
    sim.add_webhook_target(hook_receiver.url)
    sim.emit("thing.created", {}, delay=0.3)
    time.sleep(0.1)
    assert hook_receiver.received == []
    assert sim.flush_webhooks(5) and len(hook_receiver.received) == 1


def test_custom_retry_policy_hook():
    class Picky(Toy):
        def webhook_retry_delay(self, delivery: Delivery, status: int | None, error: str | None) -> None:
            return None

    sim = Picky()
    assert sim.webhook_retry_delay(Delivery(1, "e", {}, {}), 500, None) is None
    assert Toy().webhook_retry_delay(Delivery(1, "e", {}, {}), 500, None) == 10.0


def test_clock_offset():
    clock = Clock()
    before = clock.now()
    clock.advance(3600)
    assert clock.now() - before >= 3600


def test_default_seed_and_registry(toy):
    sim, url = toy
    seeded = requests.post(f"{url}/_sim/seed", json={"things": [{"name": "x"}, {"id": 9}]}, timeout=5).json()
    assert seeded == {"seeded": {"things": 2}} and set(sim.db["things"]) == {1, 9}
    assert {"invoiceninja", "directus", "openai"} <= set(simulators.REGISTRY)
    assert all(issubclass(cls, Simulator) for cls in simulators.REGISTRY.values())


def test_running_server_context_manager():
    with Toy().serve() as running:
        assert running.url.startswith("http://127.0.0.1:")
        assert requests.get(f"{running.url}/things/1", headers=K, timeout=5).status_code == 200
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{running.url}/things/1", headers=K, timeout=1)
