"""Reading receipts and supplier invoices with OpenAI vision (docs/architecture.md, Vendors' documentation),
through the `openai` package.

Chat Completions with the page images as `image_url` data URLs and a strict `json_schema` response format;
`extract_document` prepares the pages (syncengine.ocr.prepare: PDF pages rasterised, photos upright, sized
for the configured `detail`) and sends them all in one request. Model and detail come from the settings.
Retries are the SDK's alone (`max_retries`, honouring Retry-After up to two minutes), never stacked under a
loop of ours; what still fails is classified once into our error classes, and the service's breaker is
checked before and updated after. A 429 for `insufficient_quota` is marked not retryable before the SDK
sees it (the SDK would otherwise retry every 429). A refusal, a truncated answer and invalid JSON are
outcomes the caller routes to review, not crashes. Neither the API key nor image data is ever logged.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import openai

from syncengine.breaker import Breaker, breaker_for
from syncengine.errors import Permanent, Retryable, SyncError
from syncengine.http import parse_retry_after
from syncengine.ocr.prepare import Page, for_model
from syncengine.settings import get_settings

log = logging.getLogger(__name__)

SCHEMA_NAME = "invoice_extraction"
PROMPT = (
    "Extract the fields of this receipt or supplier invoice (all pages are one document). Use null for "
    "anything the document does not show; do not guess. Dates as YYYY-MM-DD, currency as an ISO 4217 code, "
    "amounts as numbers, VAT rates in percent (20 for 20 %)."
)
Status = Literal["ok", "refused", "truncated", "invalid"]


def _nullable(kind: str) -> dict[str, Any]:
    return {"type": [kind, "null"]}


def _object(properties: dict[str, Any]) -> dict[str, Any]:
    """Strict mode: every property required, nothing else allowed; absence is expressed with null."""
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }


LINE = _object(
    {
        "description": {"type": "string"},
        "quantity": _nullable("number"),
        "unit_price": _nullable("number"),
        "vat_rate": _nullable("number"),
        "amount": _nullable("number"),
    }
)
PAYMENT = _object(
    {
        "iban": _nullable("string"),
        "bic": _nullable("string"),
        "account_holder": _nullable("string"),
        "reference": _nullable("string"),
        "method": _nullable("string"),
        "terms": _nullable("string"),
    }
)
SCHEMA = _object(
    {
        "supplier": _object(
            {"name": _nullable("string"), "vat_id": _nullable("string"), "address": _nullable("string")}
        ),
        "number": _nullable("string"),
        "issue_date": _nullable("string"),
        "due_date": _nullable("string"),
        "currency": _nullable("string"),
        "lines": {"type": "array", "items": LINE},
        "net": _nullable("number"),
        "vat": _nullable("number"),
        "total": _nullable("number"),
        "payment": {"anyOf": [PAYMENT, {"type": "null"}]},
    }
)
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": SCHEMA_NAME, "schema": SCHEMA, "strict": True},
}


Image = Page  # one page, sent as an `image_url` data URL


@dataclass(frozen=True)
class Extraction:
    """What an engine read: `data` only when `status` is "ok"; `detail` says why otherwise. `engine` is
    "openai" or "tesseract" (connectors/tesseract_ocr.py returns the same shape)."""

    status: Status
    data: dict[str, Any] | None = None
    detail: str | None = None
    model: str | None = None
    request_id: str | None = None
    usage: dict[str, Any] | None = None
    engine: str = "openai"

    @property
    def ok(self) -> bool:
        return self.status == "ok"


class OpenAIOcr:
    """One client per process; `extract` is safe to call from several threads."""

    service = "openai"

    def __init__(
        self, *, api_key: str | None = None, base_url: str | None = None, model: str | None = None,
        max_retries: int = 2, timeout: float = 60.0, max_output_tokens: int = 2000, detail: str | None = None,
        breaker: Breaker | None = None,
    ) -> None:  # fmt: skip
        settings = get_settings()
        key = api_key or (settings.openai_api_key.reveal() if settings.openai_api_key else None)
        if not key:
            raise Permanent("OPENAI_API_KEY is not set")
        self.model = model or settings.openai_model
        self.max_output_tokens = max_output_tokens
        self.detail = detail or settings.openai_detail
        self.max_side = settings.ocr_max_side
        self.breaker = breaker or breaker_for(self.service)
        # The SDK's retries are the only ones (ours would multiply them); base_url None lets the SDK read
        # OPENAI_BASE_URL, else api.openai.com.
        self.client = openai.OpenAI(
            api_key=key,
            base_url=base_url or settings.openai_base_url,
            max_retries=max_retries,
            timeout=timeout,
            http_client=openai.DefaultHttpxClient(event_hooks={"response": [_no_retry_without_quota]}),
        )

    def extract_document(self, data: bytes, hint: str | None = None) -> Extraction:
        """Read a stored document: every page (PDFs rasterised) in one request, sized for `detail`.
        Raises ocr.prepare.Unreadable for bytes that are no document, besides `extract`'s errors."""
        return self.extract(for_model(data, self.detail, self.max_side), hint)

    def extract(self, images: Sequence[Image], hint: str | None = None) -> Extraction:
        """Read the document; raises Retryable/Permanent/CircuitOpen, returns every model outcome."""
        if not images:
            raise Permanent("no image to read")
        self.breaker.before_call()
        try:
            raw = self.client.chat.completions.with_raw_response.create(
                model=self.model,
                messages=self._messages(images, hint),
                response_format=RESPONSE_FORMAT,  # type: ignore[arg-type]
                max_completion_tokens=self.max_output_tokens,
            )
        except openai.OpenAIError as exc:
            error = classify(exc)
            self._update_breaker(error)
            log.warning("openai ocr failed: %s", error)
            raise error from None
        self.breaker.record_success()
        return _outcome(raw.parse(), raw.headers.get("x-request-id"))

    def _messages(self, images: Sequence[Image], hint: str | None) -> list[dict[str, Any]]:
        text = PROMPT if not hint else f"{PROMPT}\nContext: {hint}"
        content = [{"type": "text", "text": text}, *(image.part(self.detail) for image in images)]
        return [{"role": "user", "content": content}]

    def _update_breaker(self, error: SyncError) -> None:
        if isinstance(error, Retryable) and error.status != 429:
            self.breaker.record_failure()
        elif isinstance(error, Permanent) and error.status is not None:
            self.breaker.record_success()  # the service answered sanely


