"""record match keys, field meta and link bases

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.add_column(sa.Column("match_key", sa.String(length=255), nullable=True))
        batch_op.add_column(
            sa.Column(
                "field_meta",
                sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                nullable=False,
                server_default=sa.text("'{}'"),  # rows from before this migration have no history yet
            )
        )
        batch_op.create_unique_constraint(batch_op.f("uq_records_kind_match_key"), ["kind", "match_key"])
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.add_column(sa.Column("known", sa.JSON(), nullable=False, server_default=sa.text("'{}'")))


def downgrade() -> None:
    with op.batch_alter_table("links", schema=None) as batch_op:
        batch_op.drop_column("known")
    with op.batch_alter_table("records", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_records_kind_match_key"), type_="unique")
        batch_op.drop_column("field_meta")
        batch_op.drop_column("match_key")
