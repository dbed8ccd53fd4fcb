"""support-request rules: resubmitted cards, needed-by deadlines, the surgery's time of day

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-03 15:30:00

- task_cards.supersedes_id: the rejected card a resubmitted card replaces (unique: one successor at most);
- task_cards.needed_at / lead_hours: set when the needed-by date made the deadline earlier than the SLA;
- support_requests.needed_at: the instant the work is needed when a time of day was given (timezone-aware).
Existing rows keep NULL in every new column: nothing to fill.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0010"
down_revision: Union[str, Sequence[str], None] = "0009"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("support_requests", schema=None) as batch_op:
        batch_op.add_column(sa.Column("needed_at", sa.DateTime(timezone=True), nullable=True))
    with op.batch_alter_table("task_cards", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("supersedes_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=True)
        )
        batch_op.add_column(sa.Column("needed_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("lead_hours", sa.Float(), nullable=True))
    op.create_index("uq_task_cards_supersedes", "task_cards", ["supersedes_id"], unique=True)


def downgrade() -> None:
    # Plain ALTERs (SQLite >= 3.35, PostgreSQL): a batch rebuild would drop tables other rows point at.
    op.drop_index("uq_task_cards_supersedes", table_name="task_cards")
    for column in ("lead_hours", "needed_at", "supersedes_id"):
        op.execute(f"ALTER TABLE task_cards DROP COLUMN {column}")
    op.execute("ALTER TABLE support_requests DROP COLUMN needed_at")
