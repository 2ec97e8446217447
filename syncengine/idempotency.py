"""Each external effect happens once (docs/architecture.md, Effects once).

A key row is claimed in its own transaction and marked 'called' before the vendor is called, so a worker
killed between the call and the commit leaves a trace: the next attempt knows it is recovering, and sends
the vendor's own idempotency key (derived from ours) or looks the object up before creating it. The
response is saved, with the caller's bookkeeping (links), in the transaction that marks the key finished.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from . import hook_points
from .db import autocommit_engine, session_scope
from .errors import Permanent, Retryable
from .models import IdempotencyKey, IdempotencyPhase, utcnow
from .settings import env_seconds

log = logging.getLogger(__name__)
_keys = IdempotencyKey.__table__

# Namespace of the vendor keys we derive from ours (UUID5), fixed forever: changing it would make
# retries after an upgrade look like new requests to the vendors.
VENDOR_KEY_NAMESPACE = uuid.UUID("6f1d3c2e-3a51-4c6b-9a0e-5d0b8f7e2a10")
# How long a claimed key is left to its worker before another may recover it (a killed worker's key).
DEFAULT_LEASE = timedelta(seconds=env_seconds("SYNCENGINE_EFFECT_LEASE", 120))


def vendor_key(key: str) -> str:
    """A vendor-safe idempotency key (36 characters: within Revolut's 40 and Invoice Ninja's 64)."""
    return str(uuid.uuid5(VENDOR_KEY_NAMESPACE, key))


def request_hash(request: Any) -> str:
    return hashlib.sha256(json.dumps(request, sort_keys=True, default=str).encode()).hexdigest()


class InProgress(Retryable):
    """Another worker holds the key right now; `retry_after` is when its lease would lapse (a dead worker),
    though a live one usually finishes within moments."""


@dataclass(frozen=True)
class Effect:
    key: str
    system: str
    operation: str
    request: Any = None


@dataclass
class Attempt:
    """What the call needs to know: the vendor key to send, and whether an earlier try may have landed."""

    key: str
    vendor_key: str
    recovering: bool
    recovery_point: str | None

    def checkpoint(self, point: str) -> None:
        """Record progress inside a multi-step effect, so a re-run can skip the steps already done."""
        with session_scope() as session:
            row = _lock_row(session, self.key)
            row.recovery_point = point
        self.recovery_point = point


def once(
    effect: Effect, call: Callable[[Attempt], Any], *, lease: timedelta = DEFAULT_LEASE,
    on_finish: Callable[[Session, Any], None] | None = None,
) -> Any:  # fmt: skip
    """Run `call` at most once to completion for this key and return its (stored) response."""
    claimed = _claim(effect, lease)
    if isinstance(claimed, _Finished):
        return claimed.response
    try:
        response = call(claimed)
        hook_points.reached(f"{effect.system}.{effect.operation}.called")
    except Permanent as exc:
        _close(effect.key, IdempotencyPhase.FAILED, {"error": str(exc), "status": exc.status})
        raise
    except Exception:
        _release(effect.key)
        raise
    _close(effect.key, IdempotencyPhase.FINISHED, response, on_finish)
    return response


@dataclass(frozen=True)
class _Finished:
    response: Any


def _claim(effect: Effect, lease: timedelta) -> Attempt | _Finished:
    digest = request_hash(effect.request)
    with autocommit_engine().connect() as conn:
        # The common case, a key never seen, in one round trip: the row is born 'called' and leased to us.
        now = utcnow()
        insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
        fresh = conn.execute(
            insert(_keys)
            .values(key=effect.key, system=effect.system, operation=effect.operation, request_hash=digest,
                    phase=IdempotencyPhase.CALLED, locked_at=now, created_at=now, updated_at=now)
            .on_conflict_do_nothing(index_elements=["key"])
            .returning(_keys.c.id)
        ).first()  # fmt: skip
    if fresh is not None:
        return Attempt(effect.key, vendor_key(effect.key), False, None)
    with session_scope() as session:
        row = _lock_row(session, effect.key)
        if row.request_hash != digest:
            raise Permanent(f"idempotency key {effect.key} reused for a different request")
        if row.phase == IdempotencyPhase.FINISHED:
            return _Finished(row.response)
        if row.phase == IdempotencyPhase.FAILED:
            raise Permanent(f"{effect.key} failed before: {row.response}")
        now = utcnow()
        if row.locked_at is not None and row.locked_at > now - lease:
            wait = (row.locked_at + lease - now).total_seconds()
            raise InProgress(f"{effect.key} is in progress elsewhere", retry_after=wait)
        recovering = row.phase == IdempotencyPhase.CALLED
        row.phase = IdempotencyPhase.CALLED
        row.locked_at = now
        if recovering:
            log.info("recovering %s from %s", effect.key, row.recovery_point or "the call")
        return Attempt(effect.key, vendor_key(effect.key), recovering, row.recovery_point)


def _close(
    key: str, phase: str, response: Any, on_finish: Callable[[Session, Any], None] | None = None
) -> None:
    with session_scope() as session:
        session.execute(
            update(_keys)
            .where(_keys.c.key == key)
            .values(phase=phase, response=response, locked_at=None, updated_at=utcnow())
        )
        if on_finish is not None:
            on_finish(session, response)


def _release(key: str) -> None:
    """A failed try gives the key back at once (its phase stays 'called': the next try recovers)."""
    with autocommit_engine().connect() as conn:
        conn.execute(update(_keys).where(_keys.c.key == key).values(locked_at=None))


def _lock_row(session: Session, key: str) -> IdempotencyKey:
    return session.execute(
        select(IdempotencyKey).where(IdempotencyKey.key == key).with_for_update()
    ).scalar_one()
