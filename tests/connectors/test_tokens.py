"""Revolut OAuth against the simulator over loopback HTTP, on the session's real Postgres and Redis.

The key pair and certificate are generated here, never committed. The simulator's clock is injected into
connectors.revolut_tokens, so tokens expire without sleeping. The single-flight tests run the refresh from 8
threads and from 8 separate processes, with each of the three locks (Redis, a Postgres row lock, SQLite's
write lock), and count the refresh calls the simulator saw.
"""

from __future__ import annotations

import datetime as dt
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import jwt
import pytest
import requests
from cryptography.fernet import Fernet
from cryptography.hazmat.primitives.asymmetric import rsa
from sqlalchemy import text
from werkzeug.serving import make_server

from connectors import revolut_tokens as tokens
from simulators.revolut import RevolutSimulator
from syncengine import at_rest, rate_limit
from syncengine.db import engine_for, get_engine
from syncengine.models import Base
from syncengine.settings import Settings, get_settings
from tests import revolut_keys
from tests.support import ROOT, free_port
from webhooks import oauth

CLIENT_ID = "cid-syncengine-test"
FORTY_ONE_MINUTES = 41 * 60
LOCKS = ("redis", "postgres-row", "sqlite")


# ---- keys, simulator, receiver ----------------------------------------------------------------------


@pytest.fixture(scope="module")
def key() -> rsa.RSAPrivateKey:
    return revolut_keys.new_key()


@pytest.fixture(scope="module")
def key_pem(key: rsa.RSAPrivateKey) -> str:
    return revolut_keys.private_pem(key)


@pytest.fixture(scope="module")
def certificate(key: rsa.RSAPrivateKey) -> str:
    return revolut_keys.self_signed(key)


@dataclass
class Revolut:
    sim: RevolutSimulator
    api_url: str
    callback: str

    def accounts(self, access: str) -> int:
        headers = {"Authorization": f"Bearer {access}"}
        return requests.get(f"{self.api_url}/accounts", headers=headers, timeout=5).status_code

    def advance(self, seconds: float) -> None:
        self.sim.clock.advance(seconds)


def _clear_store() -> None:
    with get_engine().begin() as conn:
        conn.execute(text("DELETE FROM oauth_tokens"))


