"""Alembic environment: typogate runs migrations itself (Store.migrate) on its connection."""

from alembic import context

from typogate.store.models import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
