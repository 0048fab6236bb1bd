"""Alembic environment: runs revisions on the connection the registry passes in."""

from __future__ import annotations

from alembic import context

from citymesh.registry import security_models  # noqa: F401  (registers tables)
from citymesh.registry.models import Base

target_metadata = Base.metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError(
        "run registry migrations through citymesh.registry.migrate.upgrade"
    )
context.configure(connection=connection, target_metadata=target_metadata)
with context.begin_transaction():
    context.run_migrations()
