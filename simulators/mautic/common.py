"""Mautic's error bodies and list envelope, shared by the contact, webhook and other endpoints."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.datastructures import MultiDict
from werkzeug.wrappers import Request, Response

from simulators.base import Abort, RunningServer, Simulator
from simulators.mautic.fields import Row, db_time

NOT_FOUND = "Item was not found."
ACCESS_DENIED = "You do not have access to the requested area/action."  # mautic.core.error.accessdenied
USER = "sim.mautic.user"  # where authenticate() leaves the Basic-auth user for the handlers


class MauticBase(Simulator):
    vendor = "mautic"
    site_url = "http://127.0.0.1"  # X-Origin-Base-URL; serve() sets the real one
    # user -> the permissions of their role; a user not listed is an administrator (every permission).
    roles: dict[str, frozenset[str]]

    def is_admin(self, request: Request) -> bool:
        return request.environ.get(USER) not in self.roles

    def granted(self, user: str | None, permission: str) -> bool:
        """``CorePermissions::isGranted`` for one ``bundle:level:permission``: administrators have every
        one, and ``full`` on a level grants all of that level."""
        if user not in self.roles:
            return True
        bundle, level, _ = permission.split(":", 2)
        return bool({permission, f"{bundle}:{level}:full"} & self.roles[user])

    def require(self, request: Request, *permissions: str) -> None:
        """``accessDenied()``: 403 unless the caller holds every permission."""
        if not all(self.granted(request.environ.get(USER), p) for p in permissions):
            raise self.fail(403, ACCESS_DENIED)

    def fail(self, status: int, message: str, details: Any = None, type_: str | None = None) -> Abort:
        """``FetchCommonApiController::returnError``: ``{"errors": [{code, message, details, type}]}``."""
        error = {
            "code": status,
            "message": message,
            "details": [] if details is None else details,
            "type": type_,
        }
        return Abort(self.json({"errors": [error]}, status=status))

    def error_response(self, status: int, message: str) -> Response:
        return self.fail(status, message).response

    def rate_limited_response(self, retry_after: int) -> Response:
        limit = (self.faults.get("rate_limit") or {}).get("limit", 0)
        message = f"You exceeded the rate limit of {limit} API calls per hour."
        response = self.json({"errors": [{"code": 429, "message": message, "details": []}]}, status=429)
        response.headers.update(
            {
                "X-RateLimit-Limit": str(limit),
                "X-RateLimit-Remaining": "0",
                "X-RateLimit-Reset": str(retry_after),
            }
        )
        return response

    def not_found_response(self, request: Request) -> Response:
        return self.fail(404, f"Requested URL not found: {request.path}").response

    def serve(self, host: str = "127.0.0.1", port: int = 0) -> RunningServer:
        running = super().serve(host, port)
        self.site_url = running.url
        return running

    def db_now(self) -> str:
        return db_time(self.now())

    def entity(self, table: str, entity_id: Any) -> Row:
        try:
            row = self.db[table].get(int(entity_id))
        except (TypeError, ValueError):
            row = None
        if row is None:
            raise self.fail(404, NOT_FOUND)
        return row

    def page(self, args: MultiDict[str, str]) -> tuple[int, int]:
        try:
            start, limit = int(args.get("start", 0)), int(args.get("limit", 30))
        except ValueError:
            raise self.fail(400, "start and limit must be integers") from None
        return max(start, 0), max(limit, 0)

    def envelope(
        self, key: str, rows: Iterable[Row], args: MultiDict[str, str], to_json: Callable[[Row], Row]
    ) -> Response:
        """``{"total": n, key: {"<id>": {...}}}``: keyed by id, ``{}`` when empty (EntityResultHelper)."""
        rows = list(rows)
        start, limit = self.page(args)
        shown = rows[start : start + limit] if limit else rows[start:]
        return self.json({"total": len(rows), key: {str(r["id"]): to_json(r) for r in shown}})