def classify(exc: Exception) -> SyncError:
    """The SDK's exceptions in our classes; called only once the SDK's own retries are spent."""
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = f"openai answered {status} {exc.code or exc.type or ''}".rstrip()
        if status == 429 and _quota_exhausted(exc):
            return Permanent(f"{detail}: the account has no quota left (billing)", status)
        if status in (408, 409, 429) or status >= 500:
            return Retryable(detail, _retry_after(exc.response.headers), status)
        if status in (401, 403):
            return Permanent(f"{detail}: check OPENAI_API_KEY and the project's access", status)
        return Permanent(f"{detail}: {exc.message[:300]}", status, exc.body)
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return Retryable(f"openai: {type(exc).__name__}")
    return Permanent(f"openai: {type(exc).__name__}: {exc}")


def _quota_exhausted(exc: openai.APIStatusError) -> bool:
    return "insufficient_quota" in (exc.code, exc.type)


def _retry_after(headers: Any) -> float | None:
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def _no_retry_without_quota(response: Any) -> None:
    """httpx response hook: an `insufficient_quota` 429 gets `x-should-retry: false`, which the SDK obeys."""
    if response.status_code != 429:
        return
    response.read()
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return
    if "insufficient_quota" in (error.get("code"), error.get("type")):
        response.headers["x-should-retry"] = "false"


def _outcome(completion: Any, request_id: str | None) -> Extraction:
    meta = {
        "model": completion.model,
        "request_id": request_id,
        "usage": completion.usage.model_dump() if completion.usage else None,
    }
    if not completion.choices:
        return Extraction("invalid", detail="no choices in the answer", **meta)
    choice = completion.choices[0]
    message = choice.message
    if message.refusal or choice.finish_reason == "content_filter":
        return Extraction("refused", detail=message.refusal or "content filter", **meta)
    if choice.finish_reason == "length":
        return Extraction("truncated", detail="the answer hit the output token limit", **meta)
    try:
        data = json.loads(message.content or "")
    except ValueError as exc:
        return Extraction("invalid", detail=f"not JSON: {exc}", **meta)
    missing = set(SCHEMA["required"]) - set(data) if isinstance(data, dict) else {"(an object)"}
    if missing:
        return Extraction("invalid", detail=f"missing {sorted(missing)}", **meta)
    return Extraction("ok", data=data, **meta)
