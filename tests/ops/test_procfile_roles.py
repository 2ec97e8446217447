"""The Procfile, run as Heroku and Dokku run it: each role's command through `sh -c`, with PORT and the
add-ons' URLs in the environment, against the real Postgres and a Redis database of its own. The web role
serves /healthz, /readyz and /metrics; the worker consumes what web publishes; beat schedules through
redbeat; the ocr worker listens on its queue; flower refuses to start, or to answer, without credentials;
and /metrics moves as events flow."""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import redis
import requests

from tests.conftest import REDIS_BASE, WORK
from tests.servers import claim_redis_db
from tests.support import ROOT, Proc, dumps, free_port, sample, sign, wait_for_port, wait_until

BIN = str(Path(sys.executable).parent)


def procfile() -> dict[str, str]:
    roles = {}
    for line in (ROOT / "Procfile").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            role, _, command = line.partition(":")
            roles[role.strip()] = command.strip()
    return roles


def start(role: str, env: dict[str, str]) -> Proc:
    return Proc(["sh", "-c", procfile()[role]], env, WORK / f"procfile-{role}.log")


@dataclass
class Roles:
    env: dict[str, str]
    web: str
    procs: dict[str, Proc]
    intake: list[dict]  # the messages web published before any worker ran


def queued(redis_url: str, queue: str) -> list[dict]:
    """The Celery messages waiting in a Redis queue, decoded: task name, args, kwargs."""
    out = []
    for raw in redis.Redis.from_url(redis_url).lrange(queue, 0, -1):
        envelope = json.loads(raw)
        args, kwargs, _embed = json.loads(base64.b64decode(envelope["body"]))
        out.append({"task": envelope["headers"]["task"], "args": args, "kwargs": kwargs, "raw": raw.decode()})
    return out


@pytest.fixture(scope="module")
def roles(store: str) -> Iterator[Roles]:
    redis_url = f"{REDIS_BASE}/{claim_redis_db(REDIS_BASE)}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    env = dict(
        os.environ, PATH=f"{BIN}:{os.environ.get('PATH', '')}", REDIS_URL=redis_url, PORT=str(port),
        SYNCENGINE_BIND_HOST="127.0.0.1", WEB_CONCURRENCY="2", WORKER_CONCURRENCY="1",
    )  # fmt: skip
    release = subprocess.run(["sh", "-c", procfile()["release"]], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=120)  # fmt: skip
    assert release.returncode == 0, release.stderr
    procs = {"web": start("web", env)}
    try:
        wait_for_port(port, timeout=60)
        # One webhook before any worker runs, so the message web published can be read off the queue.
        path, payload = sample("erpnext", "ops-args-1")
        body = dumps(payload)
        url = f"http://127.0.0.1:{port}{path}"
        assert requests.post(url, data=body, headers=sign("erpnext", body), timeout=5).status_code == 202
        intake = wait_until(lambda: queued(redis_url, "intake"), timeout=30)
        procs.update({role: start(role, env) for role in ("worker", "ocr", "beat")})
        for role in ("worker", "ocr"):
            wait_until(lambda role=role: "ready." in procs[role].output(), timeout=90)
        yield Roles(env, f"http://127.0.0.1:{port}", procs, intake)
    finally:
        for proc in procs.values():
            proc.stop()


def test_procfile_has_every_role():
    roles = procfile()
    assert set(roles) == {"release", "web", "worker", "ocr", "beat", "flower"}
    assert "--queues intake,sync,sweeps" in roles["worker"] and "--queues ocr" in roles["ocr"]


def test_web_publishes_ids_only(roles: Roles):
    """Flower and the broker show task arguments: the receiver's message carries the inbox id, no payload."""
    [message] = roles.intake
    assert message["task"] == "tasks.dispatch.process" and message["kwargs"] == {}
    assert len(message["args"]) == 1 and isinstance(message["args"][0], int)
    assert "ops-args-1" not in message["raw"] and "Call ops-args-1" not in message["raw"]


def test_web_serves_health_and_metrics(roles: Roles):
    assert requests.get(roles.web + "/healthz", timeout=5).json() == {"status": "ok"}
    ready = requests.get(roles.web + "/readyz", timeout=5)
    assert ready.status_code == 200 and ready.json() == {
        "status": "ok",
        "store": True,
        "schema": True,
        "broker": True,
        "redis_keeps_keys": True,
    }
    scrape = requests.get(roles.web + "/metrics", timeout=10)
    assert scrape.status_code == 200 and scrape.headers["Content-Type"].startswith("text/plain")
    for family in ("syncengine_inbox_events", "syncengine_breaker_state", "syncengine_queue_depth",
                   "syncengine_oldest_unprocessed_event_age_seconds"):  # fmt: skip
        assert f"# TYPE {family} gauge" in scrape.text


