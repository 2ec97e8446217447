"""A Redis that may evict keys: worker, beat and serve refuse to start on `allkeys-*` (one line with the
fix), start with a loud warning on `volatile-*`, and /readyz is not ready on the former. Each case runs on a
redis-server of its own, never the shared one."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from syncengine import redis_policy
from syncengine.settings import get_settings
from syncengine.shared_state import get_redis
from tests.conftest import WORK
from tests.servers import PrivateRedis
from tests.support import ROOT, Proc, free_port, wait_for_port, wait_until


@pytest.fixture(scope="module")
def private_redis() -> Iterator[PrivateRedis]:
    server = PrivateRedis()
    yield server
    server.kill()


def with_policy(server: PrivateRedis, policy: str) -> dict[str, str]:
    server.client().config_set("maxmemory-policy", policy)
    return dict(os.environ, REDIS_URL=server.url, PORT=str(free_port()))


@pytest.mark.parametrize("role", ["worker", "beat", "serve"])
@pytest.mark.parametrize("policy", ["allkeys-lru", "allkeys-lfu", "allkeys-random"])
def test_a_role_refuses_to_start_on_a_redis_that_may_drop_any_key(private_redis, role, policy):
    env = with_policy(private_redis, policy)
    run = subprocess.run([sys.executable, "-m", "syncengine", role], env=env, cwd=ROOT, capture_output=True,
                         text=True, timeout=60)  # fmt: skip
    assert run.returncode == 2, run.stderr
    [line] = run.stderr.strip().splitlines()  # one line, no traceback
    assert line.startswith(f"refusing to start {'web' if role == 'serve' else role}: ")
    assert policy in line and "heroku redis:maxmemory <redis add-on> --policy noeviction" in line


def test_a_worker_starts_on_volatile_eviction_with_a_loud_warning(private_redis):
    env = with_policy(private_redis, "volatile-lru")
    command = [sys.executable, "-m", "syncengine", "worker", "--queues", "ocr", "--concurrency", "1"]
    worker = Proc(command, env, WORK / "worker-volatile.log")
    try:
        wait_until(lambda: "ready." in worker.output(), timeout=90)
        warning = next(line for line in worker.output().splitlines() if line.startswith("WARNING (worker)"))
        assert "volatile-lru" in warning and "locks" in warning and "noeviction" in warning
    finally:
        worker.stop()


def test_serve_starts_on_noeviction_without_a_word(private_redis):
    env = with_policy(private_redis, "noeviction")
    web = Proc([sys.executable, "-m", "syncengine", "serve"], env, WORK / "serve-noeviction.log")
    try:
        wait_for_port(int(env["PORT"]), timeout=60)
        assert "maxmemory-policy" not in web.output()
    finally:
        web.stop()


def test_readyz_is_not_ready_on_a_redis_that_may_drop_any_key(private_redis, monkeypatch):
    from webhooks.app import create_app

    monkeypatch.setenv("REDIS_URL", private_redis.url)
    get_settings.cache_clear()
    get_redis.cache_clear()
    try:
        client = create_app().test_client()
        with_policy(private_redis, "allkeys-lru")
        answer = client.get("/readyz")
        assert answer.status_code == 503 and answer.json["redis_keeps_keys"] is False
        with_policy(private_redis, "volatile-ttl")  # warned about at start, but ready
        assert client.get("/readyz").status_code == 200
        with_policy(private_redis, "noeviction")
        assert client.get("/readyz").status_code == 200
    finally:
        get_settings.cache_clear()
        get_redis.cache_clear()


def test_the_policies_as_judged():
    assert redis_policy.judge("noeviction") == redis_policy.Verdict("noeviction")
    for policy in ("volatile-lru", "volatile-lfu", "volatile-random", "volatile-ttl"):
        verdict = redis_policy.judge(policy)
        assert not verdict.refuse and verdict.ready and policy in verdict.problem
    for policy in ("allkeys-lru", "allkeys-lfu", "allkeys-random", "some-future-policy"):
        assert redis_policy.judge(policy).refuse
