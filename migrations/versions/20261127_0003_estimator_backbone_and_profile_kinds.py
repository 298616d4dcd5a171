"""Estimator backbones, and profile nodes that are roots, steps or SLM decompositions.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27 04:52:54+00:00

Additive for the previous release: ``kind`` gets a server default so its inserts keep working,
and ``producing_model`` only loses its NOT NULL (a tree's root has no producing model). The
downgrade deletes root and decomposition rows first, since the old schema cannot hold them.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("estimator_versions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("backbone", sa.String(length=1024), nullable=True))

    with op.batch_alter_table("profile_nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("kind", sa.String(length=16), server_default="step", nullable=False))
        batch_op.alter_column("producing_model", existing_type=sa.VARCHAR(length=32), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM profile_nodes WHERE producing_model IS NULL OR kind <> 'step'")
    with op.batch_alter_table("profile_nodes", schema=None) as batch_op:
        batch_op.alter_column("producing_model", existing_type=sa.VARCHAR(length=32), nullable=False)
        batch_op.drop_column("kind")

    with op.batch_alter_table("estimator_versions", schema=None) as batch_op:
        batch_op.drop_column("backbone")
