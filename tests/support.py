"""Helpers shared by the tests: child processes, bounded waiting, and (from simulators.samples, which the
benchmarks use too) the signed sample webhooks."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from simulators.samples import SECRETS, SENDERS, dumps, sample, sign  # noqa: F401 - the tests take them here
from simulators.stack import free_port, web_command, worker_command  # noqa: F401 - one launcher's

ROOT = Path(__file__).resolve().parents[1]


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


class Child:
    """A child process and the file its output goes to, as a test looks at them (whoever started it)."""

    def __init__(self, popen: subprocess.Popen, log_path: Path) -> None:
        self.popen = popen
        self.log_path = log_path

    def output(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""


class Proc(Child):
    """A child process in its own process group, stopped (or killed) with everything it started."""

    def __init__(self, cmd: list[str], env: dict[str, str], log_path: Path) -> None:
        self._log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        popen = subprocess.Popen(
            cmd, env=env, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        super().__init__(popen, log_path)

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


def celery_worker_cmd(concurrency: int = 2, queues: str = "intake,sync,sweeps") -> list[str]:
    return worker_command(queues, concurrency)


def gunicorn_cmd(port: int, workers: int = 2) -> list[str]:
    return web_command(port, workers)
