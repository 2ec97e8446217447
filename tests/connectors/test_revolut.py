"""The Revolut connector against the Revolut simulator over loopback HTTP, with the real store (idempotency
keys) and Redis (breaker, rate limiter, token refresh lock)."""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from sqlalchemy import delete

from connectors.revolut import RevolutConnector
from connectors.revolut_rate import RateLimiter
from simulators.revolut.common import iso
from syncengine.breaker import Breaker, BreakerPolicy, RedisBreakerStore
from syncengine.db import session_scope
from syncengine.errors import Ambiguous, CircuitOpen, Permanent, Retryable
from syncengine.idempotency import Attempt, Effect, vendor_key
from syncengine.models import OAuthToken
from syncengine.settings import Settings
from syncengine.shared_state import get_redis
from tests import revolut_keys
from tests.connectors.helpers import Sleeps
from tests.revolut_keys import SimTokens
from tests.simulators import contract
from tests.simulators.contract import check, needs_specs

contract.SPEC_FILES.setdefault("revolut", ("revolut/business.yaml", "https://sandbox-b2b.revolut.com"))
IBAN = "FR1420041010050500013M02606"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make(
    url: str, tokens: Any, *, breaker: Breaker | None = None, limiter: RateLimiter | None = None,
    sleep: Callable[[float], None] | None = None,
) -> RevolutConnector:  # fmt: skip
    """A connector with a breaker and a limiter of its own (no other test shares their Redis keys)."""
    return RevolutConnector(
        url,
        tokens=tokens,
        breaker=breaker or Breaker(unique("revolut-test"), RedisBreakerStore(get_redis())),
        limiter=limiter or RateLimiter(unique("test:ratelimit:revolut"), redis=get_redis()),
        sleep=sleep if sleep is not None else Sleeps(),
    )


@pytest.fixture()
def api(revolut_sim) -> tuple[Any, str, RevolutConnector]:
    sim, url = revolut_sim
    return sim, url, make(url, SimTokens(sim))


def payee(sim: Any) -> str:
    """A Revtag counterparty: payments to it complete at once."""
    return sim.seed(
        {"counterparties": [{"name": "Supplier Ltd", "revtag": unique("sup"), "profile_type": "business"}]}
    )["counterparties"][0]


def eur_account(connector: RevolutConnector) -> str:
    return next(a["id"] for a in connector.accounts() if a["currency"] == "EUR")


def pay_effect(body: dict[str, Any]) -> Effect:
    return Effect(f"pay:revolut:{uuid.uuid4().hex}", "revolut", "pay", body)


def payments(sim: Any, request_id: str) -> list[dict[str, Any]]:
    return [t for t in sim.db["transactions"].values() if t.get("request_id") == request_id]


# --- reading --------------------------------------------------------------------------------------------


def test_transactions_over_pages_each_once_newest_first(api):
    sim, _, connector = api
    base = sim.now() - 3600
    # Eight in the window; two share the instant that ends the first page (3rd and 4th newest): with the
    # bound exclusive at that instant, the 4th would be skipped. One is older than `since`.
    offsets = [0, 10, 20, 30, 40, 40, 50, 60]
    seeded = sim.seed(
        {"transactions": [{"created_at": iso(base + s), "reference": f"r{i}"} for i, s in enumerate(offsets)]
         + [{"created_at": iso(base - 600), "reference": "too old"}]}
    )["transactions"]  # fmt: skip
    got = list(connector.transactions(since=datetime.fromtimestamp(base, UTC), page_size=3))
    assert sorted(t["id"] for t in got) == sorted(seeded[:8])
    stamps = [t["created_at"] for t in got]
    assert stamps == sorted(stamps, reverse=True)
    assert sim.count("GET", "/api/1.0/transactions") >= 3
    one = connector.transaction(got[0]["id"])
    assert one["id"] == got[0]["id"] and one["legs"]


def test_counterparties_paged_with_created_before(api):
    sim, _, connector = api
    names = [f"Payee {i}" for i in range(5)]
    for i, name in enumerate(names):
        created = iso(sim.now() - 100 + i)
        sim.seed({"counterparties": [{"name": name, "revtag": unique("p"), "created_at": created}]})
    got = [c["name"] for c in connector.counterparties(page_size=2)]
    assert got == list(reversed(names))
    queries = [e["query"] for e in sim.requests_log("GET", "/api/1.0/counterparties")]
    # each next page starts at the last item's instant (re-read, de-duplicated): 5 items, 2 a page
    assert len(queries) >= 3 and "created_before" not in queries[0] and "created_before" in queries[1]