def metric(text: str, name: str, **labels: str) -> float:
    """One sample's value from a Prometheus text scrape; 0 when the series does not exist yet."""
    for line in text.splitlines():
        m = re.match(r"^(\w+)(?:\{(.*)\})? (\S+)$", line)
        if m and m.group(1) == name:
            found = dict(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
            if all(found.get(k) == v for k, v in labels.items()):
                return float(m.group(3))
    return 0.0


def scrape(roles: Roles) -> str:
    return requests.get(roles.web + "/metrics", timeout=10).text


def test_worker_consumes_and_metrics_move_as_events_flow(roles: Roles):
    from syncengine.celery_app import app
    from tasks.push import push

    before = scrape(roles)
    path, payload = sample("mautic", "ops-metrics-1")
    body = dumps(payload)
    answer = requests.post(roles.web + path, data=body, headers=sign("mautic", body), timeout=5)
    assert answer.status_code == 202
    plain = {"Content-Type": "application/json"}
    unsigned = requests.post(roles.web + path, data=body, headers=plain, timeout=5)
    assert unsigned.status_code == 401
    # A push of a record that does not exist ends "gone": a real push task through the worker role.
    with app.connection_for_write(roles.env["REDIS_URL"]) as conn:
        push.apply_async((2**40, "erpnext"), connection=conn)

    def moved() -> str | None:
        text = scrape(roles)
        done = metric(text, "syncengine_inbox_events", status="done")
        ok = (
            metric(text, "syncengine_webhooks_received_total", sender="mautic", code="202")
            == metric(before, "syncengine_webhooks_received_total", sender="mautic", code="202") + 1
            and metric(text, "syncengine_webhooks_received_total", sender="mautic", code="401")
            == metric(before, "syncengine_webhooks_received_total", sender="mautic", code="401") + 1
            and done >= metric(before, "syncengine_inbox_events", status="done") + 1
            and metric(text, "syncengine_pushes_total", system="erpnext", outcome="gone")
            == metric(before, "syncengine_pushes_total", system="erpnext", outcome="gone") + 1
        )
        return text if ok else None

    wait_until(moved, timeout=60, interval=0.5)

    # The worker role wrote one structured line for the event it handled.
    def handled_line() -> str | None:
        lines = roles.procs["worker"].output().splitlines()
        return next((x for x in lines if '"inbox_event_handled"' in x and "ops-metrics-1" in x), None)

    line = json.loads(wait_until(handled_line, timeout=30).split("] ", 1)[1])
    assert (line["sender"], line["type"], line["outcome"]) == ("mautic", "mautic.page_on_hit", "done")
    assert line["duration_ms"] >= 0 and line["attempt"] == 1


def test_beat_schedules_through_redbeat(roles: Roles):
    client = redis.Redis.from_url(roles.env["REDIS_URL"])

    def scheduled() -> list[bytes]:
        return client.zrange("syncengine:redbeat::schedule", 0, -1)

    names = wait_until(scheduled, timeout=60)
    assert any(b"redeliver" in name for name in names), names
    assert wait_until(lambda: client.get("syncengine:redbeat::lock"))  # this beat holds the single-beat lock


def test_ocr_worker_listens_on_the_ocr_queue_only(roles: Roles):
    queues = re.findall(r"\.> (\w+)\s+exchange=", roles.procs["ocr"].output())
    assert queues == ["ocr"]


def test_flower_refuses_without_credentials_and_answers_with_them(roles: Roles):
    env = {k: v for k, v in roles.env.items() if not k.startswith("FLOWER_")}
    refused = subprocess.run(["sh", "-c", procfile()["flower"]], env=env, cwd=ROOT, capture_output=True,
                             text=True, timeout=60)  # fmt: skip
    assert refused.returncode == 2 and "refusing to start Flower" in refused.stderr

    port = free_port()
    flower = start("flower", {**env, "PORT": str(port), "FLOWER_BASIC_AUTH": "ops:correct-horse-battery"})
    try:
        wait_for_port(port, timeout=60)
        url = f"http://127.0.0.1:{port}/workers"
        assert requests.get(url, timeout=10).status_code == 401
        assert requests.get(url, auth=("ops", "wrong"), timeout=10).status_code == 401
        assert requests.get(url, auth=("ops", "correct-horse-battery"), timeout=10).status_code == 200
        assert "correct-horse-battery" not in flower.output()
    finally:
        flower.stop()
