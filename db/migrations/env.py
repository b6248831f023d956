"""Alembic environment: runs on the connection castkeep.db.migrate passes in."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from castkeep.db.schema import Base

# Any constant; it only has to be the same for every castkeep process.
_MIGRATION_LOCK = 0x636B6D67  # "ckmg"

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is None:
        engine = sa.create_engine(config.attributes["url"], poolclass=sa.pool.NullPool)
        with engine.begin() as conn:
            _run(conn)
        engine.dispose()
    else:
        _run(connection)


def _run(connection) -> None:
    # Two processes upgrading at once: the second waits, then finds nothing left to do.
    connection.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _MIGRATION_LOCK})
    context.configure(connection=connection, target_metadata=target_metadata)
    with context.begin_transaction():
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("castkeep migrations run online only (castkeep db upgrade)")
run_migrations_online()