def test_counterparty_created_once_by_bank_details_or_revtag(api):
    sim, _, connector = api
    bank = {"company_name": "Bleu Blanc SARL", "bank_country": "FR", "currency": "EUR", "iban": IBAN}
    first = connector.ensure_counterparty(Effect(unique("cp"), "revolut", "counterparty", bank), bank)
    again = connector.ensure_counterparty(Effect(unique("cp"), "revolut", "counterparty", bank), bank)
    assert first["id"] == again["id"]
    tag = {"profile_type": "business", "name": "Tag Co", "revtag": unique("tag")}
    assert connector.create_counterparty(tag)["id"] == connector.create_counterparty(tag)["id"]
    assert sim.count("POST", "/api/1.0/counterparty") == 3  # bank once; the Revtag's second answer is 3012


# --- faults ---------------------------------------------------------------------------------------------


def test_429_retry_after_is_waited_out(api):
    sim, url, _ = api
    sleeps = Sleeps(real=True)
    connector = make(url, SimTokens(sim), sleep=sleeps)
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 1})
    started = time.monotonic()
    assert connector.accounts()
    assert sleeps == [1.0] and time.monotonic() - started >= 1.0
    assert [e["status"] for e in sim.requests_log("GET", "/api/1.0/accounts")] == [429, 200]


def test_500_storm_opens_the_breaker_and_one_probe_goes_through_across_8_workers(revolut_sim):
    sim, url = revolut_sim
    tokens = SimTokens(sim)
    policy = BreakerPolicy(threshold=3, window=60, cooldown=0.5)
    name = unique("revolut-storm")
    limiter = RateLimiter(unique("test:ratelimit:revolut"), redis=get_redis())

    def worker() -> RevolutConnector:  # one per process: own session and Breaker, shared Redis state
        return make(
            url, tokens, breaker=Breaker(name, RedisBreakerStore(get_redis()), policy), limiter=limiter
        )

    sim.set_faults(fixed_status=500, match_path="/api/1.0/accounts", latency_ms=300)
    first = worker()
    with pytest.raises(Retryable) as raised:
        first.accounts()
    assert not isinstance(raised.value, CircuitOpen) and raised.value.status == 500
    with pytest.raises(CircuitOpen):
        first.accounts()
    assert sim.count("GET", "/api/1.0/accounts") == 3  # the threshold; nothing sent while open

    def burst() -> list[Any]:
        workers = [worker() for _ in range(8)]
        gate = threading.Barrier(8)

        def run(c: RevolutConnector) -> Any:
            gate.wait()
            try:
                return c.accounts()
            except Retryable as exc:
                return exc

        with ThreadPoolExecutor(8) as pool:
            return list(pool.map(run, workers))

    time.sleep(0.6)  # past the cool-down: half-open, the probe fails
    outcomes = burst()
    assert sim.count("GET", "/api/1.0/accounts") == 4
    assert all(isinstance(o, CircuitOpen) for o in outcomes)  # even the probe's own retry met the breaker

    sim.clear_faults()
    sim.set_faults(latency_ms=300, match_path="/api/1.0/accounts")
    time.sleep(0.6)
    outcomes = burst()
    assert sim.count("GET", "/api/1.0/accounts") == 5
    assert sum(isinstance(o, list) for o in outcomes) == 1
    assert sum(isinstance(o, CircuitOpen) for o in outcomes) == 7
    assert worker().accounts()  # closed again


def test_permanent_4xx_is_not_retried_and_fails_the_key(api):
    sim, _, connector = api
    body = {"account_id": eur_account(connector), "counterparty_id": str(uuid.uuid4()), "amount": 5,
            "currency": "EUR"}  # fmt: skip
    effect = pay_effect(body)
    with pytest.raises(Permanent) as raised:
        connector.pay(effect, **body)
    assert raised.value.status == 404
    with pytest.raises(Permanent):
        connector.pay(effect, **body)  # the key failed: nothing is sent again
    assert sim.count("POST", "/api/1.0/pay") == 1


# --- moving money once ----------------------------------------------------------------------------------


