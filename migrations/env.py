"""Alembic environment: the URL comes from `server.db.alembic_config` or the SEGTRACK_* settings."""

from __future__ import annotations

import logging.config

from alembic import context
from sqlalchemy.engine import make_url

from server.db import create_db_engine
from server.models import Base
from server.settings import Settings

config = context.config
if config.config_file_name is not None and config.attributes.get("configure_logging", True):
    logging.config.fileConfig(config.config_file_name, disable_existing_loggers=False)
logger = logging.getLogger("alembic.env")


def _database_url() -> str:
    url = config.attributes.get("database_url") or config.get_main_option("sqlalchemy.url")
    return str(url) if url else Settings().database_url


def _shown(url: str) -> str:
    """`url` fit for logs: the password, if any, as ***."""
    return make_url(url).render_as_string(hide_password=True)


def run_migrations_offline() -> None:
    url = _database_url()
    logger.info("writing the migration SQL for %s", _shown(url))
    context.configure(
        url=url,
        target_metadata=Base.metadata,
        literal_binds=True,
        render_as_batch=url.startswith("sqlite"),
    )
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    url = _database_url()
    logger.info("migrating %s", _shown(url))
    engine = create_db_engine(url)
    try:
        with engine.connect() as connection:
            context.configure(
                connection=connection,
                target_metadata=Base.metadata,
                # SQLite alters tables by copying them; batch mode does that for us.
                render_as_batch=connection.dialect.name == "sqlite",
                compare_type=True,
            )
            with context.begin_transaction():
                context.run_migrations()
    finally:
        engine.dispose()


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
