"""A deployment for the OCR flow: the OpenAI (answering from the fixtures' ground truth), Invoice Ninja,
ERPNext and Directus simulators, the receiver under gunicorn and a Celery worker on the `intake` and `ocr`
queues, on a Redis database of their own; Directus' Flow sends `files.upload` to the receiver."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from simulators import REGISTRY, stack
from simulators.openai import OpenAISimulator
from simulators.receipt_answers import GroundTruthResponder
from tests.conftest import REDIS_BASE, WORK
from tests.servers import claim_redis_db
from tests.support import SECRETS

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
    stack: stack.Stack

    def log_text(self) -> str:
        """The receiver's and the worker's output so far."""
        return self.stack.output()

    @property
    def worker_pid(self) -> int:
        return self.stack.workers[0].pid


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
    redis_url = f"{REDIS_BASE}/{claim_redis_db(REDIS_BASE)}"
    redis.Redis.from_url(redis_url).flushdb()
    extra_env = {"LOG_LEVEL": os.environ["LOG_LEVEL"], "SYNCENGINE_DOCUMENTS_TOKEN": DOCS_TOKEN,
                 "SYNCENGINE_MAX_DOCUMENT_BYTES": str(MAX_DOCUMENT_BYTES),
                 "OPENAI_API_KEY": OPENAI_KEY}  # fmt: skip
    layout = stack.Layout(web_workers=1, concurrency=1, queues="intake,ocr", loglevel="INFO",
                          log=WORK / "ocr-engine.log", extra_env=extra_env)  # fmt: skip
    started = stack.start(sims, home=Path(os.environ["SYNCENGINE_HOME"]), database_url=store,
                          redis_url=redis_url, layout=layout, webhook_secrets=SECRETS,
                          subscribed=["directus"])  # fmt: skip
    try:
        yield OcrDeployment(sims, started.receiver, redis_url, started.env, truth, started)
    finally:
        started.stop()
