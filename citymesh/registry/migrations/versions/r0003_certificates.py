"""Gateway client certificates and the per-tenant mutual TLS flag.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add tenants.require_mtls and the gateway_certificates table."""
    with op.batch_alter_table("tenants") as batch:
        batch.add_column(
            sa.Column(
                "require_mtls", sa.Boolean(), nullable=False, server_default=sa.false()
            )
        )
    op.create_table(
        "gateway_certificates",
        sa.Column("serial", sa.String(40), primary_key=True),
        sa.Column("tenant", sa.String(63), nullable=False),
        sa.Column("gateway", sa.String(63), nullable=False),
        sa.Column("issued_ms", sa.BigInteger(), nullable=False),
        sa.Column("not_after_ms", sa.BigInteger(), nullable=False),
        sa.Column("revoked_ms", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant", "gateway"],
            ["gateway_credentials.tenant", "gateway_credentials.gateway"],
        ),
    )


def downgrade() -> None:
    """Drop the certificates table and the mutual TLS flag."""
    op.drop_table("gateway_certificates")
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("require_mtls")
