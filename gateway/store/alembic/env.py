"""Alembic's environment for the store: always run on a connection the store hands in.

`gateway.store.upgrade` opens the connection (one transaction for the whole upgrade, so a failed
revision leaves the database at the revision it had) and passes it as `config.attributes
["connection"]`; SQLite alters tables in batch mode.
"""

from __future__ import annotations

from alembic import context

from gateway.store.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `hermes store migrate`, not the alembic command")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite", compare_type=True)
with context.begin_transaction():
    context.run_migrations()
