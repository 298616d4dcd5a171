"""Plans with dependencies: ``plan_nodes``, one row per node of a step that fanned out.

Revision ID: 0010
Revises: 0008
Create Date: 2026-12-02 07:10:00+00:00

Each node runs as a request of its own (``child_id``); the row holds what the fan-in needs
(``needs``, ``status``, ``answer``) and the node's place in its plan (``level``, ``to_final``,
``descendants``, ``depth_steps``) for graph-aware routing and the request view. Additive: chain
requests write no rows here. (Written on the issue-19 branch against 0008; the merge re-chains it
after whatever 0009 lands first.)
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plan_nodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=False),
        sa.Column("key", sa.String(length=16), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("needs", sa.JSON().with_variant(postgresql.JSONB(), "postgresql"), nullable=False),
        sa.Column("level", sa.Integer(), nullable=False),
        sa.Column("to_final", sa.Integer(), nullable=False),
        sa.Column("descendants", sa.Integer(), nullable=False),
        sa.Column("depth_steps", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("child_id", sa.Uuid(), nullable=True),
        sa.Column("answer", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["child_id"], ["requests.id"], name=op.f("fk_plan_nodes_child_id_requests"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_plan_nodes_request_id_requests"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_plan_nodes")),
        sa.UniqueConstraint("child_id", name=op.f("uq_plan_nodes_child_id")),
        sa.UniqueConstraint("request_id", "key", name=op.f("uq_plan_nodes_request_id_key")),
    )


def downgrade() -> None:
    op.drop_table("plan_nodes")
