"""The OpenAI OCR connector through the official SDK against the OpenAI simulator over loopback HTTP, with
the breaker on the real Redis."""

from __future__ import annotations

import base64
import logging
import os
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from connectors.openai_ocr import SCHEMA, SCHEMA_NAME, Image, OpenAIOcr
from simulators.openai import strict_problem
from syncengine.breaker import CLOSED, OPEN, Breaker, BreakerPolicy, RedisBreakerStore
from syncengine.errors import CircuitOpen, Permanent, Retryable
from syncengine.shared_state import get_redis
from tests.connectors.conftest import OPENAI_TEST_KEY

PNG = Image(b"\x89PNG\r\n\x1a\n" + os.urandom(48), "image/png")
RECEIPT = {
    "supplier": {"name": "Café Lumière", "vat_id": "FR40303265045", "address": None},
    "number": "R-2041",
    "issue_date": "2026-11-20",
    "due_date": None,
    "currency": "EUR",
    "lines": [{"description": "Espresso", "quantity": 2, "unit_price": 2.5, "vat_rate": 10, "amount": 5.0}],
    "net": 4.55,
    "vat": 0.45,
    "total": 5.0,
    "payment": None,
}


def make(url: str, *, max_retries: int = 2, threshold: int = 5, key: str = OPENAI_TEST_KEY) -> OpenAIOcr:
    breaker = Breaker(
        f"openai-test-{uuid.uuid4().hex[:10]}",
        RedisBreakerStore(get_redis()),
        BreakerPolicy(threshold=threshold),
    )
    return OpenAIOcr(
        api_key=key, base_url=url, model="gpt-4o", max_retries=max_retries, timeout=5, breaker=breaker
    )


@pytest.fixture()
def ocr(openai_sim) -> tuple[Any, OpenAIOcr]:
    sim, url = openai_sim
    return sim, make(url)


def test_schema_is_strict_and_complete():
    assert strict_problem(SCHEMA) is None
    fields = ["supplier", "number", "issue_date", "due_date", "currency", "lines", "net", "vat", "total",
              "payment"]  # fmt: skip
    assert SCHEMA["required"] == fields
    assert set(SCHEMA["properties"]["supplier"]["properties"]) == {"name", "vat_id", "address"}
    line = SCHEMA["properties"]["lines"]["items"]["properties"]
    assert set(line) == {"description", "quantity", "unit_price", "vat_rate", "amount"}
    payment = SCHEMA["properties"]["payment"]["anyOf"][0]["properties"]
    assert {"iban", "bic", "reference"} <= set(payment)


def test_structured_answer_is_parsed(ocr):
    sim, connector = ocr
    sim.queue_answer(json=RECEIPT)
    result = connector.extract([PNG])
    assert result.ok and result.data == RECEIPT
    assert result.request_id.startswith("req_") and result.usage["total_tokens"] > 0
    [sent] = sim.requests_log("POST", "/v1/chat/completions")
    body = sent["json"]
    fmt = body["response_format"]
    assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
    assert fmt["json_schema"]["name"] == SCHEMA_NAME
    image = body["messages"][0]["content"][1]
    assert image["type"] == "image_url"
    assert image["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG.data).decode()
    assert sent["headers"]["Authorization"] == f"Bearer {OPENAI_TEST_KEY}"


def test_refusal_is_an_outcome(ocr):
    sim, connector = ocr
    sim.queue_answer(refusal="I'm sorry, I can't help with that.")
    result = connector.extract([PNG])
    assert result.status == "refused" and result.data is None and "sorry" in result.detail


def test_invalid_json_is_an_outcome(ocr):
    sim, connector = ocr
    sim.queue_answer(content='{"supplier": {"name": "Café"}, "total": 5,')
    assert connector.extract([PNG]).status == "invalid"
    sim.queue_answer(json={"total": 5})
    result = connector.extract([PNG])
    assert result.status == "invalid" and "supplier" in result.detail


def test_length_truncation_is_an_outcome(ocr):
    sim, connector = ocr
    sim.queue_answer(content='{"supplier": {"name": "Caf', finish_reason="length")
    result = connector.extract([PNG])
    assert result.status == "truncated" and result.data is None


def test_429_with_retry_after_is_retried_once_by_the_sdk(ocr):
    sim, connector = ocr
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 1})
    sim.queue_answer(json=RECEIPT)
    started = time.monotonic()
    assert connector.extract([PNG]).ok
    assert time.monotonic() - started >= 1.0
    assert [e["status"] for e in sim.requests_log("POST")] == [429, 200]
    assert connector.breaker.state() == CLOSED


def test_insufficient_quota_is_permanent_and_not_retried(ocr):
    sim, connector = ocr
    sim.quota_exhausted = True
    with pytest.raises(Permanent) as raised:
        connector.extract([PNG])
    assert raised.value.status == 429 and "quota" in str(raised.value)
    assert sim.count("POST") == 1


def test_wrong_key_is_permanent(openai_sim):
    sim, url = openai_sim
    with pytest.raises(Permanent) as raised:
        make(url, key="sk-not-the-right-key-0000").extract([PNG])
    assert raised.value.status == 401 and sim.count("POST") == 1


def test_5xx_after_the_sdk_retries_is_retryable_and_opens_the_breaker(openai_sim):
    sim, url = openai_sim
    connector = make(url, max_retries=1, threshold=1)
    sim.set_faults(outage=True)
    with pytest.raises(Retryable) as raised:
        connector.extract([PNG])
    assert raised.value.status == 503 and not isinstance(raised.value, CircuitOpen)
    assert sim.count("POST") == 2  # the SDK's one retry; none of ours on top
    assert connector.breaker.state() == OPEN
    with pytest.raises(CircuitOpen):
        connector.extract([PNG])
    assert sim.count("POST") == 2


def test_a_timeout_is_retryable_and_counts_against_the_breaker(openai_sim):
    sim, url = openai_sim
    connector = make(url, max_retries=1, threshold=1)
    connector.client = connector.client.with_options(timeout=0.3)
    sim.set_faults(latency_ms=1000)
    with pytest.raises(Retryable) as raised:
        connector.extract([PNG])
    sim.clear_faults()
    assert "APITimeoutError" in str(raised.value) and raised.value.status is None
    assert sim.count("POST") == 2  # the SDK retried the timeout once, as configured
    assert connector.breaker.state() == OPEN


@pytest.fixture()
def plain_log_records() -> Iterator[None]:
    """Without the redaction factory (tests elsewhere install it), so a leak cannot hide behind it."""
    factory = logging.getLogRecordFactory()
    logging.setLogRecordFactory(logging.LogRecord)
    yield
    logging.setLogRecordFactory(factory)


def test_no_api_key_or_image_data_in_logs(openai_sim, caplog, plain_log_records):
    sim, url = openai_sim
    caplog.set_level(logging.DEBUG)
    connector = make(url, max_retries=1)
    sim.queue_answer(json=RECEIPT)
    connector.extract([PNG])
    sim.set_faults(fixed_status=500)
    with pytest.raises(Retryable) as failed:
        connector.extract([PNG])
    sim.clear_faults()
    sim.quota_exhausted = True
    with pytest.raises(Permanent) as refused:
        connector.extract([PNG])
    text = caplog.text + str(failed.value) + str(refused.value)
    assert caplog.records  # the SDK and the connector did log
    encoded = base64.b64encode(PNG.data).decode()
    for leak in (OPENAI_TEST_KEY, OPENAI_TEST_KEY[-12:], encoded[:24], "data:image/png;base64"):
        assert leak not in text
