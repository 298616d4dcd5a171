"""Shadow labels: live requests re-run as profiling trees for continual fine-tuning.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 09:00:00+00:00

Additive: a new table only, so the previous release keeps running during the upgrade.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "shadow_runs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("request_id", sa.Uuid(), nullable=True),
        sa.Column("profile_run_id", sa.Uuid(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "queued",
                "running",
                "succeeded",
                "failed",
                "skipped",
                name="run_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("cost_usd", sa.Double(), nullable=False),
        sa.Column("nodes", sa.Integer(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["profile_run_id"],
            ["profile_runs.id"],
            name=op.f("fk_shadow_runs_profile_run_id_profile_runs"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["request_id"], ["requests.id"], name=op.f("fk_shadow_runs_request_id_requests"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_shadow_runs")),
        sa.UniqueConstraint("request_id", name=op.f("uq_shadow_runs_request_id")),
    )
    op.create_index(op.f("ix_shadow_runs_profile_run_id"), "shadow_runs", ["profile_run_id"], unique=False)
    op.create_index(op.f("ix_shadow_runs_status_finished_at"), "shadow_runs", ["status", "finished_at"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_shadow_runs_status_finished_at"), table_name="shadow_runs")
    op.drop_index(op.f("ix_shadow_runs_profile_run_id"), table_name="shadow_runs")
    op.drop_table("shadow_runs")
