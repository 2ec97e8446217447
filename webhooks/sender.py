"""What each sender module provides: how to verify it, and how to turn its body into inbox events."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Container, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from syncengine.inbox import NewEvent
from syncengine.settings import Secret


class BadPayload(Exception):
    """The body is not something this sender sends (no event id, wrong shape): answer 400."""

    status = 400


class UnknownEvent(BadPayload):
    """An event name this sender never sends: refused before anything is stored. 404 when the name is in
    the URL (no such resource), 400 when the body names it."""

    def __init__(self, sender: str, event: object, *, in_path: bool) -> None:
        super().__init__(f"{sender} sends no event {str(event)[:64]!r}")
        self.status = 404 if in_path else 400


def known_event(sender: str, event: object, names: Container[str], *, in_path: bool = False) -> str:
    """`event` as a string when it is one of `names`; raises UnknownEvent otherwise."""
    if not isinstance(event, str) or event not in names:
        raise UnknownEvent(sender, event, in_path=in_path)
    return event


@dataclass(frozen=True)
class Incoming:
    headers: Mapping[str, str]
    body: bytes
    payload: dict[str, Any]
    path_event: str | None
    now: float


# verify(headers, body, secrets, now) raises InvalidSignature; parse(incoming) returns the events.
Verify = Callable[[Mapping[str, str], bytes, Sequence[Secret], float], None]
Parse = Callable[[Incoming], list[NewEvent]]


@dataclass(frozen=True)
class Sender:
    name: str
    verify: Verify
    parse: Parse


def body_digest(value: Any) -> str:
    """A stable digest for senders that give no event id: the same content collapses to one event."""
    if isinstance(value, bytes):
        data = value
    else:
        data = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    return hashlib.sha256(data).hexdigest()[:32]


def require(mapping: Any, key: str, what: str) -> Any:
    if not isinstance(mapping, dict) or mapping.get(key) in (None, ""):
        raise BadPayload(f"missing {what}")
    return mapping[key]
