"""Assets: tenants, sites, gateways, devices and sensors.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create the asset tables."""
    op.create_table(
        "tenants",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
    )
    op.create_table(
        "sites",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("site", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["tenant"], ["tenants.tenant"]),
    )
    op.create_table(
        "gateways",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("gateway", sa.String(63), primary_key=True),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("online", sa.Boolean(), nullable=False),
        sa.Column("last_seen_ms", sa.BigInteger(), nullable=True),
        sa.Column("boot_ms", sa.BigInteger(), nullable=True),
        sa.Column("software", sa.String(200), nullable=False),
        sa.Column("status", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["tenant", "site"], ["sites.tenant", "sites.site"]),
    )
    op.create_table(
        "devices",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("gateway", sa.String(63), primary_key=True),
        sa.Column("device", sa.String(63), primary_key=True),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("latitude", sa.Float(), nullable=True),
        sa.Column("longitude", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant", "gateway"], ["gateways.tenant", "gateways.gateway"]
        ),
    )
    op.create_table(
        "sensors",
        sa.Column("series", sa.String(320), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("site", sa.String(63), nullable=False),
        sa.Column("gateway", sa.String(63), nullable=False),
        sa.Column("device", sa.String(63), nullable=False),
        sa.Column("quantity", sa.String(63), nullable=False),
        sa.Column("unit", sa.String(31), nullable=False),
        sa.Column("step_s", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant", "gateway", "device"],
            ["devices.tenant", "devices.gateway", "devices.device"],
        ),
    )


def downgrade() -> None:
    """Drop the asset tables."""
    for table in ("sensors", "devices", "gateways", "sites", "tenants"):
        op.drop_table(table)
