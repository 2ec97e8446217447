"""The `documents` table as the OCR intake sees it: one row per distinct file, keyed by its sha256.

Shared by `POST /documents` and the Directus file event, so a receipt uploaded both ways is read once.
The bytes are kept in the row (no shared filesystem between the receiver and the workers on Heroku-like
hosts).
"""

from __future__ import annotations

import hashlib

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from syncengine.models import Document, utcnow


def store(session: Session, data: bytes, content_type: str, filename: str | None) -> tuple[int, bool]:
    """(id, True) for a new document; (the existing id, False) for bytes already stored."""
    digest = hashlib.sha256(data).hexdigest()
    insert = pg_insert if session.bind.dialect.name == "postgresql" else sqlite_insert  # type: ignore[union-attr]
    now = utcnow()
    new_id = session.execute(
        insert(Document)
        .values(sha256=digest, content_type=content_type, filename=(filename or "")[:255] or None, blob=data,
                status="received", created_at=now, updated_at=now)
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(Document.id)
    ).scalar_one_or_none()  # fmt: skip
    if new_id is not None:
        return int(new_id), True
    existing = session.execute(select(Document.id).where(Document.sha256 == digest)).scalar_one()
    return int(existing), False
