"""Identities: public flags, actuators, users, API keys, gateway credentials, audit.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add public flags and the identity tables."""
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    with op.batch_alter_table("sensors") as batch:
        batch.add_column(
            sa.Column("public", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    op.create_table(
        "actuators",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("gateway", sa.String(63), primary_key=True),
        sa.Column("actuator", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.ForeignKeyConstraint(["tenant"], ["tenants.tenant"]),
    )
    op.create_table(
        "users",
        sa.Column("tenant", sa.String(63), primary_key=True),
        sa.Column("user", sa.String(63), primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["tenant"], ["tenants.tenant"]),
    )
    op.create_table(
        "api_keys",
        sa.Column("key_id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column(
            "tenant", sa.String(63), sa.ForeignKey("tenants.tenant"), nullable=True
        ),
        sa.Column("user", sa.String(63), nullable=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("scopes", sa.String(100), nullable=False),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "key_grants",
        sa.Column(
            "key_id", sa.String(32), sa.ForeignKey("api_keys.key_id"), primary_key=True
        ),
        sa.Column("kind", sa.String(16), primary_key=True),
        sa.Column("pattern", sa.String(320), primary_key=True),
    )
    op.create_table(
        "gateway_credentials",
        sa.Column(
            "tenant", sa.String(63), sa.ForeignKey("tenants.tenant"), primary_key=True
        ),
        sa.Column("gateway", sa.String(63), primary_key=True),
        sa.Column("password_hash", sa.String(200), nullable=True),
        sa.Column("mosquitto_hash", sa.String(200), nullable=True),
        sa.Column("created_ms", sa.BigInteger(), nullable=False),
        sa.Column("enrolled_ms", sa.BigInteger(), nullable=True),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
    )
    op.create_table(
        "enrolment_tokens",
        sa.Column("token_id", sa.String(32), primary_key=True),
        sa.Column("secret_hash", sa.String(200), nullable=False),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("gateway", sa.String(63), nullable=False),
        sa.Column("expires_ms", sa.BigInteger(), nullable=False),
        sa.Column("used_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant", "gateway"],
            ["gateway_credentials.tenant", "gateway_credentials.gateway"],
        ),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("at_ms", sa.BigInteger(), nullable=False, index=True),
        sa.Column("key_id", sa.String(32), nullable=True),
        sa.Column("user", sa.String(63), nullable=True),
        sa.Column("tenant", sa.String(63), nullable=False, index=True),
        sa.Column("gateway", sa.String(63), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("command", sa.String(63), nullable=False),
        sa.Column("args", sa.JSON(), nullable=False),
        sa.Column("result", sa.String(16), nullable=False),
        sa.Column("detail", sa.Text(), nullable=False),
    )


def downgrade() -> None:
    """Drop the identity tables and the public flags."""
    for table in (
        "audit_log",
        "enrolment_tokens",
        "gateway_credentials",
        "key_grants",
        "api_keys",
        "users",
        "actuators",
    ):
        op.drop_table(table)
    with op.batch_alter_table("sensors") as batch:
        batch.drop_column("public")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("public")
