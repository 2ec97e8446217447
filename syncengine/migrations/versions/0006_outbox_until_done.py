"""outbox rows kept until their task is done (state, attempts, lease, origin); links' stamp of our push

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from syncengine.models import UTCDateTime

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    # Rows left by 0005 were never published (published rows were deleted): pending, published_at NULL,
    # so the redelivery sweep sends them.
    with op.batch_alter_table("outbox") as batch:
        batch.add_column(sa.Column("state", sa.String(length=16), nullable=False, server_default="pending"))
        batch.add_column(sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_error", sa.Text(), nullable=True))
        batch.add_column(sa.Column("available_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("published_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("claimed_by", sa.String(length=64), nullable=True))
        batch.add_column(sa.Column("locked_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("inbox_id", BigId, nullable=True))
        batch.add_column(sa.Column("subject", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("replays", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("updated_at", UTCDateTime(), nullable=True))
        batch.create_index(batch.f("ix_outbox_state"), ["state"])
        batch.create_index(batch.f("ix_outbox_inbox_id"), ["inbox_id"])
    with op.batch_alter_table("links") as batch:
        batch.add_column(sa.Column("pushed_remote_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("links") as batch:
        batch.drop_column("pushed_remote_at")
    with op.batch_alter_table("outbox") as batch:
        batch.drop_index(batch.f("ix_outbox_inbox_id"))
        batch.drop_index(batch.f("ix_outbox_state"))
        for column in ("updated_at", "replays", "subject", "inbox_id", "locked_at", "claimed_by",
                       "published_at", "available_at", "last_error", "attempts", "state"):  # fmt: skip
            batch.drop_column(column)