@pytest.fixture()
def revolut(monkeypatch: pytest.MonkeyPatch, key_pem: str, certificate: str) -> Iterator[Revolut]:
    """The simulator with our certificate uploaded, the env pointing at it, and the receiver served on the
    redirect URI's port (so the consent redirect really lands on /oauth/revolut/callback)."""
    sim = RevolutSimulator()
    server = sim.serve()
    port = free_port()
    callback = f"http://127.0.0.1:{port}/oauth/revolut/callback"
    sim.configure_client(CLIENT_ID, callback, certificate)
    env = {
        "REVOLUT_URL": f"{server.url}/api/1.0",
        "REVOLUT_CLIENT_ID": CLIENT_ID,
        "REVOLUT_REDIRECT_URI": callback,
        "REVOLUT_PRIVATE_KEY": key_pem,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    tokens.set_clock(sim.clock.now)
    _clear_store()
    rate_limit.reset(oauth.EXCHANGES)  # each test starts with the callback's full allowance
    from webhooks.app import create_app

    web = make_server("127.0.0.1", port, create_app(), threaded=True)
    thread = threading.Thread(target=web.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield Revolut(sim, env["REVOLUT_URL"], callback)
    web.shutdown()
    web.server_close()
    server.stop()
    tokens.set_clock(None)
    get_settings.cache_clear()


def consent_redirect(rev: Revolut) -> dict[str, str]:
    """The browser's first step: the consent page answers with a redirect carrying the code and our state."""
    r = requests.get(tokens.consent_url(), allow_redirects=False, timeout=5)
    assert r.status_code == 302, r.text
    location = urlsplit(r.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == rev.callback
    return {name: values[0] for name, values in parse_qs(location.query).items()}


def consent_code(rev: Revolut) -> str:
    return consent_redirect(rev)["code"]


def connect(rev: Revolut) -> requests.Response:
    """Consent → redirect → our callback → code exchange, all over HTTP as a browser would follow it."""
    r = requests.get(tokens.consent_url(), headers={"Accept": "application/json"}, timeout=10)
    assert r.status_code == 200, r.text
    return r


def raw_row() -> tuple[bytes, bytes, dt.datetime]:
    with get_engine().connect() as conn:
        row = conn.execute(
            text("SELECT access_token_enc, refresh_token_enc, expires_at FROM oauth_tokens")
        ).one()
    return bytes(row[0]), bytes(row[1]), row[2]


# ---- client assertion, consent URL, CLI ---------------------------------------------------------------


def test_client_assertion_is_what_revolut_requires(revolut: Revolut, key: rsa.RSAPrivateKey):
    config = tokens.RevolutConfig.from_settings(get_settings())
    now = revolut.sim.now()
    assertion = tokens.client_assertion(config, now)
    assert jwt.get_unverified_header(assertion) == {"alg": "RS256", "typ": "JWT"}
    claims = jwt.decode(
        assertion, key.public_key(), algorithms=["RS256"], audience="https://revolut.com", leeway=10
    )
    port = urlsplit(revolut.callback).port
    assert claims == {
        "iss": f"127.0.0.1:{port}",  # the redirect URI's domain: no scheme, no path
        "sub": CLIENT_ID,
        "aud": "https://revolut.com",
        "exp": int(now) + 120,
    }
    assert tokens.issuer_of("https://sync.example.com/oauth/revolut/callback?x=1") == "sync.example.com"


def test_consent_url_points_at_the_consent_page(revolut: Revolut):
    url = urlsplit(tokens.consent_url())
    assert f"{url.scheme}://{url.netloc}" == revolut.api_url.removesuffix("/api/1.0")
    assert url.path == "/app-confirm"
    query = parse_qs(url.query)
    assert query.pop("state")[0].startswith("revolut.")
    assert query == {"client_id": [CLIENT_ID], "redirect_uri": [revolut.callback], "response_type": ["code"]}
    assert "scope=READ%2CWRITE" in tokens.consent_url(scope="READ,WRITE")
    assert tokens.consent_base("https://b2b.revolut.com/api/1.0") == "https://business.revolut.com"
    assert (
        tokens.consent_base("https://sandbox-b2b.revolut.com/api/1.0")
        == "https://sandbox-business.revolut.com"
    )


def test_cli_prints_the_consent_url(revolut: Revolut):
    run = [sys.executable, "-m", "syncengine", "revolut", "consent"]
    result = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert result.returncode == 0, result.stderr
    printed = urlsplit(result.stdout.strip())
    expected = urlsplit(tokens.consent_url())
    assert printed._replace(query="") == expected._replace(query="")
    state = parse_qs(printed.query)["state"][0]
    tokens.check_state(state)  # the state the CLI signed is one the callback accepts
    assert "15 minutes" in result.stderr

    env = {k: v for k, v in os.environ.items() if not k.startswith("REVOLUT_")}
    result = subprocess.run(run, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and "REVOLUT_URL" in result.stderr  # a configuration mistake


# ---- consent → callback → encrypted store -------------------------------------------------------------


def test_consent_callback_stores_tokens_encrypted(revolut: Revolut):
    r = connect(revolut)
    body = r.json()
    assert body["status"] == "connected" and body["provider"] == "revolut"
    stored = tokens.default_tokens().stored()
    assert stored is not None
    assert stored.access_token not in r.text and stored.refresh_token not in r.text
    assert stored.lasts(revolut.sim.now()) == pytest.approx(2399, abs=5)

    access_enc, refresh_enc, expires_at = raw_row()
    for secret in (stored.access_token, stored.refresh_token):
        assert secret.encode() not in access_enc + refresh_enc
    fernet = at_rest.fernet_for(os.environ["SYNCENGINE_SECRET_KEY"])
    assert fernet.decrypt(access_enc).decode() == stored.access_token
    assert fernet.decrypt(refresh_enc).decode() == stored.refresh_token
    assert expires_at.timestamp() == pytest.approx(revolut.sim.now() + 2399, abs=5)
    assert revolut.accounts(stored.access_token) == 200


def test_callback_page_for_a_browser_shows_no_token(revolut: Revolut):
    r = requests.get(revolut.callback, params=consent_redirect(revolut), headers={"Accept": "text/html"},
                     timeout=10)  # fmt: skip
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "Revolut connected" in r.text
    stored = tokens.default_tokens().stored()
    assert stored is not None and stored.access_token not in r.text and stored.refresh_token not in r.text


def test_callback_errors_are_clear(revolut: Revolut):
    def call(**params: str) -> requests.Response:
        return requests.get(revolut.callback, params=params, timeout=10)

    missing = call()
    assert missing.status_code == 400 and "no state" in missing.json()["message"]
    assert "syncengine revolut consent" in missing.json()["message"]
    denied = call(error="access_denied")
    assert denied.status_code == 400 and "access_denied" in denied.json()["message"]

    no_code = call(state=parse_qs(urlsplit(tokens.consent_url()).query)["state"][0])
    assert no_code.status_code == 400 and "no authorization code" in no_code.json()["message"]
    redirect = consent_redirect(revolut)
    revolut.advance(121)  # codes live 2 minutes
    late = call(**redirect)
    assert late.status_code == 400 and late.json()["status"] == "error"
    assert "invalid_grant" in late.json()["message"] and "2 minutes" in late.json()["message"]
    with get_engine().connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM oauth_tokens")).scalar() == 0


def test_private_key_from_a_file(revolut: Revolut, monkeypatch: pytest.MonkeyPatch, key_pem: str, tmp_path):
    path = tmp_path / "revolut.pem"
    path.write_text(key_pem)
    path.chmod(0o600)
    monkeypatch.delenv("REVOLUT_PRIVATE_KEY")
    monkeypatch.setenv("REVOLUT_PRIVATE_KEY_PATH", str(path))
    get_settings.cache_clear()
    connect(revolut)
    assert revolut.accounts(tokens.access_token()) == 200


# ---- access, refresh, 401 -----------------------------------------------------------------------------


def test_access_after_expiry_refreshes_once_and_revokes_the_old_token(revolut: Revolut):
    connect(revolut)
    first = tokens.access_token()
    assert tokens.access_token() == first and revolut.sim.refresh_count == 0
    refresh_before = raw_row()[1]

    revolut.advance(FORTY_ONE_MINUTES)
    second = tokens.access_token()
    assert second != first and revolut.sim.refresh_count == 1
    assert tokens.access_token() == second and revolut.sim.refresh_count == 1
    assert revolut.accounts(second) == 200
    assert revolut.accounts(first) == 401

    # Revolut sends no new refresh token: the stored one is kept (same plaintext under a new ciphertext).
    fernet = at_rest.fernet_for(os.environ["SYNCENGINE_SECRET_KEY"])
    assert fernet.decrypt(raw_row()[1]) == fernet.decrypt(refresh_before)


def test_refresh_within_the_margin_before_expiry(revolut: Revolut):
    connect(revolut)
    first = tokens.access_token()
    revolut.advance(2399 - tokens.REFRESH_MARGIN + 5)  # still valid at Revolut, but nearly gone
    second = tokens.access_token()
    assert second != first and revolut.sim.refresh_count == 1
    assert revolut.accounts(first) == 401 and revolut.accounts(second) == 200


def test_previous_access_token_is_rejected_after_refresh(revolut: Revolut):
    connect(revolut)
    old = tokens.access_token()
    assert revolut.accounts(old) == 200
    new = tokens.on_unauthorized(old)  # forced: the stored token is the stale one
    assert new != old and revolut.sim.refresh_count == 1
    assert revolut.accounts(old) == 401
    assert revolut.accounts(new) == 200


def test_unauthorized_refreshes_once_and_the_caller_retries(revolut: Revolut):
    connect(revolut)
    store = tokens.default_tokens()
    stale = store.access_token()
    with revolut.sim.lock:  # Revolut stops accepting it (e.g. another client refreshed behind our back)
        revolut.sim.db["oauth_access"].pop(stale)

    sent: list[str] = []

    def send(token: str) -> requests.Response:
        sent.append(token)
        return requests.get(
            f"{revolut.api_url}/accounts", headers={"Authorization": f"Bearer {token}"}, timeout=5
        )

    assert store.call(send).status_code == 200
    assert len(sent) == 2 and sent[0] == stale and sent[1] != stale
    assert revolut.sim.refresh_count == 1
    # A late 401 for the same stale token does not refresh again: the store already moved on.
    assert store.on_unauthorized(stale) == sent[1] and revolut.sim.refresh_count == 1


@pytest.mark.faults  # fault suite item 9: `pytest -m faults` runs it with tests/faults
def test_eight_workers_hit_401_at_once_one_refresh(revolut: Revolut):
    connect(revolut)
    stale = tokens.access_token()
    with revolut.sim.lock:
        revolut.sim.db["oauth_access"].pop(stale)
    results = run_threads(lambda: tokens.on_unauthorized(stale))
    assert len(set(results)) == 1 and stale not in results
    assert revolut.sim.refresh_count == 1 and revolut.accounts(results[0]) == 200


def test_a_revoked_refresh_token_asks_for_consent(revolut: Revolut):
    connect(revolut)
    with revolut.sim.lock:
        revolut.sim.db["oauth_grants"].clear()
    revolut.advance(FORTY_ONE_MINUTES)
    with pytest.raises(tokens.ConsentRequired, match="revolut consent"):
        tokens.access_token()


def test_revolut_down_during_refresh_is_retryable_and_keeps_the_store(revolut: Revolut):
    connect(revolut)
    before = raw_row()
    revolut.advance(FORTY_ONE_MINUTES)
    revolut.sim.set_faults(outage=True)
    with pytest.raises(tokens.TokenRequestFailed) as failed:
        tokens.access_token()
    assert failed.value.retryable and failed.value.status == 503
    assert raw_row() == before  # nothing half-written
    revolut.sim.set_faults(outage=False)
    assert revolut.accounts(tokens.access_token()) == 200 and revolut.sim.refresh_count == 1


def test_no_token_stored_asks_for_consent(revolut: Revolut):
    with pytest.raises(tokens.NoTokenStored, match="revolut consent"):
        tokens.access_token()


# ---- single flight: 8 threads, 8 processes, each lock -------------------------------------------------


def settings_for(lock: str, sqlite_url: str | None) -> Settings:
    """Redis lock (the test session's REDIS_URL), or no Redis: a row lock on Postgres, or SQLite."""
    settings = get_settings()
    if lock == "redis":
        return settings
    if lock == "postgres-row":
        return replace(settings, redis_url=None)
    return replace(settings, redis_url=None, database_url=str(sqlite_url))


@pytest.fixture(params=LOCKS)
def locked(request: pytest.FixtureRequest, revolut: Revolut, tmp_path: Path) -> tuple[str, str | None]:
    """(lock, sqlite url): tokens stored in that lock's store, then expired at Revolut and for us."""
    lock = request.param
    sqlite_url = f"sqlite:///{tmp_path / 'embedded.sqlite3'}" if lock == "sqlite" else None
    if sqlite_url:
        Base.metadata.create_all(engine_for(sqlite_url))
    tokens.RevolutTokens(settings_for(lock, sqlite_url)).exchange_code(consent_code(revolut))
    revolut.advance(FORTY_ONE_MINUTES)
    return lock, sqlite_url


def run_threads(work, n: int = 8) -> list[str]:  # type: ignore[no-untyped-def]
    barrier = threading.Barrier(n)
    results: list[str] = []
    errors: list[BaseException] = []

    def run() -> None:
        barrier.wait(timeout=10)
        try:
            results.append(work())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not errors, errors
    assert len(results) == n
    return results


def test_eight_threads_one_refresh(revolut: Revolut, locked: tuple[str, str | None]):
    settings = settings_for(*locked)
    workers = [tokens.RevolutTokens(settings) for _ in range(8)]  # eight workers, each its own store handle
    it = iter(workers)
    lock = threading.Lock()

    def work() -> str:
        with lock:
            mine = next(it)
        return mine.access_token()

    results = run_threads(work)
    assert revolut.sim.refresh_count == 1
    assert len(set(results)) == 1 and revolut.accounts(results[0]) == 200


def _process_worker(lock: str, sqlite_url: str | None, clock_offset: float, barrier, out) -> None:  # type: ignore[no-untyped-def]
    """One worker process: build its store, wait for the others, then ask for the (expired) token."""
    try:
        store = tokens.RevolutTokens(settings_for(lock, sqlite_url), now=lambda: time.time() + clock_offset)
        barrier.wait(timeout=60)
        out.put(("ok", store.access_token()))
    except BaseException as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))


@pytest.mark.faults  # fault suite item 9: `pytest -m faults` runs it with tests/faults
def test_eight_processes_one_refresh(revolut: Revolut, locked: tuple[str, str | None]):
    ctx = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited sockets or threads
    barrier, out = ctx.Barrier(8), ctx.Queue()
    procs = [
        ctx.Process(target=_process_worker, args=(*locked, revolut.sim.clock.offset, barrier, out))
        for _ in range(8)
    ]
    for p in procs:
        p.start()
    results = [out.get(timeout=120) for _ in procs]
    for p in procs:
        p.join(timeout=30)
    assert all(kind == "ok" for kind, _ in results), results
    tokens_seen = {value for _, value in results}
    assert revolut.sim.refresh_count == 1
    assert len(tokens_seen) == 1 and revolut.accounts(tokens_seen.pop()) == 200


# ---- the scheduled refresh ----------------------------------------------------------------------------


def test_beat_refreshes_every_35_minutes_on_the_sweeps_queue():
    from beat_schedule import BEAT_SCHEDULE
    from syncengine.celery_app import TASK_MODULES, app

    entry = BEAT_SCHEDULE["revolut-token-refresh"]
    assert entry["task"] == "tasks.tokens.refresh_revolut_token"
    assert entry["schedule"] == 35 * 60
    assert entry["options"]["queue"] == "sweeps"
    assert "tasks.tokens" in TASK_MODULES
    import tasks.tokens  # noqa: F401 - registers the task

    assert "tasks.tokens.refresh_revolut_token" in app.tasks
    assert app.amqp.router.route({}, "tasks.tokens.refresh_revolut_token")["queue"].name == "sweeps"


def test_refresh_task_skips_quietly_until_revolut_is_set_up(monkeypatch: pytest.MonkeyPatch, caplog):
    from tasks.tokens import refresh_revolut_token

    for name in ("REVOLUT_URL", "REVOLUT_CLIENT_ID", "REVOLUT_REDIRECT_URI", "REVOLUT_PRIVATE_KEY"):
        monkeypatch.delenv(name, raising=False)
    get_settings.cache_clear()
    try:
        with caplog.at_level(logging.INFO, logger="tasks.tokens"):
            assert refresh_revolut_token.apply().get() == "not configured"
        assert any(r.levelno == logging.INFO and "skipped" in r.getMessage() for r in caplog.records)
    finally:
        get_settings.cache_clear()


def test_refresh_task(revolut: Revolut):
    from tasks.tokens import refresh_revolut_token

    assert refresh_revolut_token.apply().get() == "no token"
    connect(revolut)
    first = tokens.access_token()
    assert refresh_revolut_token.apply().get() == "fresh" and revolut.sim.refresh_count == 0
    revolut.advance(35 * 60)
    assert refresh_revolut_token.apply().get() == "refreshed" and revolut.sim.refresh_count == 1
    assert (
        refresh_revolut_token.apply().get() == "fresh" and revolut.sim.refresh_count == 1
    )  # a duplicate run
    second = tokens.access_token()
    assert second != first and revolut.accounts(first) == 401 and revolut.accounts(second) == 200


# ---- secrets ------------------------------------------------------------------------------------------


def test_no_token_code_or_private_key_in_logs(revolut: Revolut, key_pem: str, caplog):
    caplog.set_level(logging.DEBUG)
    redirect = consent_redirect(revolut)
    code = redirect["code"]
    r = requests.get(revolut.callback, params=redirect, timeout=10)
    assert r.status_code == 200
    stored = tokens.default_tokens().stored()
    assert stored is not None
    revolut.advance(FORTY_ONE_MINUTES)
    refreshed = tokens.access_token()
    tokens.on_unauthorized(refreshed)

    leak_log = logging.getLogger("syncengine.test_tokens")
    leak_log.info("careless code logs %s and %s", stored.refresh_token, tokens.access_token())
    try:
        raise RuntimeError(f"failed with {stored.access_token} / {code}")
    except RuntimeError:
        leak_log.exception("careless traceback")

    logged = caplog.text
    assert "/oauth/revolut/callback" in logged  # the receiver's own request log line is in there
    pem_lines = [line for line in key_pem.splitlines() if line and not line.startswith("-----")]
    for secret in (stored.access_token, stored.refresh_token, refreshed, tokens.access_token(), code):
        assert secret not in logged
    assert not any(line in logged for line in pem_lines)


def test_secret_key_handling():
    key = Fernet.generate_key().decode()
    assert Fernet(key).decrypt(at_rest.fernet_for(key).encrypt(b"x")) == b"x"  # a Fernet key is used as is
    derived = at_rest.fernet_for("a long random string that is not a fernet key")
    again = at_rest.fernet_for("a long random string that is not a fernet key")
    assert again.decrypt(derived.encrypt(b"y")) == b"y"  # derived the same way every time (HKDF-SHA256)
    with pytest.raises(at_rest.NotConfigured):
        at_rest.fernet_for("short")


def test_a_changed_secret_key_asks_for_consent(revolut: Revolut, monkeypatch: pytest.MonkeyPatch):
    connect(revolut)
    monkeypatch.setenv("SYNCENGINE_SECRET_KEY", Fernet.generate_key().decode())
    get_settings.cache_clear()
    with pytest.raises(tokens.ConsentRequired, match="SYNCENGINE_SECRET_KEY"):
        tokens.access_token()
