"""The model tier of a step and of a model call (the ladder in the live pipeline, issue 18).

Revision ID: 0011
Revises: 0009
Create Date: 2026-12-02 08:00:00+00:00

``subtasks.tier`` names the ``HERA_MODELS`` tier that runs the step (its backend, prices and
queue); ``model_calls.tier`` the tier a call went to. Both nullable: NULL is today's two-role
pipeline (the ``edge`` / ``cloud`` backends), which every existing row is. Additive.

Another branch adds revision 0010 on 0009; the merger re-chains this one onto it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subtasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=64), nullable=True))
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("tier", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        batch_op.drop_column("tier")
    with op.batch_alter_table("subtasks", schema=None) as batch_op:
        batch_op.drop_column("tier")