def test_pay_whose_answer_is_lost_is_read_back_not_paid_again(api):
    sim, _, connector = api
    connector.timeout = (2.0, 0.3)
    body = {"account_id": eur_account(connector), "counterparty_id": payee(sim), "amount": 12.5,
            "currency": "EUR", "reference": "INV-1"}  # fmt: skip
    effect = pay_effect(body)
    sim.set_faults(lose_response={"count": 1, "delay": 0.6}, match_path="/api/1.0/pay")
    with pytest.raises(Ambiguous):
        connector.pay(effect, **body)
    request_id = vendor_key(effect.key)
    assert sim.count("POST", "/api/1.0/pay") == 1 and len(payments(sim, request_id)) == 1

    result = connector.pay(effect, **body)  # the next attempt recovers: read back, no second POST
    [paid] = payments(sim, request_id)
    assert result["id"] == paid["id"] and result["request_id"] == request_id and len(request_id) <= 40
    assert sim.count("POST", "/api/1.0/pay") == 1
    lookups = sim.requests_log("GET", "/api/1.0/transactions")
    assert lookups[-1]["query"]["request_id"] == request_id and "from" in lookups[-1]["query"]
    before = len(sim.requests_log())
    assert connector.pay(effect, **body) == result  # finished: the stored answer, no call at all
    assert len(sim.requests_log()) == before


def test_pay_after_a_5xx_reads_back_first_then_pays_once(api):
    sim, _, connector = api
    body = {"account_id": eur_account(connector), "counterparty_id": payee(sim), "amount": 3,
            "currency": "EUR"}  # fmt: skip
    effect = pay_effect(body)
    sim.set_faults(fixed_status=500, match_path="/api/1.0/pay")
    with pytest.raises(Ambiguous):
        connector.pay(effect, **body)
    assert sim.count("POST", "/api/1.0/pay") == 1  # a 5xx to a payment is not resent inline
    sim.clear_faults()
    result = connector.pay(effect, **body)
    assert sim.count("POST", "/api/1.0/pay") == 2
    assert [p["id"] for p in payments(sim, vendor_key(effect.key))] == [result["id"]]


def test_repeated_pay_with_the_same_key_is_answered_3020_and_read_back(api):
    sim, _, connector = api
    body = {"account_id": eur_account(connector), "receiver": {"counterparty_id": payee(sim)}, "amount": 7,
            "currency": "EUR"}  # fmt: skip
    key = unique("pay:revolut")
    attempt = Attempt(key, vendor_key(key), recovering=False, recovery_point=None)
    first = connector.send_money("/pay", body, attempt)
    second = connector.send_money("/pay", body, attempt)  # e.g. a restored store forgot the key row
    assert second["id"] == first["id"] and second["state"] == "completed"
    assert [e["status"] for e in sim.requests_log("POST", "/api/1.0/pay")] == [200, 400]
    assert len(payments(sim, attempt.vendor_key)) == 1


def test_transfer_between_own_accounts_once(api):
    sim, _, connector = api
    source = eur_account(connector)
    target = sim.add_account(name="EUR 2", currency="EUR")["id"]
    body = {"source_account_id": source, "target_account_id": target, "amount": "10.00", "currency": "EUR"}
    effect = Effect(unique("transfer:revolut"), "revolut", "transfer", body)
    assert connector.transfer(effect, **body)["state"] == "completed"
    assert connector.transfer(effect, **body)["state"] == "completed"
    assert sim.count("POST", "/api/1.0/transfer") == 1 and sim.db["accounts"][target]["balance"] == 10.0


# --- tokens ---------------------------------------------------------------------------------------------


@pytest.fixture()
def revolut_tokens(revolut_sim) -> Iterator[Any]:
    """The real connectors.revolut_tokens store, consented against the simulator, on a throw-away RSA key."""
    from connectors.revolut_tokens import RevolutTokens, consent_url

    sim, url = revolut_sim
    key = revolut_keys.new_key()
    pem, public = revolut_keys.private_pem(key), revolut_keys.public_pem(key)
    redirect = "https://engine.example.test/revolut/callback"
    sim.configure_client("conn-test-client", redirect, public)
    env = {**os.environ, "REVOLUT_URL": url, "REVOLUT_CLIENT_ID": "conn-test-client",
           "REVOLUT_REDIRECT_URI": redirect, "REVOLUT_PRIVATE_KEY": pem}  # fmt: skip
    settings = Settings.from_env(env)
    _forget_tokens()
    store = RevolutTokens(settings, now=sim.clock.now)
    consent = requests.get(consent_url(settings), allow_redirects=False, timeout=5)
    store.exchange_code(parse_qs(urlsplit(consent.headers["Location"]).query)["code"][0])
    yield store
    _forget_tokens()


