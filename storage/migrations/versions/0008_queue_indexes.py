"""queues: an index on task_cards (state, due_at) and the copies of a card opened from a queue

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-03 15:30:00

The director's overview and 超时 read the open cards of every department: without an index led by ``state`` that is
a scan of every card ever made (closed ones pile up). ``copies`` names the task-card copies opened with 打开 from a
queue (ref ``<card ref>-o<n>``), so that later updates of the card reach them as well.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0008"
down_revision: Union[str, Sequence[str], None] = "0007"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    with op.batch_alter_table("task_cards", schema=None) as batch_op:
        batch_op.add_column(sa.Column("copies", sa.JSON(), server_default="[]", nullable=False))
        batch_op.create_index("ix_task_cards_state_due", ["state", "due_at"], unique=False)


def downgrade() -> None:
    # Plain statements (SQLite >= 3.35, PostgreSQL): a batch rebuild would drop a table other rows point at.
    op.drop_index("ix_task_cards_state_due", table_name="task_cards")
    op.execute("ALTER TABLE task_cards DROP COLUMN copies")
