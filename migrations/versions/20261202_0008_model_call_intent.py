"""Liveness and call intent: worker heartbeats, the claimer of each running step, and a model
call on record before it is made (status ``started`` and an estimated cost).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 01:50:00+00:00

The execution hop writes the call's row (``started``, with the cost it would have at the step's
token limit) in the transaction that claims the step, and the outcome after the call: ``ok`` /
``error`` with the real tokens and cost, or ``discarded`` when another attempt's result was kept.
A row still ``started`` after its worker died is a call that may have been billed and whose
outcome is unknown. ``workers`` holds each claiming process's heartbeat; ``subtasks.claimed_by``
names the process, so the reconciler gives back the steps of a worker that stopped beating within
seconds. Additive: old rows keep their statuses.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _status_check(batch_op: object, values: Sequence[str]) -> None:
    quoted = ", ".join(f"'{value}'" for value in values)
    batch_op.drop_constraint(op.f("ck_model_calls_call_status"), type_="check")  # type: ignore[attr-defined]
    batch_op.create_check_constraint(op.f("ck_model_calls_call_status"), f"status IN ({quoted})")  # type: ignore[attr-defined]


def upgrade() -> None:
    op.create_table(
        "workers",
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("heartbeat_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_workers")),
    )
    op.create_index(op.f("ix_workers_heartbeat_at"), "workers", ["heartbeat_at"], unique=False)
    with op.batch_alter_table("subtasks", schema=None) as batch_op:
        batch_op.add_column(sa.Column("claimed_by", sa.String(length=200), nullable=True))
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        batch_op.add_column(sa.Column("estimated_cost_usd", sa.Double(), nullable=False, server_default=sa.text("0")))
        _status_check(batch_op, ("ok", "error", "discarded", "started"))


def downgrade() -> None:
    op.execute("UPDATE model_calls SET status = 'error', error = 'outcome unknown' WHERE status = 'started'")
    op.execute("UPDATE model_calls SET status = 'error', error = 'result discarded' WHERE status = 'discarded'")
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        _status_check(batch_op, ("ok", "error"))
        batch_op.drop_column("estimated_cost_usd")
    with op.batch_alter_table("subtasks", schema=None) as batch_op:
        batch_op.drop_column("claimed_by")
    op.drop_index(op.f("ix_workers_heartbeat_at"), table_name="workers")
    op.drop_table("workers")
