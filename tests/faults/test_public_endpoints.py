"""The public surface closed by default: /metrics needs its token unless the receiver binds loopback only,
/readyz tells the public only ready or not, and Flower's own /metrics and /healthcheck ask for its
credentials like every other Flower page."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
import requests
from flask.testing import FlaskClient

from syncengine.redaction import redact
from syncengine.settings import get_settings
from tests.conftest import WORK
from tests.support import ROOT, Proc, free_port, wait_for_port

TOKEN = "metrics-token-4c1e9a7b2d"

ALL_READY = {"status": "ok", "store": True, "schema": True, "broker": True, "redis_keeps_keys": True}


@pytest.fixture()
def public(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The receiver as Heroku runs it: bound to every interface."""
    monkeypatch.setenv("SYNCENGINE_BIND_HOST", "0.0.0.0")
    monkeypatch.delenv("SYNCENGINE_METRICS_TOKEN", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def app_client() -> FlaskClient:
    from webhooks.app import create_app

    return create_app().test_client()


def test_without_a_token_a_public_receiver_keeps_its_details(public, caplog):
    with caplog.at_level(logging.WARNING):
        client = app_client()
    assert "/metrics is closed: set SYNCENGINE_METRICS_TOKEN" in caplog.text  # said once, at start
    assert redact(caplog.text) == caplog.text  # the advice reads whole in the log, not as "[REDACTED]"
    scrape = client.get("/metrics")
    assert scrape.status_code == 403 and "set SYNCENGINE_METRICS_TOKEN" in scrape.text
    assert "syncengine_inbox_events" not in scrape.text
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json == {"status": "ok"}
    assert client.get("/healthz").status_code == 200


def test_with_a_token_only_its_bearer_reads_the_details(public, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SYNCENGINE_METRICS_TOKEN", TOKEN)
    get_settings.cache_clear()
    client = app_client()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN[:-1]}):
        scrape = client.get("/metrics", headers=headers)
        assert scrape.status_code == 401 and scrape.headers["WWW-Authenticate"] == "Bearer"
        assert client.get("/readyz", headers=headers).json == {"status": "ok"}
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    scrape = client.get("/metrics", headers=bearer)
    assert scrape.status_code == 200 and "# TYPE syncengine_inbox_events gauge" in scrape.text
    assert client.get("/readyz", headers=bearer).json == ALL_READY


def test_a_receiver_on_loopback_shows_its_details_without_a_token(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("SYNCENGINE_METRICS_TOKEN", raising=False)
    for host in ("127.0.0.1", "::1", "localhost"):
        monkeypatch.setenv("SYNCENGINE_BIND_HOST", host)
        get_settings.cache_clear()
        client = app_client()
        assert client.get("/metrics").status_code == 200
        assert client.get("/readyz").json == ALL_READY
    get_settings.cache_clear()


def test_flower_asks_for_credentials_on_its_metrics_and_healthcheck_too():
    port = free_port()
    env = dict(os.environ, PORT=str(port), FLOWER_BASIC_AUTH="ops:flower-pass-8e2b")
    flower = Proc([sys.executable, "-m", "syncengine", "flower"], env, WORK / "flower-auth.log")
    try:
        wait_for_port(port, timeout=60)
        base = f"http://127.0.0.1:{port}"
        for path in ("/metrics", "/healthcheck", "/workers", "/api/workers"):
            anonymous = requests.get(base + path, timeout=10)
            assert anonymous.status_code == 401, (path, anonymous.status_code)
            assert requests.get(base + path, auth=("ops", "wrong"), timeout=10).status_code == 401, path
        assert requests.get(base + "/healthcheck", auth=("ops", "flower-pass-8e2b"), timeout=10).text == "OK"
        scrape = requests.get(base + "/metrics", auth=("ops", "flower-pass-8e2b"), timeout=10)
        assert scrape.status_code == 200 and "flower_events_total" in scrape.text
    finally:
        flower.stop()


def test_flower_module_refuses_to_start_open():
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOWER_")}
    run = subprocess.run([sys.executable, "-m", "commands.flower_cmd", "flower"], env=env, cwd=ROOT,
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode != 0 and "refusing to start Flower" in run.stderr
    assert "Traceback" not in run.stderr
