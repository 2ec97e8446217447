"""What every part of the Revolut simulator shares: timestamps as Revolut prints them and its error bodies."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from typing import Any

from werkzeug.wrappers import Response

from simulators.base import Abort, Simulator

UNAUTHORIZED = {"message": "The request should be authorized."}  # [guide] and the /counterparties 401 example
RATE_LIMITED = "Request rate limit has been reached. Try again later."
# Status -> (code, whether Revolut answers with an ``ErrorWithId``), for errors raised by the base (faults).
_STATUS_CODES = {
    403: (9002, True),
    404: (3006, False),
    405: (2101, False),
    429: (3162, True),
    500: (5000, True),
    503: (5003, True),
}


def iso(ts: float) -> str:
    """Revolut prints microseconds and ``Z``: ``2023-01-26T16:22:21.753463Z``."""
    return datetime.fromtimestamp(ts, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_ts(value: str) -> datetime:
    """``from``/``to``/``created_before`` accept an ISO date or date-time; naive values are UTC."""
    text = value.strip()
    if len(text) == 10:
        d = date.fromisoformat(text)
        return datetime(d.year, d.month, d.day, tzinfo=UTC)
    dt = datetime.fromisoformat(text)
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_dt(ts: str) -> datetime:
    return datetime.fromisoformat(ts)


class RevolutBase(Simulator):
    """Error shapes and helpers; the OAuth, webhook and banking parts are mixins on top of it."""

    vendor = "revolut"

    def fail(self, status: int, code: int, message: str, *, with_id: bool = False, **extra: Any) -> Abort:
        """An ``Abort`` carrying ``{"code","message"}`` (``ErrorWithId`` adds ``error_id``)."""
        body: dict[str, Any] = {"error_id": str(uuid.uuid4())} if with_id else {}
        body.update(code=code, message=message, **extra)
        return Abort(self.json(body, status=status))

    def error_response(self, status: int, message: str) -> Response:
        if status == 401:
            return self.json(UNAUTHORIZED, status=401)
        code, with_id = _STATUS_CODES.get(status, (3000 if status < 500 else 5000, status >= 500))
        return self.fail(status, code, message, with_id=with_id).response

    def rate_limited_response(self, retry_after: int) -> Response:
        return self.fail(429, 3162, RATE_LIMITED, with_id=True).response

    def not_found_response(self, request: Any) -> Response:
        return self.fail(404, 3006, "Resource not found").response

    def body_or_fail(self, request: Any) -> dict[str, Any]:
        data = self.body(request)
        if not isinstance(data, dict):
            raise self.fail(400, 3000, "Request body must be a JSON object")
        return data

    def _account(self, account_id: Any) -> dict[str, Any]:
        account = self.db["accounts"].get(account_id)
        if account is None:
            raise self.fail(404, 3006, "Account not found")
        return account
