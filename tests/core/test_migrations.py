"""The migrations build exactly the models, on SQLite and on Postgres, and go down and up again."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect

from syncengine import migrate
from syncengine.models import Base
from syncengine.settings import get_settings

TABLES = {"inbox_events", "records", "links", "idempotency_keys", "sync_cursors", "oauth_tokens", "documents"}


def _diff(url: str) -> list:
    engine = create_engine(url)
    with engine.connect() as conn:
        return compare_metadata(MigrationContext.configure(conn), Base.metadata)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.sqlite3'}"
    return get_settings().database_url  # the session's fresh Postgres database, already at head


def test_migrations_match_models_and_round_trip(database_url):
    migrate.upgrade(database_url)
    assert set(inspect(create_engine(database_url)).get_table_names()) >= TABLES
    assert _diff(database_url) == []
    if database_url.startswith("sqlite"):  # the shared Postgres database stays in use by other tests
        migrate.downgrade(database_url)
        assert not TABLES & set(inspect(create_engine(database_url)).get_table_names())
        migrate.upgrade(database_url)
        assert _diff(database_url) == []
