"""Bring a registry database to the newest schema with Alembic."""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, inspect

logger = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
# The first revision: the asset tables that registries created before
# migrations existed already hold.
BASELINE_REVISION = "0001"


def _config(connection: object) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def upgrade(engine: Engine) -> None:
    """Apply every pending revision; adopt a database made before migrations."""
    with engine.begin() as connection:
        tables = set(inspect(connection).get_table_names())
        config = _config(connection)
        if "tenants" in tables and "alembic_version" not in tables:
            logger.info("registry without schema version: marking it %s", "0001")
            command.stamp(config, BASELINE_REVISION)
        command.upgrade(config, "head")
