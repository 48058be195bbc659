"""The schema comes from Alembic: one head, upgrade and downgrade on PostgreSQL and SQLite, models
in step with the migrations, and a server that refuses an outdated database."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from server.app import create_app
from server.db import (
    MIGRATIONS_DIR,
    SchemaOutdatedError,
    create_db_engine,
    current_revision,
    downgrade_database,
    head_revision,
    require_schema_at_head,
    upgrade_database,
)
from server.models import Base
from server.settings import Settings
from tests.conftest import create_scratch_database, drop_scratch_database
from tests.server.helpers import ApiClient

TABLES = {
    "runs",
    "run_tags",
    "metrics",
    "metric_summaries",
    "datasets",
    "previews",
    "checkpoints",
    "events",
    "workers",
}


def test_one_head() -> None:
    heads = ScriptDirectory(str(MIGRATIONS_DIR)).get_heads()
    assert heads == [head_revision()]


def test_upgrade_downgrade_upgrade_on_postgres() -> None:
    name = "segtrack_test_migrations"
    url = create_scratch_database(name)
    engine = create_db_engine(url)
    try:
        upgrade_database(url)
        assert set(inspect(engine).get_table_names()) >= TABLES
        assert current_revision(engine) == head_revision()
        downgrade_database(url, "base")
        assert not TABLES & set(inspect(engine).get_table_names())
        assert current_revision(engine) is None
        upgrade_database(url)
        require_schema_at_head(engine)
    finally:
        engine.dispose()
        drop_scratch_database(name)


def test_models_match_migrations(database_url: str) -> None:
    engine = create_db_engine(database_url)
    with engine.connect() as connection:
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    engine.dispose()


def test_sqlite_upgrade_and_downgrade(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'segtrack.db'}"
    upgrade_database(url)
    engine = create_db_engine(url)
    require_schema_at_head(engine)
    assert set(inspect(engine).get_table_names()) >= TABLES
    with engine.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
    downgrade_database(url, "base")
    assert current_revision(engine) is None
    engine.dispose()


def test_outdated_schema_is_refused_with_the_upgrade_command(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = create_db_engine(url)
    with pytest.raises(SchemaOutdatedError, match=r"run `segtrack db upgrade`"):
        require_schema_at_head(engine)
    engine.dispose()
    app = create_app(Settings(data_dir=tmp_path, database_url=url, reaper_interval_s=0))
    with pytest.raises(SchemaOutdatedError, match="schema is at revision"), ApiClient(app):
        pass
