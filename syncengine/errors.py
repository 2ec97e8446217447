"""Every failure of an external call is classified once, into one of these, where it happens."""

from __future__ import annotations


class SyncError(Exception):
    """Base of the classified failures."""


class Retryable(SyncError):
    """Worth trying again later: a connection error, a timeout, 408, 429, 5xx, a lock held elsewhere.

    `retry_after` is the delay the service asked for (Retry-After), when it asked."""

    def __init__(self, message: str, retry_after: float | None = None, status: int | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.status = status


class Ambiguous(Retryable):
    """The request may have reached the service (a timeout after sending): only a read-back or the
    vendor's idempotency key can tell whether it took effect."""


class WaitingFor(Retryable):
    """Another record must reach the service first (an invoice's contact): usually moments away, but if
    it never arrives the wait must end, so those who retry on it give up after a while."""


class CircuitOpen(Retryable):
    """The service's breaker is open: nothing was sent."""


class Permanent(SyncError):
    """Trying again cannot help (400, 404, 422 …): the event fails with this reason."""

    def __init__(self, message: str, status: int | None = None, body: object = None) -> None:
        super().__init__(message)
        self.status = status
        self.body = body


class AuthExpired(SyncError):
    """The credentials were refused; a token refresh may help once."""
