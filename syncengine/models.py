"""The store (docs/architecture.md, The store): the inbox, the hub of records and links, and their
bookkeeping."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

# Integer primary keys must be plain INTEGER on SQLite to autoincrement.
BigId = BigInteger().with_variant(Integer(), "sqlite")
Json = JSON().with_variant(JSONB(), "postgresql")


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite would hand back naive ones)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use syncengine.models.utcnow()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(
        naming_convention={
            "ix": "ix_%(table_name)s_%(column_0_N_name)s",
            "uq": "uq_%(table_name)s_%(column_0_N_name)s",
            "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
            "pk": "pk_%(table_name)s",
        }
    )


class InboxStatus:
    RECEIVED = "received"
    PROCESSING = "processing"
    DONE = "done"
    FAILED = "failed"
    IGNORED = "ignored"
    ALL = (RECEIVED, PROCESSING, DONE, FAILED, IGNORED)


class InboxEvent(Base):
    """Every accepted webhook and every change a sweep found; written before anyone is told 'received'."""

    __tablename__ = "inbox_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index("ix_inbox_events_status_available_at", "status", "available_at"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    event_id: Mapped[str] = mapped_column(String(255))
    event_type: Mapped[str] = mapped_column(String(128))
    # Plain JSON, not JSONB: kept as sent, and cheaper to write on the webhook path (never queried inside).
    payload: Mapped[Any] = mapped_column(JSON)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default=InboxStatus.RECEIVED)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When the event may next be (re)published: set in the future after a failed attempt.
    available_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When a task for it was last handed to the broker; NULL when that failed (the broker was down).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The claim of the worker processing it, and when it took it (a lease: redelivered once it is old).
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    processed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Record(Base):
    """The canonical business entity (the hub)."""

    __tablename__ = "records"
    __table_args__ = (UniqueConstraint("kind", "match_key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), index=True)
    # The natural key two systems agree on (an email, a SKU, an invoice number): the same entity
    # created in two systems at once becomes one record.
    match_key: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[Any] = mapped_column(Json, default=dict)
    # Per field group: which system last set it, and that system's modification time.
    field_meta: Mapped[Any] = mapped_column(Json, default=dict)
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Link(Base):
    """A record's id in one system, and what we last pushed there (for echo suppression)."""

    __tablename__ = "links"
    __table_args__ = (
        UniqueConstraint("system", "kind", "external_id"),
        UniqueConstraint("record_id", "system"),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("records.id", ondelete="CASCADE"), index=True)
    system: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    remote_updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The vendor's modification stamp of the answer to our last push there: a change from this system
    # stamped before it is a state our push already replaced (records.merge), never an edit.
    pushed_remote_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_pushed_hash: Mapped[str | None] = mapped_column(String(64))
    last_seen_hash: Mapped[str | None] = mapped_column(String(64))
    # Per field group, the hash of what this system last had (pushed or seen): the base of a merge.
    known: Mapped[Any] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class Tombstone(Base):
    """A delete of an object the hub had not seen yet (its create still on its way): remembered, so the
    late create or any state of that object stamped before the delete is dropped (syncengine.tombstones)."""

    __tablename__ = "tombstones"
    __table_args__ = (UniqueConstraint("system", "kind", "external_id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    system: Mapped[str] = mapped_column(String(32))
    kind: Mapped[str] = mapped_column(String(32))
    external_id: Mapped[str] = mapped_column(String(255))
    deleted_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Deleted beyond restore there: no later state of that id can exist, whatever its stamp.
    gone: Mapped[bool] = mapped_column(Boolean, default=False)


class IdempotencyPhase:
    STARTED = "started"
    CALLED = "called"
    FINISHED = "finished"
    FAILED = "failed"


class IdempotencyKey(Base):
    """One row per external effect, so that effect happens once (after Stripe's atomic phases)."""

    __tablename__ = "idempotency_keys"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(255), unique=True)
    system: Mapped[str] = mapped_column(String(32))
    operation: Mapped[str] = mapped_column(String(64))
    request_hash: Mapped[str | None] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(16), default=IdempotencyPhase.STARTED)
    recovery_point: Mapped[str | None] = mapped_column(String(64))
    response: Mapped[Any | None] = mapped_column(Json)
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class SyncCursor(Base):
    """Where the last reconciliation sweep of one (system, kind) stopped."""

    __tablename__ = "sync_cursors"

    system: Mapped[str] = mapped_column(String(32), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(String(255))
    swept_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    stats: Mapped[Any | None] = mapped_column(Json)


class OAuthToken(Base):
    """OAuth tokens, encrypted at rest with Fernet (SYNCENGINE_SECRET_KEY)."""

    __tablename__ = "oauth_tokens"

    provider: Mapped[str] = mapped_column(String(32), primary_key=True)
    access_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    refresh_token_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    refreshed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)


