"""task_cards.rep_id: the requesting rep on each card, for the digest's team figures

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-04 02:20:00

The digest counts a team's cards (opened, claimed, done, overdue, escalated): without the rep on the card it found
them through every open card of the org (stuck cards pile up with the history) joined to their requests. With
``rep_id`` (copied from ``support_requests.rep_id``, which never changes) and the two indexes below, a manager's
digest reads only the team's open cards and those closed since the period began.
"""

from typing import Sequence, Union

from alembic import op
import sqlalchemy as sa


revision: str = "0012"
down_revision: Union[str, Sequence[str], None] = "0011"
branch_labels: Union[str, Sequence[str], None] = None
depends_on: Union[str, Sequence[str], None] = None


def upgrade() -> None:
    # Plain ALTER on both backends (a batch rebuild of task_cards would trip the foreign keys that point at it).
    op.add_column("task_cards", sa.Column("rep_id", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE task_cards SET rep_id = (SELECT support_requests.rep_id FROM support_requests"
        " WHERE support_requests.id = task_cards.request_id)"
    )
    op.create_index("ix_task_cards_rep_state", "task_cards", ["rep_id", "state"])
    op.create_index("ix_task_cards_rep_closed", "task_cards", ["rep_id", "closed_at"])


def downgrade() -> None:
    op.drop_index("ix_task_cards_rep_closed", table_name="task_cards")
    op.drop_index("ix_task_cards_rep_state", table_name="task_cards")
    op.execute("ALTER TABLE task_cards DROP COLUMN rep_id")