def _forget_tokens() -> None:
    with session_scope() as session:
        session.execute(delete(OAuthToken).where(OAuthToken.provider == "revolut"))


def test_expired_token_is_refreshed_once_for_8_concurrent_calls(revolut_sim, revolut_tokens):
    sim, url = revolut_sim
    limiter = RateLimiter(unique("test:ratelimit:revolut"), redis=get_redis())
    workers = [make(url, revolut_tokens, limiter=limiter) for _ in range(8)]
    assert workers[0].accounts()
    stale = revolut_tokens.access_token()
    with sim.lock:  # Revolut no longer accepts it; our store still believes it has minutes left
        sim.db["oauth_access"][stale]["expires"] = sim.now() - 1
    gate = threading.Barrier(8)

    def run(c: RevolutConnector) -> list[dict[str, Any]]:
        gate.wait()
        return c.accounts()

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(run, workers))
    assert all(results) and sim.refresh_count == 1
    statuses = [e["status"] for e in sim.requests_log("GET", "/api/1.0/accounts")]
    # a worker whose first call comes after the refresh sends the new token straight away
    assert 1 <= statuses.count(401) <= 8 and statuses.count(200) == 9
    assert revolut_tokens.access_token() != stale


# --- the client-side rate limit -------------------------------------------------------------------------


class FakeTime:
    """The limiter's clock and sleep; sleeping also moves the simulator's clock, so no real minute passes."""

    def __init__(self, sim: Any = None) -> None:
        self.now = 1_800_000_000.0
        self.sim = sim
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        if self.sim is not None:
            self.sim.clock.advance(seconds)


def max_in_any_window(times: list[float], window: float) -> int:
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


def test_burst_of_100_stays_under_60_per_rolling_minute(revolut_sim):
    sim, url = revolut_sim  # the simulator enforces Revolut's 60/minute itself and would answer 429
    fake = FakeTime(sim)
    limiter = RateLimiter(unique("test:ratelimit:revolut"), 60, 60.0, redis=get_redis(), clock=fake.clock,
                          sleep=fake.sleep, max_wait=120)  # fmt: skip
    connector = make(url, SimTokens(sim), limiter=limiter)
    started = time.monotonic()
    for _ in range(100):
        connector.accounts()
    log = sim.requests_log("GET", "/api/1.0/accounts")
    assert len(log) == 100 and {e["status"] for e in log} == {200}
    assert max_in_any_window([e["time"] for e in log], 60.0) == 60
    assert sum(fake.slept) >= 60 and time.monotonic() - started < 20


def test_limiter_without_redis_counts_per_process():
    fake = FakeTime()
    limiter = RateLimiter("local", 3, 1.0, redis=None, clock=fake.clock, sleep=fake.sleep, max_wait=5)
    admitted = []
    for _ in range(10):
        limiter.acquire()
        admitted.append(fake.now)
    assert max_in_any_window(admitted, 1.0) == 3
    limiter.max_wait = 0.1
    with pytest.raises(Retryable):
        for _ in range(4):
            limiter.acquire()


# --- the contract ---------------------------------------------------------------------------------------


@needs_specs
def test_requests_and_answers_match_the_published_spec(api):
    _, url, connector = api
    seen: list[requests.Response] = []
    connector.session.hooks["response"].append(lambda r, *a, **kw: seen.append(r))
    account = eur_account(connector)
    to = connector.create_counterparty(
        {"profile_type": "business", "name": "Spec Co", "revtag": unique("spec")}
    )
    connector.create_counterparty(
        {"company_name": "Bank Co", "bank_country": "FR", "currency": "EUR", "iban": IBAN}
    )
    list(connector.counterparties(page_size=1))
    key = unique("pay:revolut")
    attempt = Attempt(key, vendor_key(key), recovering=False, recovery_point=None)
    body = {"account_id": account, "receiver": {"counterparty_id": to["id"]}, "amount": 1, "currency": "EUR"}
    paid = connector.send_money("/pay", body, attempt)
    connector.send_money("/pay", body, attempt)  # 400/3020, then the read-back by request_id
    connector.transaction(paid["id"])
    list(connector.transactions(since="2020-01-01", page_size=2))
    root = url.removesuffix("/api/1.0")
    assert len(seen) >= 10
    for response in seen:
        path = response.request.path_url
        first_page = path.startswith("/api/1.0/counterparties?") and "created_before" not in path
        # openapi-core fills created_before's documented default ("now") and rejects it: answer only
        check("revolut", response, root, request=not first_page)
