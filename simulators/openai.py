"""OpenAI Chat Completions simulator (spec ``specs/openai/openapi.yaml``, server ``.../v1``).

Answers come from a queue of canned answers (``queue_answer`` or ``/_sim/seed {"answers": [...]}``), else from
``self.responder(request_json)``, else a value synthesised from the request's ``json_schema``. An answer is a
dict with one of ``json`` (serialised into ``content``), ``content`` (sent verbatim, so invalid JSON is
possible) or ``refusal``, plus an optional ``finish_reason`` (e.g. ``"length"``).
"""

from __future__ import annotations

import json
import re
import secrets
from collections import deque
from collections.abc import Callable
from typing import Any

from werkzeug.wrappers import Request, Response

from simulators.base import Abort, Clock, Simulator, route

Answer = dict[str, Any]
_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
NO_KEY = (
    "You didn't provide an API key. You need to provide your API key in an Authorization header using "
    "Bearer auth (i.e. Authorization: Bearer YOUR_KEY), or as the password field (with blank username) "
    "if you're accessing the API from your browser and are prompted for a username and password. "
    "You can obtain an API key from https://platform.openai.com/account/api-keys."
)


def synthesize(schema: dict[str, Any]) -> Any:
    """A minimal value that satisfies a (strict-subset) JSON schema; for demos without canned answers."""
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return synthesize(schema["anyOf"][0])
    if kind == "object":
        return {k: synthesize(v) for k, v in schema.get("properties", {}).items()}
    if kind == "array":
        return []
    return {"string": "", "number": 0, "integer": 0, "boolean": False}.get(kind or "null")


def strict_problem(schema: Any, path: str = "") -> str | None:
    """The first violation of the strict-mode subset (all properties required, no additional ones)."""
    if not isinstance(schema, dict):
        return None
    if schema.get("type") == "object" or "properties" in schema:
        if schema.get("additionalProperties") is not False:
            return f"In context=({path}), 'additionalProperties' is required to be supplied and to be false."
        missing = sorted(set(schema.get("properties", {})) - set(schema.get("required", [])))
        if missing:
            return (
                f"In context=({path}), 'required' is required to be supplied and to be an array "
                f"including every key in properties. Missing '{missing[0]}'."
            )
    children = [*schema.get("properties", {}).items(), ("items", schema.get("items"))]
    children += [(f"anyOf/{i}", s) for i, s in enumerate(schema.get("anyOf", []))]
    children += [(f"$defs/{k}", s) for k, s in schema.get("$defs", {}).items()]
    for key, child in children:
        problem = strict_problem(child, f"{path}, '{key}'" if path else f"'{key}'")
        if problem:
            return problem
    return None