class Document(Base):
    """An uploaded receipt or supplier invoice, keyed by content so the same file is read once."""

    __tablename__ = "documents"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    sha256: Mapped[str] = mapped_column(String(64), unique=True)
    content_type: Mapped[str] = mapped_column(String(128))
    filename: Mapped[str | None] = mapped_column(String(255))
    storage_path: Mapped[str | None] = mapped_column(String(1024))
    blob: Mapped[bytes | None] = mapped_column(LargeBinary)
    status: Mapped[str] = mapped_column(String(16), default="received")
    extracted: Mapped[Any | None] = mapped_column(Json)
    confidence: Mapped[float | None] = mapped_column(Float)
    error: Mapped[str | None] = mapped_column(Text)
    record_id: Mapped[int | None] = mapped_column(ForeignKey("records.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class CircuitBreakerState(Base):
    """A breaker's state where there is no Redis (the embedded default)."""

    __tablename__ = "circuit_breakers"

    service: Mapped[str] = mapped_column(String(32), primary_key=True)
    failures: Mapped[Any] = mapped_column(JSON, default=list)
    opened_at: Mapped[float | None] = mapped_column(Float)
    probe_at: Mapped[float | None] = mapped_column(Float)


class Lease(Base):
    """A named lock with an expiry where there is no Redis (the embedded default)."""

    __tablename__ = "leases"

    name: Mapped[str] = mapped_column(String(255), primary_key=True)
    holder: Mapped[str] = mapped_column(String(64))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)


class MetricCounter(Base):
    """A counter shared by every process where there is no Redis (the embedded default): /metrics sums
    what every gunicorn and Celery process counted, so a count cannot live in one process's memory."""

    __tablename__ = "metric_counters"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    labels: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger, default=0)


class TaskState:
    PENDING = "pending"  # waiting for a worker: just staged, or retrying at `available_at`
    RUNNING = "running"  # claimed by one worker, whose lease (`locked_at`) it renews while it works
    FAILED = "failed"  # for good, with `last_error`: shown by `status`, run again by `replay`
    ALL = (PENDING, RUNNING, FAILED)


class OutboxTask(Base):
    """A task a handler set off (a push, a booking, an email), written in the handler's own transaction and
    kept until the task reports done (the row is deleted) or failed for good: neither the broker being
    down, nor a worker killed or timed out mid-task, loses it (syncengine.outbox)."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    task: Mapped[str] = mapped_column(String(128))
    args: Mapped[Any] = mapped_column(JSON)  # {"args": [...], "kwargs": {...}, "options": {...}}: ids only
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    state: Mapped[str] = mapped_column(String(16), default=TaskState.PENDING, index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text)
    # When it may run next (a retry's delay); NULL: at once.
    available_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # When a message for it was last handed to the broker; NULL when that failed (the broker was down).
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The worker running it ("host:pid:token") and its lease, renewed while it runs.
    claimed_by: Mapped[str | None] = mapped_column(String(64))
    locked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The inbox event whose handler set it off (`replay <event>` runs its failed tasks again).
    inbox_id: Mapped[int | None] = mapped_column(BigInteger().with_variant(Integer(), "sqlite"), index=True)
    # Its positional arguments as compact JSON (`[12, "erpnext"]`): what it is about, for status and replay.
    subject: Mapped[str | None] = mapped_column(String(255))
    # How many times `replay` reopened it: a replayed push's effects run under new idempotency keys.
    replays: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
