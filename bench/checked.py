"""Benchmarks are code: an answer that is not 2xx ends the run with one line naming the request, instead of
timing errors (a loop of 401s is fast)."""

from __future__ import annotations

import requests


class Refused(SystemExit):
    """A benchmark's request answered outside 2xx: exit 1 with the request and the answer's start."""


def ok(response: requests.Response) -> requests.Response:
    if not 200 <= response.status_code < 300:
        request = response.request
        raise Refused(f"bench: {request.method} {request.url} answered {response.status_code}: "
                      f"{response.text[:200]!r}")  # fmt: skip
    return response


def all_2xx(statuses: dict[int, int], what: str) -> None:
    """For load generators that count statuses: any answer outside 2xx (0: a dropped connection) ends it."""
    bad = {status: n for status, n in statuses.items() if not 200 <= status < 300}
    if bad:
        raise Refused(f"bench: {what} answered {bad} (status: count) besides 2xx")
