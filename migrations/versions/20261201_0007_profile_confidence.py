"""Profiles keep each call's mean token logprob and its ground truth; subtasks keep the SLM's
answer when the verify stage re-ran the step on the LLM.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 21:45:00+00:00

Additive and nullable: old code ignores the columns; old profiles have neither (the verify stage
and the confidence baselines then cannot be trained or replayed from them, and say so).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("profile_nodes", schema=None) as batch_op:
        batch_op.add_column(sa.Column("confidence", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("step_correct", sa.Boolean(), nullable=True))
    with op.batch_alter_table("subtasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("speculative_output", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("subtasks", schema=None) as batch_op:
        batch_op.drop_column("speculative_output")
    with op.batch_alter_table("profile_nodes", schema=None) as batch_op:
        batch_op.drop_column("step_correct")
        batch_op.drop_column("confidence")
