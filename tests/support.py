"""Helpers shared by the tests: vendor-exact signing, child processes, bounded waiting."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

SECRETS = {
    "invoiceninja": "in-secret-0f3a9c",
    "revolut": "wsk_rev-secret-7d21e4",
    "erpnext": "erp-secret-5b8c11",
    "mautic": "mautic-secret-a4e902",
    "directus": "directus-secret-33c7f0",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(predicate: Callable[[], Any], timeout: float = 20.0, interval: float = 0.1) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    def open_() -> bool:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return True
        except OSError:
            return False

    wait_until(open_, timeout)


class Proc:
    """A child process in its own process group, stopped (or killed) with everything it started."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self.log_path = log_path
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        self.popen = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)

    def stop(self, timeout: float = 15.0) -> None:
        self.signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.popen.wait(timeout=5)
        self._log.close()

    def output(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")


def celery_worker_cmd(concurrency: int = 2, queues: str = "intake,sync,sweeps") -> list[str]:
    return [
        sys.executable, "-m", "celery", "-A", "syncengine.celery_app", "worker", "-Q", queues,
        "--concurrency", str(concurrency), "--loglevel", "INFO", "--without-gossip", "--without-mingle",
    ]  # fmt: skip


def gunicorn_cmd(port: int, workers: int = 2) -> list[str]:
    return [
        sys.executable, "-m", "gunicorn", "webhooks.app:create_app()", "--bind", f"127.0.0.1:{port}",
        "--workers", str(workers), "--log-level", "warning",
    ]  # fmt: skip


# Signing exactly as each vendor signs (docs/architecture.md, Vendors' documentation), written independently
# of the receiver's code.


def _hmac(secret: str, message: bytes) -> bytes:
    return hmac.new(secret.encode(), message, hashlib.sha256).digest()


def dumps(payload: Any) -> bytes:
    return json.dumps(payload).encode()


def sign(
    sender: str, body: bytes, secret: str | None = None, timestamp_ms: int | None = None
) -> dict[str, str]:
    secret = SECRETS[sender] if secret is None else secret
    headers = {"Content-Type": "application/json"}
    if sender in ("invoiceninja", "directus"):
        headers["X-Webhook-Secret"] = secret
    elif sender == "erpnext":
        headers["X-Frappe-Webhook-Signature"] = base64.b64encode(_hmac(secret, body)).decode()
    elif sender == "mautic":
        headers["Webhook-Signature"] = base64.b64encode(_hmac(secret, body)).decode()
    elif sender == "revolut":
        ts = str(int(time.time() * 1000) if timestamp_ms is None else timestamp_ms)
        headers["Revolut-Request-Timestamp"] = ts
        headers["Revolut-Signature"] = "v1=" + _hmac(secret, b"v1." + ts.encode() + b"." + body).hex()
    return headers


def sample(sender: str, n: int | str = 1, test: dict | None = None) -> tuple[str, dict]:
    """(URL path, body) of a realistic event of the recording plugin's type for each sender."""
    extra = {"test": test} if test else {}
    if sender == "invoiceninja":
        return "/webhooks/invoiceninja/create_quote", {
            "id": f"q{n}", "number": f"Q-{n}", "updated_at": 1732000000, "line_items": [], **extra,
        }  # fmt: skip
    if sender == "revolut":
        data = {"id": f"pl-{n}", "state": "created", "created_at": "2026-11-25T10:00:00Z", **extra}
        return "/webhooks/revolut", {
            "event": "PayoutLinkCreated",
            "timestamp": "2026-11-25T10:00:00Z",
            "data": data,
        }
    if sender == "erpnext":
        return "/webhooks/erpnext", {
            "event": "on_update", "doctype": "ToDo", "name": f"TODO-{n}",
            "modified": "2026-11-25 10:00:00",
            "doc": {"doctype": "ToDo", "name": f"TODO-{n}", "description": f"Call {n}"}, **extra,
        }  # fmt: skip
    if sender == "mautic":
        item = {"hit": {"id": n, "url": "https://example.test/pricing"},
                "timestamp": "2026-11-25T10:00:00+00:00", **extra}  # fmt: skip
        return "/webhooks/mautic", {"mautic.page_on_hit": [item]}
    if sender == "directus":
        return "/webhooks/directus", {
            "event": "test_events.items.create", "payload": {"note": f"d{n}"}, "key": n,
            "collection": "test_events", **extra,
        }  # fmt: skip
    raise ValueError(sender)


SENDERS = tuple(SECRETS)
