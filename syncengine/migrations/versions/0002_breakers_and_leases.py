"""circuit breakers and leases

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

from syncengine.models import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "circuit_breakers",
        sa.Column("service", sa.String(length=32), nullable=False),
        sa.Column("failures", sa.JSON(), nullable=False),
        sa.Column("opened_at", sa.Float(), nullable=True),
        sa.Column("probe_at", sa.Float(), nullable=True),
        sa.PrimaryKeyConstraint("service", name=op.f("pk_circuit_breakers")),
    )

    op.create_table(
        "leases",
        sa.Column("name", sa.String(length=255), nullable=False),
        sa.Column("holder", sa.String(length=64), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_leases")),
    )


def downgrade() -> None:
    op.drop_table("leases")
    op.drop_table("circuit_breakers")
