"""Databases of a test's own, beside the session's: a fresh Postgres database nobody migrated (a new add-on
before `db upgrade`), or one migrated to head, for commands whose every row a test must control."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import psycopg2
import pytest

from tests.servers import with_database


@pytest.fixture()
def empty_database() -> Iterator[str]:
    from tests.conftest import ADMIN_URL

    name = f"syncengine_own_{uuid.uuid4().hex[:8]}"
    admin = psycopg2.connect(ADMIN_URL)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    try:
        yield with_database(ADMIN_URL, name).replace("postgresql://", "postgresql+psycopg2://", 1)
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()


@pytest.fixture()
def own_database(empty_database: str) -> str:
    from syncengine import migrate

    migrate.upgrade(empty_database)
    return empty_database
