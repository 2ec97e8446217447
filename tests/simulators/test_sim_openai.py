"""OpenAI simulator: the Chat Completions format, canned answers, errors; also driven by the official SDK."""

from __future__ import annotations

import json

import openai
import pytest
import requests
from pydantic import BaseModel

from simulators.openai import OpenAISimulator, strict_problem, synthesize

KEY = "sk-sim-openai"
A = {"Authorization": f"Bearer {KEY}"}
SCHEMA = {
    "type": "object",
    "properties": {
        "number": {"type": "string"},
        "total": {"type": "number"},
        "lines": {"type": "array", "items": {"type": "string"}},
    },
    "required": ["number", "total", "lines"],
    "additionalProperties": False,
}
FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "invoice_extraction", "schema": SCHEMA, "strict": True},
}
IMAGE = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo=", "detail": "auto"}}


class Extraction(BaseModel):
    number: str
    total: float
    lines: list[str]


@pytest.fixture()
def oai(serve):
    sim = OpenAISimulator()
    return sim, serve(sim).url


def chat(url: str, headers: dict | None = None, **body) -> requests.Response:
    payload = {
        "model": "gpt-4o",
        "messages": [{"role": "user", "content": [{"type": "text", "text": "Extract the invoice."}, IMAGE]}],
        **body,
    }
    headers = A if headers is None else headers
    return requests.post(f"{url}/v1/chat/completions", json=payload, headers=headers, timeout=5)


def test_auth_errors(oai):
    _, url = oai
    for headers, code in (({}, None), ({"Authorization": "Bearer sk-wrong-key-123"}, "invalid_api_key")):
        r = chat(url, headers=headers)
        assert r.status_code == 401
        err = r.json()["error"]
        assert set(err) == {"message", "type", "param", "code"} and err["code"] == code
        assert err["type"] == "invalid_request_error"


def test_response_format_and_headers(oai):
    sim, url = oai
    sim.queue_answer(json={"number": "INV-7", "total": 12.5, "lines": ["a"]})
    r = chat(url, response_format=FORMAT)
    body = r.json()
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    assert isinstance(body["created"], int) and body["model"].startswith("gpt-4o")
    [choice] = body["choices"]
    assert choice["index"] == 0 and choice["finish_reason"] == "stop"
    assert choice["message"]["role"] == "assistant" and choice["message"]["refusal"] is None
    assert json.loads(choice["message"]["content"]) == {"number": "INV-7", "total": 12.5, "lines": ["a"]}
    usage = body["usage"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
    assert r.headers["x-request-id"].startswith("req_")
    assert {"x-ratelimit-limit-requests", "x-ratelimit-remaining-tokens"} <= {k.lower() for k in r.headers}


def test_canned_refusal_invalid_json_and_length(oai):
    _, url = oai
    requests.post(
        f"{url}/_sim/seed",
        json={
            "answers": [
                {"refusal": "I can't help with that."},
                {"content": "{not json"},
                {"json": {"number": "x"}, "finish_reason": "length"},
            ]
        },
        timeout=5,
    )
    refused = chat(url, response_format=FORMAT).json()["choices"][0]["message"]
    assert refused["content"] is None and refused["refusal"] == "I can't help with that."
    assert chat(url).json()["choices"][0]["message"]["content"] == "{not json"
    assert chat(url).json()["choices"][0]["finish_reason"] == "length"


def test_max_tokens_truncates(oai):
    sim, url = oai
    sim.queue_answer(content="x" * 400)
    choice = chat(url, max_completion_tokens=10).json()["choices"][0]
    assert choice["finish_reason"] == "length" and len(choice["message"]["content"]) == 40


def test_responder_and_synthesised_default(oai):
    sim, url = oai
    default = json.loads(chat(url, response_format=FORMAT).json()["choices"][0]["message"]["content"])
    assert default == {"number": "", "total": 0, "lines": []}
    sim.responder = lambda body: {"json": {"echo": body["model"]}}
    assert chat(url).json()["choices"][0]["message"]["content"] == '{"echo": "gpt-4o"}'


def test_request_validation(oai):
    _, url = oai
    loose = {**FORMAT, "json_schema": {**FORMAT["json_schema"], "schema": {**SCHEMA, "required": ["number"]}}}
    r = chat(url, response_format=loose)
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json_schema"
    bad_name = {**FORMAT, "json_schema": {**FORMAT["json_schema"], "name": "has space"}}
    assert chat(url, response_format=bad_name).status_code == 400
    assert chat(url, messages=[]).json()["error"]["param"] == "messages"


def test_rate_limit_and_quota(oai):
    sim, url = oai
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 2})
    r = chat(url)
    assert r.status_code == 429 and r.headers["retry-after"] == "2"
    assert r.json()["error"]["code"] == "rate_limit_exceeded"
    assert r.headers["x-ratelimit-remaining-requests"] == "0"
    sim.seed({"quota_exhausted": True})
    r = chat(url)
    assert r.status_code == 429 and r.json()["error"]["code"] == "insufficient_quota"


def test_official_sdk_parses_against_the_simulator(oai):
    sim, url = oai
    client = openai.OpenAI(api_key=KEY, base_url=f"{url}/v1", max_retries=0, timeout=5)
    sim.queue_answer(json={"number": "INV-9", "total": 99.0, "lines": ["x", "y"]})
    completion = client.chat.completions.parse(
        model="gpt-4o-2024-08-06",
        response_format=Extraction,
        messages=[{"role": "user", "content": [{"type": "text", "text": "Extract."}, IMAGE]}],
    )
    assert completion.choices[0].message.parsed == Extraction(number="INV-9", total=99.0, lines=["x", "y"])
    sim.queue_answer(json={"number": "x"}, finish_reason="length")
    with pytest.raises(openai.LengthFinishReasonError):
        client.chat.completions.parse(
            model="gpt-4o", response_format=Extraction, messages=[{"role": "user", "content": "Extract."}]
        )
    sim.set_faults(rate_limit_storm={"count": 1, "retry_after": 1})
    with pytest.raises(openai.RateLimitError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])
    bad = openai.OpenAI(api_key="sk-nope", base_url=f"{url}/v1", max_retries=0, timeout=5)
    with pytest.raises(openai.AuthenticationError):
        bad.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "hi"}])


def test_schema_helpers():
    assert strict_problem(SCHEMA) is None
    assert "additionalProperties" in strict_problem({"type": "object", "properties": {}})
    assert synthesize({"type": ["string", "null"]}) == ""
