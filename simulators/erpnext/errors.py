"""Frappe exceptions as the REST API reports them: status from the class, body by API version.

v1 (``/api/resource``, ``/api/method``) answers ``exc_type``, ``exception`` and ``_server_messages`` (a JSON
string of JSON strings); v2 (``/api/v2``) answers ``{"errors": [{"type", "message", ...}]}``, as
``frappe/utils/response.py::report_error`` does in v15. 404s carry no traceback line (Frappe hides it).
"""

from __future__ import annotations

import json
from typing import Any

STATUS = {
    "ValidationError": 417,
    "MandatoryError": 417,
    "LinkValidationError": 417,
    "TimestampMismatchError": 417,
    "UpdateAfterSubmitError": 417,
    "LinkExistsError": 417,
    "DocstatusTransitionError": 417,
    "DataError": 417,
    "DuplicateEntryError": 409,
    "DoesNotExistError": 404,
    "PermissionError": 403,
    "AuthenticationError": 401,
    "TooManyRequestsError": 429,
    "InternalServerError": 500,
    "ServiceUnavailable": 503,
}


class FrappeError(Exception):
    """Raised by the simulator's document logic; rendered per API version at the route boundary."""

    def __init__(self, exc_type: str, message: str, title: str = "Message") -> None:
        super().__init__(message)
        self.exc_type = exc_type
        self.message = message
        self.title = title

    @property
    def status(self) -> int:
        return STATUS.get(self.exc_type, 417)

    def body(self, v2: bool) -> dict[str, Any]:
        exception = f"frappe.exceptions.{self.exc_type}: {self.message}"
        if v2:
            entry: dict[str, Any] = {
                "type": self.exc_type,
                "message": self.message,
                "title": self.title,
                "indicator": "red",
            }
            if self.status != 404:
                entry["exception"] = exception
            return {"errors": [entry]}
        out: dict[str, Any] = {"exc_type": self.exc_type}
        if self.status != 404:
            out["exception"] = exception
            out["exc"] = json.dumps([f"Traceback (most recent call last):\n{exception}\n"])
        message = {"message": self.message, "title": self.title, "indicator": "red", "raise_exception": 1}
        out["_server_messages"] = json.dumps([json.dumps(message)])
        return out


def not_found(doctype: str, name: str) -> FrappeError:
    return FrappeError("DoesNotExistError", f"{doctype} {name} not found")


def invalid(message: str) -> FrappeError:
    return FrappeError("ValidationError", message)
