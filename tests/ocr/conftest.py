"""A deployment for the OCR flow: the OpenAI (answering from the fixtures' ground truth), Invoice Ninja,
ERPNext and Directus simulators, the receiver under gunicorn and a Celery worker on the `intake` and `ocr`
queues, on a Redis database of their own; Directus' Flow sends `files.upload` to the receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from simulators import REGISTRY
from simulators.openai import OpenAISimulator
from simulators.receipt_answers import GroundTruthResponder
from simulators.wiring import engine_env, subscribe
from tests.conftest import REDIS_BASE, WORK
from tests.servers import claim_redis_db
from tests.support import SECRETS, Proc, celery_worker_cmd, free_port, gunicorn_cmd, wait_for_port, wait_until

OPENAI_KEY = "sk-ocr-flow-7d20e4b95a1c"
DOCS_TOKEN = "docs-ocr-flow-3f9a61c2e8"
MAX_DOCUMENT_BYTES = 2 * 1024 * 1024


@dataclass
class OcrDeployment:
    sims: dict[str, Any]
    receiver: str
    redis_url: str
    env: dict[str, str]
    truth: GroundTruthResponder
    logs: list[Proc]

    def log_text(self) -> str:
        return "\n".join(proc.output() for proc in self.logs)


@pytest.fixture(scope="package")
def ocr_deployment(store: str) -> Iterator[OcrDeployment]:
    truth = GroundTruthResponder()
    openai_sim = OpenAISimulator(api_keys=(OPENAI_KEY,))
    openai_sim.responder = truth
    sims = {
        "openai": openai_sim,
        "invoiceninja": REGISTRY["invoiceninja"](),
        "erpnext": REGISTRY["erpnext"](),
        "directus": REGISTRY["directus"](),
    }
    servers = {name: sim.serve() for name, sim in sims.items()}
    redis_url = f"{REDIS_BASE}/{claim_redis_db(REDIS_BASE)}"
    redis.Redis.from_url(redis_url).flushdb()
    port = free_port()
    receiver = f"http://127.0.0.1:{port}"
    env = dict(
        os.environ,
        REDIS_URL=redis_url, SYNCENGINE_DOCUMENTS_TOKEN=DOCS_TOKEN,
        SYNCENGINE_MAX_DOCUMENT_BYTES=str(MAX_DOCUMENT_BYTES),
        OPENAI_API_KEY=OPENAI_KEY, OPENAI_BASE_URL=f"{servers['openai'].url}/v1",
        **engine_env({name: server.url for name, server in servers.items()}),
    )  # fmt: skip
    subscribe({"directus": sims["directus"]}, receiver, SECRETS)
    web = Proc(gunicorn_cmd(port, workers=1), env, WORK / "ocr-web.log")
    worker = Proc(celery_worker_cmd(concurrency=1, queues="intake,ocr"), env, WORK / "ocr-worker.log")
    try:
        wait_for_port(port)
        wait_until(lambda: "ready." in worker.output(), timeout=60)
        yield OcrDeployment(sims, receiver, redis_url, env, truth, [web, worker])
    finally:
        web.stop()
        worker.stop()
        for server in servers.values():
            server.stop()
