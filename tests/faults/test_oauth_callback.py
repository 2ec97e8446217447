"""The public OAuth callback, probed as an attacker would: without the signed state of our own consent URL
it does no work at all (nothing sent to Revolut, no lock waited for), whatever it carries never teaches the
log redaction a word to blank out, and exchanges are rate-limited across processes (Redis) and without
Redis (the store)."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from urllib.parse import parse_qs, urlsplit

import redis
import requests

from connectors import revolut_tokens as tokens
from syncengine import oauth_state, redaction
from tests.connectors.test_tokens import Revolut, certificate, key, key_pem, revolut  # noqa: F401 - fixtures
from tests.support import ROOT
from webhooks.oauth import EXCHANGES

TOKEN_PATH = "/api/1.0/auth/token"


def our_state() -> str:
    return parse_qs(urlsplit(tokens.consent_url()).query)["state"][0]


def token_requests(rev: Revolut) -> int:
    return rev.sim.count("POST", TOKEN_PATH)


def forged_states() -> dict[str, str]:
    secret_key = os.environ["SYNCENGINE_SECRET_KEY"]
    now = time.time()
    genuine = our_state()
    return {
        "none": "",
        "garbage": "revolut",
        "unsigned": "revolut.9999999999.nonce.signature",
        "another key": oauth_state.issue("another-secret-key-of-someone", "revolut", now),
        "expired": oauth_state.issue(secret_key, "revolut", now - oauth_state.LIFETIME - 5),
        "another provider": oauth_state.issue(secret_key, "mautic", now),
        "tampered": genuine.replace("revolut.", "revolut.1", 1),
        "huge": genuine + "x" * 10_000,
    }


def test_a_callback_without_our_state_sends_nothing_and_waits_for_no_lock(revolut: Revolut):  # noqa: F811
    held = redis.Redis.from_url(os.environ["REDIS_URL"]).lock(tokens.LOCK_NAME, timeout=120)
    assert held.acquire(blocking=False)  # a worker mid-refresh holds the lock
    try:
        before = token_requests(revolut)
        for name, state in forged_states().items():
            started = time.monotonic()
            r = requests.get(revolut.callback, params={"code": "oa_sand_stolen", "state": state}, timeout=20)
            assert r.status_code == 400, (name, r.text)
            assert "syncengine revolut consent" in r.json()["message"], name
            assert time.monotonic() - started < 5, f"{name}: the callback waited for the refresh lock"
        assert token_requests(revolut) == before
    finally:
        held.release()


def test_what_a_callback_carries_never_becomes_a_word_to_redact(revolut: Revolut, caplog):  # noqa: F811
    before = redaction.known_count()
    words = ["revolut", "webhook", "from", *(f"word{i:03d}" for i in range(100))]
    for word in words:
        requests.get(revolut.callback, params={"code": word}, timeout=10)
    for word in words[:3]:  # with our state: exchanged, refused by Revolut, still not learnt
        r = requests.get(revolut.callback, params={"code": word, "state": our_state()}, timeout=10)
        assert r.status_code == 400 and "invalid_grant" in r.json()["message"]
    assert redaction.known_count() == before
    with caplog.at_level(logging.INFO):
        logging.getLogger("syncengine.test_oauth").warning("webhook from revolut rejected")
    assert "webhook from revolut rejected" in caplog.text
    masked = redaction.redact("GET /oauth/revolut/callback?code=abc123xyz&state=revolut.1.n.s HTTP/1.1")
    assert "abc123xyz" not in masked and "state=revolut.1.n.s" in masked
    assert redaction.redact("status_code=200 error_code=3020") == "status_code=200 error_code=3020"


def _wait_for_a_fresh_window() -> None:
    """Start well inside a rate-limit window, so the burst below is counted in one."""
    into = time.time() % EXCHANGES.per
    if into > EXCHANGES.per - 15:
        time.sleep(EXCHANGES.per - into + 0.5)


ALLOW_ONE = """
from syncengine import rate_limit
from webhooks.oauth import EXCHANGES
print(rate_limit.allow(EXCHANGES))
"""


def test_exchanges_are_rate_limited_for_every_web_process(revolut: Revolut):  # noqa: F811
    _wait_for_a_fresh_window()
    before = token_requests(revolut)
    answers = [
        requests.get(revolut.callback, params={"code": f"oa_sand_bogus{i}", "state": our_state()}, timeout=20)
        for i in range(EXCHANGES.count + 3)
    ]
    assert [r.status_code for r in answers] == [400] * EXCHANGES.count + [429] * 3
    assert token_requests(revolut) - before == EXCHANGES.count
    assert 1 <= int(answers[-1].headers["Retry-After"]) <= EXCHANGES.per
    assert "too many attempts" in answers[-1].json()["message"]
    # Another process (another gunicorn worker, another dyno) sees the same count.
    other = subprocess.run([sys.executable, "-c", ALLOW_ONE], cwd=ROOT, capture_output=True, text=True,
                           timeout=60, env=dict(os.environ))  # fmt: skip
    assert other.returncode == 0, other.stderr
    assert int(other.stdout.strip().splitlines()[-1]) >= 1


def test_without_redis_the_limit_is_counted_in_the_store(tmp_path):
    """The embedded default: two processes share the count through the store; a new window starts over."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "DATABASE_URL")}
    env["SYNCENGINE_HOME"] = str(tmp_path)

    def allow(*moments: float) -> list[int]:
        script = (
            "from syncengine import rate_limit\n"
            "limit = rate_limit.Limit('test:embedded', count=3, per=3600)\n"
            f"print([rate_limit.allow(limit, now=t) for t in {list(moments)!r}])\n"
        )
        run = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True,
                             timeout=60, env=env)  # fmt: skip
        assert run.returncode == 0, run.stderr
        return [int(x) for x in run.stdout.strip().splitlines()[-1].strip("[]").split(",")]

    assert allow(7200.0, 7201.0, 7202.0) == [0, 0, 0]
    assert allow(7300.0, 10800.0) == [3500, 0]