class OpenAISimulator(Simulator):
    vendor = "openai"
    limit_requests = 10_000  # advertised in x-ratelimit-* when no rate_limit fault is set
    limit_tokens = 30_000_000

    def __init__(self, clock: Clock | None = None, api_keys: tuple[str, ...] = ("sk-sim-openai",)) -> None:
        self.api_keys = set(api_keys)
        self.responder: Callable[[dict[str, Any]], Answer] | None = None
        super().__init__(clock)
        self.on_reset()

    def on_reset(self) -> None:
        self.answers: deque[Answer] = deque()
        self.quota_exhausted = False

    def queue_answer(
        self,
        json: Any = None,
        content: str | None = None,
        refusal: str | None = None,
        finish_reason: str | None = None,
    ) -> None:
        """Queue one answer; exactly one of ``json``/``content``/``refusal`` should be given."""
        answer: Answer = {}
        if refusal is not None:
            answer["refusal"] = refusal
        elif content is not None:
            answer["content"] = content
        else:
            answer["json"] = json
        if finish_reason:
            answer["finish_reason"] = finish_reason
        with self.lock:
            self.answers.append(answer)

    def seed(self, data: Any) -> dict[str, Any]:
        """``{"answers": [answer, ...], "quota_exhausted": bool}``."""
        with self.lock:
            for answer in (data or {}).get("answers", []):
                self.answers.append(dict(answer))
            if "quota_exhausted" in (data or {}):
                self.quota_exhausted = bool(data["quota_exhausted"])
            return {"queued": len(self.answers)}

    # ---- vendor hooks ------------------------------------------------------------------------------

    def error(
        self,
        status: int,
        message: str,
        type_: str,
        param: str | None = None,
        code: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        body = {"error": {"message": message, "type": type_, "param": param, "code": code}}
        return self.json(body, status=status, headers=headers)

    def error_response(self, status: int, message: str) -> Response:
        if status == 503:
            return self.error(503, "The server is overloaded or not ready yet.", "server_error")
        if status >= 500:
            message = "The server had an error while processing your request. Sorry about that!"
            return self.error(status, message, "server_error")
        if status == 404:
            return self.error(404, f"Invalid URL ({message})", "invalid_request_error")
        return self.error(status, message, "invalid_request_error")

    def not_found_response(self, request: Request) -> Response:
        return self.error_response(404, f"{request.method} {request.path}")

    def rate_limited_response(self, retry_after: int) -> Response:
        state = self.rate_limit_state()
        limit = state[0] if state else self.limit_requests
        message = (
            f"Rate limit reached for requests per min (RPM): Limit {limit}, Used {limit}, "
            f"Requested 1. Please try again in {retry_after}s. Visit "
            "https://platform.openai.com/account/rate-limits to learn more."
        )
        return self.error(
            429,
            message,
            "requests",
            None,
            "rate_limit_exceeded",
            headers={
                "retry-after": str(retry_after),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{retry_after}s",
            },
        )

    def authenticate(self, request: Request) -> Response | None:
        header = request.headers.get("Authorization", "")
        if not header.lower().startswith("bearer ") or not header[7:].strip():
            return self.error(401, NO_KEY, "invalid_request_error")
        key = header[7:].strip()
        if key not in self.api_keys:
            shown = f"{key[:3]}{'*' * 8}{key[-4:]}" if len(key) > 8 else key
            return self.error(
                401,
                f"Incorrect API key provided: {shown}. You can find your API key at "
                "https://platform.openai.com/account/api-keys.",
                "invalid_request_error",
                None,
                "invalid_api_key",
            )
        return None

    def after_request(self, request: Request, response: Response) -> Response:
        """Every answer carries a request id and the rate-limit headers (limits from the fault, if set)."""
        state = self.rate_limit_state()
        limit, remaining, reset_at = state or (self.limit_requests, self.limit_requests - 1, self.now())
        reset_ms = max(1, int((reset_at - self.now()) * 1000))
        defaults = {
            "x-request-id": f"req_{secrets.token_hex(16)}",
            "openai-version": "2020-10-01",
            "openai-processing-ms": "42",
            "x-ratelimit-limit-requests": str(limit),
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": f"{reset_ms}ms" if reset_ms < 1000 else f"{reset_ms // 1000}s",
            "x-ratelimit-limit-tokens": str(self.limit_tokens),
            "x-ratelimit-remaining-tokens": str(self.limit_tokens - 1000),
            "x-ratelimit-reset-tokens": "2ms",
        }
        for key, value in defaults.items():
            response.headers.setdefault(key, value)
        return response

    # ---- the endpoint -----------------------------------------------------------------------------

    @route("POST", "/v1/chat/completions")
    def chat_completions(self, request: Request) -> Response:
        body = self.body(request)
        if not isinstance(body, dict):
            message = "We could not parse the JSON body of your request."
            return self.error(400, message, "invalid_request_error")
        self._validate(body)
        if self.quota_exhausted:
            return self.error(
                429,
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                None,
                "insufficient_quota",
            )
        answer = self._next_answer(body)
        content, refusal = self._render(answer)
        finish = answer.get("finish_reason", "stop")
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        if content is not None and isinstance(limit, int) and len(content) // 4 > limit:
            content, finish = content[: limit * 4], "length"  # ~4 characters per token
        prompt = max(1, len(json.dumps(body.get("messages"))) // 4)
        completion = max(1, len(content or refusal or "") // 4)
        message = {"role": "assistant", "content": content, "refusal": refusal, "annotations": []}
        choices = [
            {"index": i, "message": message, "logprobs": None, "finish_reason": finish}
            for i in range(int(body.get("n") or 1))
        ]
        return self.json(
            {
                "id": f"chatcmpl-{secrets.token_urlsafe(21)[:29]}",
                "object": "chat.completion",
                "created": int(self.now()),
                "model": f"{body['model']}-2024-08-06" if body["model"] == "gpt-4o" else body["model"],
                "choices": choices,
                "usage": {
                    "prompt_tokens": prompt,
                    "completion_tokens": completion,
                    "total_tokens": prompt + completion,
                    "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_sim0000001",
            }
        )

    def _validate(self, body: dict[str, Any]) -> None:
        def bad(message: str, param: str | None, code: str | None = None) -> Abort:
            return Abort(self.error(400, message, "invalid_request_error", param, code))

        if not isinstance(body.get("model"), str) or not body["model"]:
            raise bad("you must provide a model parameter", None)
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise bad("[] is too short - 'messages'", "messages", "empty_array")
        if body.get("stream"):
            raise bad("stream=true is not supported by this simulator", "stream")
        fmt = body.get("response_format") or {}
        if fmt.get("type") != "json_schema":
            return
        spec = fmt.get("json_schema") or {}
        if not _NAME.match(str(spec.get("name", ""))):
            raise bad(
                "Invalid 'response_format.json_schema.name': string does not match pattern. "
                "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.",
                "response_format.json_schema.name",
                "invalid_value",
            )
        if spec.get("strict"):
            problem = strict_problem(spec.get("schema") or {})
            if problem:
                raise bad(
                    f"Invalid schema for response_format '{spec['name']}': {problem}",
                    "response_format",
                    "invalid_json_schema",
                )

    def _next_answer(self, body: dict[str, Any]) -> Answer:
        if self.answers:
            return self.answers.popleft()
        if self.responder is not None:
            return self.responder(body)
        fmt = body.get("response_format") or {}
        if fmt.get("type") == "json_schema":
            return {"json": synthesize((fmt.get("json_schema") or {}).get("schema") or {})}
        if fmt.get("type") == "json_object":
            return {"json": {}}
        return {"content": "OK"}

    @staticmethod
    def _render(answer: Answer) -> tuple[str | None, str | None]:
        if "refusal" in answer:
            return None, str(answer["refusal"])
        if "content" in answer:
            return answer["content"], None
        return json.dumps(answer.get("json")), None
