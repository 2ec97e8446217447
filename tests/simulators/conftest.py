"""Fixtures for the simulator tests: in-process servers on loopback ports and a tiny webhook receiver.

These tests need no database, broker or worker, so the session-wide ``store`` fixture of ``tests/conftest.py``
(autouse, creates a Postgres database) is overridden here with a no-op.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from simulators.base import RunningServer, Simulator


@pytest.fixture(scope="session", autouse=True)
def store() -> Iterator[str]:
    yield "no-database"


@pytest.fixture()
def serve() -> Iterator[Callable[[Simulator], RunningServer]]:
    """``serve(sim)`` starts it on a free loopback port; everything started is stopped afterwards."""
    running: list[RunningServer] = []

    def start(sim: Simulator) -> RunningServer:
        server = sim.serve()
        running.append(server)
        return server

    yield start
    for server in running:
        server.stop()


class HookReceiver:
    """Records every request; answers with ``statuses`` in turn (the last one repeats), default 200."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.statuses: list[int] = [200]
        self.lock = threading.Lock()
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def app(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        request = Request(environ)
        with self.lock:
            body = request.get_data()
            self.received.append(
                {
                    "method": request.method,
                    "path": request.path,
                    "headers": dict(request.headers),
                    "body": body,
                    "json": json.loads(body) if body else None,
                }
            )
            status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        return Response(b"{}", status=status, mimetype="application/json")(environ, start_response)

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture()
def hook_receiver() -> Iterator[HookReceiver]:
    receiver = HookReceiver()
    yield receiver
    receiver.stop()
