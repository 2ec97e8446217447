"""The convergence suite's stack: the four contact systems' simulators behind the webhook proxy, the receiver
and a worker, on a database and a Redis database of its own (the run kills its worker and waits for the whole
stack to be quiet, which other suites' leftovers must not disturb). Seeds run side by side, a batch at a
time, each on people of its own: `--seeds N` runs seeds 1..N, `--seed S` replays one."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis

from simulators.convergence.batch import Outcome, run_batch
from simulators.convergence.stack import Stack
from tests.conftest import ADMIN_URL, REDIS_BASE, WORK
from tests.servers import claim_redis_db, with_database

HERE = Path(__file__).resolve().parent
BATCH = 20  # seeds side by side in one run of the stack


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Everything under tests/convergence is the convergence suite: `pytest -m convergence` runs it alone."""
    for item in items:
        if HERE in Path(str(item.fspath)).resolve().parents:
            item.add_marker(pytest.mark.convergence)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "seed" in metafunc.fixturenames:
        seeds = chosen_seeds(metafunc.config)
        metafunc.parametrize("seed", seeds, ids=[f"seed{s}" for s in seeds])


def chosen_seeds(config: pytest.Config) -> list[int]:
    one = config.getoption("--seed")
    return [one] if one is not None else list(range(1, config.getoption("--seeds") + 1))


class Convergence:
    """Runs the batch a seed belongs to the first time one of its seeds is asked for."""

    def __init__(self, stack: Stack, seeds: list[int]) -> None:
        self.stack = stack
        self.batches = [seeds[i : i + BATCH] for i in range(0, len(seeds), BATCH)]
        self.outcomes: dict[int, Outcome] = {}

    def outcome(self, seed: int) -> Outcome:
        if seed not in self.outcomes:
            batch = next(b for b in self.batches if seed in b)
            self.outcomes.update(run_batch(self.stack, batch))
        return self.outcomes[seed]


@pytest.fixture(scope="package")
def convergence_db(store: str) -> Iterator[str]:
    from syncengine import migrate

    name = f"syncengine_conv_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    url = with_database(ADMIN_URL, name).replace("postgresql://", "postgresql+psycopg2://", 1)
    try:
        migrate.upgrade(url)
        yield url
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture(scope="package")
def convergence(request: pytest.FixtureRequest, convergence_db: str) -> Iterator[Convergence]:
    redis_url = f"{REDIS_BASE}/{claim_redis_db(REDIS_BASE)}"
    redis.Redis.from_url(redis_url).flushdb()
    stack = Stack(convergence_db, redis_url, WORK).start()
    try:
        yield Convergence(stack, chosen_seeds(request.config))
    finally:
        stack.stop()
