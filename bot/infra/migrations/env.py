"""Alembic environment: migrations run on the connection `bot.infra.store.upgrade` hands over (or on
`sqlalchemy.url` when run from the alembic command line)."""

from alembic import context
from sqlalchemy import engine_from_config, pool

from bot.infra.store import Base

config = context.config
connection = config.attributes.get("connection")


def _run(conn) -> None:
    context.configure(connection=conn, target_metadata=Base.metadata,
                      render_as_batch=conn.dialect.name == "sqlite")
    with context.begin_transaction():
        context.run_migrations()


if connection is not None:
    _run(connection)
else:
    engine = engine_from_config(config.get_section(config.config_ini_section, {}), prefix="sqlalchemy.",
                                poolclass=pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
