"""The full cost model and budgets: every cost component per model call, tenant budgets, and a
request's own cost cap and latency budget.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 07:15:00+00:00

``model_calls`` gains the components ``cost_usd`` is the sum of (tokens, GPU time, energy,
transfer) and the bytes a cloud call sent off the edge; old rows get 0 for each, except tokens,
which take the old total, so the components of every row still add up to its cost. ``tenants``
gains daily and monthly budgets and the action for a running request that crosses one;
``requests`` a cost cap and a latency budget. Additive; all new columns are nullable or defaulted.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COMPONENTS = ("tokens_cost_usd", "gpu_cost_usd", "energy_cost_usd", "transfer_cost_usd")


def upgrade() -> None:
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        for name in _COMPONENTS:
            batch_op.add_column(sa.Column(name, sa.Double(), nullable=False, server_default=sa.text("0")))
        batch_op.add_column(sa.Column("bytes_sent", sa.Integer(), nullable=False, server_default=sa.text("0")))
    # Before this revision an edge call's GPU time was folded into cost_usd; it is kept as tokens
    # here (the only component that cannot be told apart afterwards) so the sum stays exact.
    op.execute("UPDATE model_calls SET tokens_cost_usd = cost_usd")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("daily_budget_usd", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("monthly_budget_usd", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("budget_action", sa.String(length=16), nullable=True))
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("cost_cap_usd", sa.Double(), nullable=True))
        batch_op.add_column(sa.Column("latency_budget_s", sa.Double(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("requests", schema=None) as batch_op:
        batch_op.drop_column("latency_budget_s")
        batch_op.drop_column("cost_cap_usd")
    with op.batch_alter_table("tenants", schema=None) as batch_op:
        batch_op.drop_column("budget_action")
        batch_op.drop_column("monthly_budget_usd")
        batch_op.drop_column("daily_budget_usd")
    with op.batch_alter_table("model_calls", schema=None) as batch_op:
        batch_op.drop_column("bytes_sent")
        for name in reversed(_COMPONENTS):
            batch_op.drop_column(name)
