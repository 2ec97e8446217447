"""Postgres (the store) stopped at intake: every webhook from every sender is answered 503 with Retry-After
(the receiver itself keeps answering), nothing is half-written (a Mautic batch is all or nothing), and once
the store is back the senders' retries are accepted and processed, once each, by the same processes.

A Postgres cluster of its own (initdb/pg_ctl), and a Redis of its own, so the shared servers never stop."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import psycopg2
import pytest
import requests

from tests.conftest import WORK
from tests.faults.conftest import PrivatePostgres, unique
from tests.servers import PrivateRedis, with_database
from tests.support import (
    ROOT,
    SENDERS,
    Proc,
    celery_worker_cmd,
    dumps,
    free_port,
    gunicorn_cmd,
    sample,
    sign,
    wait_for_port,
    wait_until,
)


class Intake:
    """Receiver and worker on a private store and broker."""

    def __init__(self, pg: PrivatePostgres, broker: PrivateRedis) -> None:
        self.db_url = with_database(pg.admin_url, "syncengine")
        self.record = WORK / f"pg-outage-{unique()}.log"
        self.env = dict(os.environ, DATABASE_URL=self.db_url, REDIS_URL=broker.url,
                        SYNCENGINE_TEST_RECORD=str(self.record))  # fmt: skip
        migrated = subprocess.run([sys.executable, "-m", "syncengine", "db", "upgrade"], env=self.env,
                                  cwd=ROOT, capture_output=True, text=True, timeout=120)  # fmt: skip
        assert migrated.returncode == 0, migrated.stderr
        self.port = free_port()
        self.web = Proc(gunicorn_cmd(self.port, workers=2), self.env, WORK / "faults-pg-web.log")
        self.worker = Proc(celery_worker_cmd(concurrency=2), self.env, WORK / "faults-pg-worker.log")
        wait_for_port(self.port)
        wait_until(lambda: "ready." in self.worker.output(), timeout=90)

    def send(self, sender: str, n: str) -> requests.Response:
        path, payload = sample(sender, n)
        body = dumps(payload)
        return requests.post(f"http://127.0.0.1:{self.port}{path}", data=body, headers=sign(sender, body),
                             timeout=15)  # fmt: skip

    def query(self, sql: str, *params: object) -> list[tuple]:
        conn = psycopg2.connect(self.db_url, connect_timeout=5)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall()
        finally:
            conn.close()

    def runs(self, inbox_id: int) -> int:
        text = self.record.read_text() if self.record.exists() else ""
        return sum(1 for line in text.splitlines() if line.startswith(f"handler {inbox_id} "))

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()


@pytest.fixture()
def intake() -> Iterator[tuple[Intake, PrivatePostgres]]:
    pg = PrivatePostgres()
    broker = PrivateRedis()
    try:
        conn = psycopg2.connect(pg.admin_url)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE syncengine")
        conn.close()
        running = Intake(pg, broker)
        try:
            yield running, pg
        finally:
            running.stop()
    finally:
        broker.kill()
        pg.destroy()


def test_store_down_is_503_for_every_sender_nothing_half_written_and_processing_resumes(intake):
    app, pg = intake
    tag = unique()
    warm = app.send("directus", f"warm-{tag}")
    assert warm.status_code == 202
    (warm_id,) = warm.json()["accepted"]
    wait_until(lambda: app.query("SELECT status FROM inbox_events WHERE id = %s", warm_id) == [("done",)])
    before = app.query("SELECT count(*) FROM inbox_events")

    pg.stop()
    refused: list[tuple[str, str]] = []
    for round_ in range(2):
        for sender in SENDERS:
            n = f"pg-down-{tag}-{sender}-{round_}"
            response = app.send(sender, n)
            assert response.status_code == 503, (sender, response.status_code, response.text)
            assert response.headers["Retry-After"].isdigit()
            refused.append((sender, n))
        batch = {"mautic.page_on_hit": [{"hit": {"id": f"b{round_}-{i}-{tag}"}} for i in range(3)]}
        body = dumps(batch)
        response = requests.post(f"http://127.0.0.1:{app.port}/webhooks/mautic", data=body,
                                 headers=sign("mautic", body), timeout=15)  # fmt: skip
        assert response.status_code == 503
    assert requests.get(f"http://127.0.0.1:{app.port}/healthz", timeout=5).status_code == 200
    assert app.web.popen.poll() is None and app.worker.popen.poll() is None

    pg.start()
    assert app.query("SELECT count(*) FROM inbox_events") == before  # not one row, not half a batch

    accepted: list[int] = []
    for sender, n in refused:  # the senders retry after Retry-After
        response = app.send(sender, n)
        assert response.status_code == 202, response.text
        accepted += response.json()["accepted"]
    assert len(accepted) == len(refused)
    done = "SELECT count(*) FROM inbox_events WHERE id = ANY(%s) AND status = 'done'"
    wait_until(
        lambda: app.query(done, accepted) == [(len(accepted),)],
        timeout=60,
        interval=0.5,
    )
    assert all(app.runs(i) == 1 for i in accepted)
    # Processing resumed by itself: no event waited for the redelivery sweep (none is running here).
    assert app.worker.popen.poll() is None
