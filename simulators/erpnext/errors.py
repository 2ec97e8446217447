"""Frappe exceptions and messages as the REST API reports them: status from the class, body by API version.

Every request keeps a message log (``frappe.message_log``): ``msgprint`` adds to it, alerts included. An
exception raised by ``frappe.throw`` carries its own message; one raised after its messages were printed
(MandatoryError, UniqueValidationError, PermissionError) has none of its own, and v2 then links it with the
first message logged, whatever that was, an unrelated alert included (``frappe/utils/response.py``
``_link_error_with_message_log``). v2 answers ``{"errors": [{"type", "message", ...}], "messages": [the
rest]}``, and a success carries the log as ``messages`` too; v1 answers ``exc_type``, ``exception`` and
``_server_messages`` (a JSON string of JSON strings). 404s carry no traceback line (Frappe hides it).
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
    "UniqueValidationError": 417,
    "DuplicateEntryError": 409,
    "DoesNotExistError": 404,
    "PermissionError": 403,
    "AuthenticationError": 401,
    "TooManyRequestsError": 429,
    "InternalServerError": 500,
    "TypeError": 500,
    "AttributeError": 500,
    "ServiceUnavailable": 503,
}

Message = dict[str, Any]


class FrappeError(Exception):
    """Raised by the simulator's document logic; rendered per API version at the route boundary.

    ``thrown``: raised by ``frappe.throw`` with its own message (red); otherwise the message was printed
    to the log before the raise (``printed``) and v2 shows whichever message was logged first."""

    def __init__(self, exc_type: str, message: str | None, title: str = "Message", *, thrown: bool = True):
        super().__init__(message or exc_type)
        self.exc_type = exc_type
        self.message = message
        self.title = title
        self.thrown = thrown and message is not None

    @property
    def status(self) -> int:
        return STATUS.get(self.exc_type, 417)

    def body(self, v2: bool, log: list[Message] | None = None) -> dict[str, Any]:
        log = list(log or [])
        exception = f"frappe.exceptions.{self.exc_type}: {self.message or ''}".rstrip(": ")
        return self._v2(log, exception) if v2 else self._v1(log, exception)

    def _v2(self, log: list[Message], exception: str) -> dict[str, Any]:
        entry: dict[str, Any] = {"type": self.exc_type}
        if self.thrown:
            entry.update(message=self.message, title=self.title, indicator="red")
        elif log:
            entry.update(log.pop(0))
        if self.status != 404:
            entry["exception"] = f"Traceback (most recent call last):\n{exception}\n"
        return {"errors": [entry], "messages": log} if log else {"errors": [entry]}

    def _v1(self, log: list[Message], exception: str) -> dict[str, Any]:
        out: dict[str, Any] = {"exc_type": self.exc_type}
        if self.status != 404:
            out["exception"] = exception
            out["exc"] = json.dumps([f"Traceback (most recent call last):\n{exception}\n"])
        if self.thrown:
            own = {"message": self.message, "title": self.title, "indicator": "red", "raise_exception": 1}
            log.append(own)
        if log:
            out["_server_messages"] = json.dumps([json.dumps(m) for m in log])
        return out


def not_found(doctype: str, name: str) -> FrappeError:
    return FrappeError("DoesNotExistError", f"{doctype} {name} not found")


def invalid(message: str) -> FrappeError:
    return FrappeError("ValidationError", message)


def printed(exc_type: str) -> FrappeError:
    """An exception raised after its reasons were printed to the message log (no message of its own)."""
    return FrappeError(exc_type, None, thrown=False)
