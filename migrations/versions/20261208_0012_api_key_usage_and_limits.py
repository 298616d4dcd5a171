"""API keys: when each was last used, and its own rate limits.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-08 02:20:00+00:00

``api_keys.last_used_at`` is when the key last authenticated a call (written at most once a
minute per key); ``requests_per_minute`` and ``tokens_per_minute`` override the deployment's
defaults (``HERA_API__REQUESTS_PER_MINUTE`` / ``__TOKENS_PER_MINUTE``) for that key: NULL means
the default, 0 unlimited. All nullable: additive, so the previous release keeps running.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("requests_per_minute", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("tokens_per_minute", sa.Integer(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("tokens_per_minute")
        batch_op.drop_column("requests_per_minute")
        batch_op.drop_column("last_used_at")
