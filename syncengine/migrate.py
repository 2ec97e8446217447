"""Apply the Alembic migrations from the installed package (`syncengine db upgrade`), and say where a database
stands against them: worker, beat and serve refuse a schema that is not at head, and /readyz fails on it."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from alembic import command
from alembic.config import Config
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory

from .settings import get_settings


def alembic_config(url: str | None = None) -> Config:
    config = Config()
    config.set_main_option("script_location", "syncengine:migrations")
    config.set_main_option("sqlalchemy.url", (url or get_settings().database_url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str | None = None, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


@dataclass(frozen=True)
class Migration:
    revision: str
    title: str  # the first line of its docstring


@cache
def history() -> tuple[Migration, ...]:
    """This release's migrations, oldest first (read once: the files do not change while we run)."""
    scripts = ScriptDirectory.from_config(alembic_config("sqlite://"))
    found = [Migration(s.revision, (s.doc or "").strip()) for s in scripts.walk_revisions()]
    return tuple(reversed(found))


def head() -> str:
    return history()[-1].revision


def current(url: str | None = None) -> str | None:
    """The database's revision; None when no migration was ever applied to it."""
    from .db import engine_for

    with engine_for(url or get_settings().database_url).connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def behind(revision: str | None, database: str = "the database") -> str | None:
    """None when `revision` is this release's head; else what is wrong and what to do, as one line."""
    if revision == head():
        return None
    if revision is None:
        return f"{database} has no syncengine tables yet: run `syncengine db upgrade`"
    if revision in {m.revision for m in history()}:
        return f"{database} is at migration {revision}, not {head()}: run `syncengine db upgrade`"
    return (
        f"{database} is at migration {revision}, which this release does not know (a newer release "
        "migrated it): run that release, or its `syncengine db downgrade` to go back"
    )
